"""A patient's page: scores per questionnaire, enrolments, invitations, messages, opt-out."""

from __future__ import annotations

from collections import defaultdict

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import exists, func, select
from werkzeug.wrappers import Response as WerkzeugResponse

import surveys
from engage.alerts.models import Alert
from engage.audit.services import record
from engage.core.permissions import can_see_service, has_permission, require
from engage.delivery.models import Message, message_invitation
from engage.delivery.services import opt_in, opt_out
from engage.extensions import db
from engage.org.services import visible_services
from engage.patients.forms import ResumeMessagesForm, StopMessagesForm
from engage.patients.models import Patient
from engage.scheduling.forms import CHANNEL_LABELS, SOURCE_LABELS, WithdrawForm
from engage.scheduling.models import Enrolment, Protocol, Timepoint
from engage.survey.models import Invitation, Response

bp = Blueprint("patients", __name__)


def _visible_patient(patient_id: int) -> tuple[Patient, list[int]]:
    """The patient and the user's service ids; 404 unless the patient's service is one.

    A record belongs to one service; anyone outside it (admins aside) gets a 404, so the
    page does not confirm that the record exists.
    """
    patient = db.session.get(Patient, patient_id)
    if patient is None or not can_see_service(current_user, patient.service_id):
        abort(404)
    return patient, [s.id for s in visible_services(current_user)]


@bp.route("/patients/<int:patient_id>")
@require("patients.view")
def patient(patient_id: int) -> str:
    return _render(*_visible_patient(patient_id))


def _render(patient: Patient, service_ids: list[int],
            resume_form: ResumeMessagesForm | None = None) -> str:
    responses = db.session.scalars(
        select(Response).where(
            Response.patient_id == patient.id, Response.service_id.in_(service_ids),
            Response.submitted_at.is_not(None),
        ).order_by(Response.submitted_at)
    ).all()
    invitations = db.session.execute(
        select(Invitation, Timepoint.label)
        .outerjoin(Timepoint, Timepoint.id == Invitation.timepoint_id)
        .where(Invitation.patient_id == patient.id, Invitation.service_id.in_(service_ids))
        .order_by(func.coalesce(Invitation.due_at, Invitation.created_at).desc(),
                  Invitation.id.desc())
    ).all()
    by_instrument: dict[str, list[Response]] = defaultdict(list)
    for response in responses:
        by_instrument[response.instrument_id].append(response)
    alerts = db.session.scalars(
        select(Alert).where(Alert.patient_id == patient.id,
                            Alert.service_id.in_(service_ids))
        .order_by(Alert.created_at.desc())
    ).all()
    enrolments = db.session.scalars(
        select(Enrolment).join(Protocol, Protocol.id == Enrolment.protocol_id)
        .where(Enrolment.patient_id == patient.id, Protocol.service_id.in_(service_ids))
        .order_by(Enrolment.created_at.desc())
    ).all()
    # Only messages about the user's services: a message's invitations share one service
    # in practice, but the check does not rely on it.
    messages = db.session.scalars(
        select(Message).where(
            Message.patient_id == patient.id,
            exists().where(message_invitation.c.message_id == Message.id,
                           message_invitation.c.invitation_id == Invitation.id,
                           Invitation.service_id.in_(service_ids)),
        ).order_by(Message.created_at.desc(), Message.id.desc())
    ).all()
    record("view", "patient", patient.id, patient_id=patient.id)
    return render_template(
        "patients/patient.html", patient=patient, history=dict(by_instrument),
        instruments={i.id: i for i in surveys.all()}, alerts=alerts, invitations=invitations,
        enrolments=enrolments, messages=messages, channels=CHANNEL_LABELS,
        sources=SOURCE_LABELS, withdraw_form=WithdrawForm(), stop_form=StopMessagesForm(),
        resume_form=resume_form or ResumeMessagesForm(),
        may_manage=has_permission(current_user, "enrolments.manage"),
    )


@bp.route("/patients/<int:patient_id>/opt-out", methods=["POST"])
@require("enrolments.manage")
def stop_messages(patient_id: int) -> WerkzeugResponse:
    patient, _services = _visible_patient(patient_id)
    if StopMessagesForm().validate_on_submit():
        if opt_out(patient, "staff"):
            flash(_("Messages to this patient are stopped. Nothing more will be sent until "
                    "messages are resumed."))
        else:
            flash(_("Messages to this patient were already stopped."))
    return redirect(url_for(".patient", patient_id=patient.id, _anchor="contact"))


@bp.route("/patients/<int:patient_id>/opt-in", methods=["POST"])
@require("enrolments.manage")
def resume_messages(patient_id: int) -> str | WerkzeugResponse:
    patient, service_ids = _visible_patient(patient_id)
    form = ResumeMessagesForm()
    if not form.validate_on_submit():
        return _render(patient, service_ids, resume_form=form)
    if patient.opted_out_at is None:
        flash(_("This patient already receives messages."))
    else:
        opt_in(patient)
        flash(_("Messages to this patient are resumed. Questionnaires still open will be "
                "sent at the next dispatch."))
    return redirect(url_for(".patient", patient_id=patient.id, _anchor="contact"))
