"""Responses per service (open alerts first) and a single response."""

from __future__ import annotations

from flask import Blueprint, abort, json, render_template, request
from flask import Response as FlaskResponse
from flask_login import current_user
from sqlalchemy import func, select
from sqlalchemy.orm import joinedload

import surveys
from engage.alerts.models import Alert
from engage.audit.services import record, record_views
from engage.core.permissions import can_see_service, require
from engage.extensions import db
from engage.org.views import service_or_404
from engage.survey.models import Response

bp = Blueprint("responses", __name__)

PAGE_SIZE = 50


@bp.route("/services/<slug>/responses")
@require("responses.view")
def service_responses(slug: str) -> str:
    service = service_or_404(slug)
    instrument_id = request.args.get("instrument") or None
    page = max(request.args.get("page", 1, type=int) or 1, 1)
    query = select(Response).where(
        Response.service_id == service.id, Response.submitted_at.is_not(None)
    )
    if instrument_id:
        query = query.where(Response.instrument_id == instrument_id)
    total = db.session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = db.session.scalars(
        query.options(joinedload(Response.patient))
        .order_by(Response.submitted_at.desc(), Response.id.desc())
        .limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)
    ).all()
    open_alerts = db.session.scalars(
        select(Alert).options(joinedload(Alert.patient), joinedload(Alert.response))
        .where(Alert.service_id == service.id, Alert.acknowledged_at.is_(None))
        .order_by(Alert.created_at)
    ).all()
    alerted = set(db.session.scalars(
        select(Alert.response_id).where(Alert.response_id.in_([r.id for r in rows]))
    ).all())
    record_views("response_list", [r.patient_id for r in rows] +
                 [a.patient_id for a in open_alerts if a.patient_id is not None],
                 service=service.slug)
    return render_template(
        "responses/list.html", service=service, responses=rows, open_alerts=open_alerts,
        alerted=alerted, page=page, pages=max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1),
        total=total, instruments=surveys.all(), instrument_id=instrument_id,
    )


def _visible_response(response_id: int) -> Response:
    response = db.session.get(Response, response_id)
    if response is None or response.submitted_at is None or not can_see_service(
        current_user, response.service_id
    ):
        abort(404)
    return response


@bp.route("/responses/<int:response_id>")
@require("responses.view")
def response_detail(response_id: int) -> str:
    response = _visible_response(response_id)
    instrument = surveys.get(response.instrument_id)
    alerts = db.session.scalars(select(Alert).where(Alert.response_id == response.id)).all()
    record("view", "response", response.id, patient_id=response.patient_id)
    return render_template("responses/detail.html", response=response, instrument=instrument,
                           answers=response.answer_map(), alerts=alerts)


@bp.route("/responses/<int:response_id>/fhir")
@require("responses.view")
def response_fhir(response_id: int) -> FlaskResponse:
    """The response as a FHIR R4 QuestionnaireResponse (JSON), for EHR integration."""
    response = _visible_response(response_id)
    assert response.submitted_at is not None
    resource = surveys.get(response.instrument_id).questionnaire_response(
        response.answer_map(), authored=response.submitted_at,
        subject=f"Patient/{response.patient.ref}", language=response.language,
        source_relationship=response.proxy_relationship if response.respondent == "proxy"
        else None,
    )
    resource["id"] = str(response.id)
    record("export", "response", response.id, patient_id=response.patient_id, format="fhir")
    body = json.dumps(resource, ensure_ascii=False, indent=2)
    return FlaskResponse(body, mimetype="application/fhir+json", headers={
        "Content-Disposition": f'attachment; filename="response-{response.id}.fhir.json"'})
