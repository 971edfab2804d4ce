"""A patient's page: the history of their scores, per questionnaire."""

from __future__ import annotations

from collections import defaultdict

from flask import Blueprint, abort, render_template
from flask_login import current_user
from sqlalchemy import select

import surveys
from engage.alerts.models import Alert
from engage.audit.services import record
from engage.core.permissions import require
from engage.extensions import db
from engage.org.services import visible_services
from engage.patients.models import Patient
from engage.survey.models import Invitation, Response

bp = Blueprint("patients", __name__)


@bp.route("/patients/<int:patient_id>")
@require("patients.view")
def patient(patient_id: int) -> str:
    patient = db.session.get(Patient, patient_id)
    if patient is None:
        abort(404)
    service_ids = [s.id for s in visible_services(current_user)]
    responses = db.session.scalars(
        select(Response).where(
            Response.patient_id == patient.id, Response.service_id.in_(service_ids),
            Response.submitted_at.is_not(None),
        ).order_by(Response.submitted_at)
    ).all()
    invitations = db.session.scalars(
        select(Invitation).where(
            Invitation.patient_id == patient.id, Invitation.service_id.in_(service_ids)
        ).order_by(Invitation.created_at.desc())
    ).all()
    if not responses and not invitations:
        # Nothing of this patient in the user's services: do not confirm they exist.
        abort(404)
    by_instrument: dict[str, list[Response]] = defaultdict(list)
    for response in responses:
        by_instrument[response.instrument_id].append(response)
    alerts = db.session.scalars(
        select(Alert).where(Alert.patient_id == patient.id,
                            Alert.service_id.in_(service_ids))
        .order_by(Alert.created_at.desc())
    ).all()
    record("view", "patient", patient.id, patient_id=patient.id)
    return render_template(
        "patients/patient.html", patient=patient, history=dict(by_instrument),
        instruments={i.id: i for i in surveys.all()}, alerts=alerts, invitations=invitations,
    )
