"""The list of a user's services and the form that invites a patient."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, render_template
from flask_login import current_user
from sqlalchemy import func, select

import surveys
from engage.alerts.models import Alert
from engage.core.i18n import LANGUAGE_NAMES, current_language
from engage.core.permissions import can_see_service, require
from engage.extensions import db
from engage.org.forms import InviteForm
from engage.org.models import Service
from engage.org.services import visible_services
from engage.patients.services import get_or_create_patient
from engage.survey.models import Response
from engage.survey.services import create_invitation, survey_url

bp = Blueprint("org", __name__)


def service_or_404(slug: str) -> Service:
    service = db.session.scalar(select(Service).where(Service.slug == slug))
    if service is None or not can_see_service(current_user, service.id):
        abort(404)
    return service


@bp.route("/services")
@require("responses.view")
def services() -> str:
    mine = visible_services(current_user)
    ids = [s.id for s in mine]
    responses = dict(db.session.execute(
        select(Response.service_id, func.count())
        .where(Response.service_id.in_(ids), Response.submitted_at.is_not(None))
        .group_by(Response.service_id)
    ).all())
    alerts = dict(db.session.execute(
        select(Alert.service_id, func.count())
        .where(Alert.service_id.in_(ids), Alert.acknowledged_at.is_(None))
        .group_by(Alert.service_id)
    ).all())
    from engage.feedback.models import OPEN_STATUSES, FeedbackItem

    waiting = dict(db.session.execute(
        select(FeedbackItem.service_id, func.count())
        .where(FeedbackItem.service_id.in_(ids), FeedbackItem.status.in_(OPEN_STATUSES))
        .group_by(FeedbackItem.service_id)
    ).all())
    return render_template("org/services.html", services=mine, responses=responses,
                           alerts=alerts, waiting=waiting)


@bp.route("/services/<slug>/invite", methods=["GET", "POST"])
@require("invitations.create")
def invite(slug: str) -> str:
    service = service_or_404(slug)
    lang = current_language()
    form = InviteForm()
    form.instrument.choices = [(i.id, i.title_in(lang)) for i in surveys.all()]
    form.language.choices = [
        (code, LANGUAGE_NAMES.get(code, code)) for code in current_app.config["LANGUAGES"]
    ]
    link = None
    if form.validate_on_submit():
        # The service's own record: a reference another service uses is a new record here.
        patient, _created = get_or_create_patient(service, form.patient_ref.data or "",
                                                  language=form.language.data)
        _invitation, token = create_invitation(
            patient, service, form.instrument.data or "", language=form.language.data,
            days=current_app.config["INVITATION_DAYS"],
        )
        link = survey_url(current_app.config["BASE_URL"], token)
    return render_template("org/invite.html", service=service, form=form, link=link)
