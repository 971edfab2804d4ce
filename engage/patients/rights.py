"""A person's rights over their data: everything held about a hospital reference (a subject
access request), and erasure that keeps the counts.

A reference may have one record in each service that knows the person, so both work on
every record with the reference unless one service is named. What erasure removes and what
it keeps is in docs/security.md ("Retention and patients' rights").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, or_, select, update

import surveys
from engage.alerts.models import Alert
from engage.audit.services import record
from engage.core.db import utcnow
from engage.delivery.models import Message, message_invitation
from engage.delivery.services import opt_out
from engage.extensions import db
from engage.feedback.models import FeedbackEvent, FeedbackItem, Reply
from engage.org.models import Service
from engage.patients.models import Patient
from engage.retention.services import scrub_comments
from engage.scheduling.models import Enrolment, Protocol, Timepoint
from engage.scheduling.services import withdraw
from engage.survey.models import OPEN_STATUSES, Answer, Invitation, InvitationToken, Response

#: The version of the export's layout, so a reader can tell what it holds.
EXPORT_FORMAT = "engage-subject-access/1"


class RightsError(ValueError):
    """The request cannot be carried out as asked; the message says why."""


def find_records(ref: str, service: Service | None = None) -> list[Patient]:
    """Every patient record with hospital reference ``ref`` (only ``service``'s when given)."""
    query = select(Patient).where(Patient.ref == ref.strip())
    if service is not None:
        query = query.where(Patient.service_id == service.id)
    return list(db.session.scalars(query.order_by(Patient.id)))


def _when(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


# --- the subject access request -------------------------------------------------------------

def fhir_response(response: Response) -> dict[str, Any] | None:
    """The response as a FHIR R4 QuestionnaireResponse, as ``/responses/<id>/fhir`` gives it
    (None while it is not submitted, or when its questionnaire is no longer installed)."""
    if response.submitted_at is None:
        return None
    try:
        instrument = surveys.get(response.instrument_id)
    except surveys.UnknownInstrument:
        return None
    resource = instrument.questionnaire_response(
        response.answer_map(), authored=response.submitted_at,
        subject=f"Patient/{response.patient.ref}", language=response.language,
        source_relationship=response.proxy_relationship if response.respondent == "proxy"
        else None,
    )
    resource["id"] = str(response.id)
    return resource


def _patient(p: Patient) -> dict[str, Any]:
    return {
        "id": p.id, "service": p.service.slug, "service_name": p.service.name, "ref": p.ref,
        "language": p.language, "email": p.email, "phone": p.phone, "timezone": p.timezone,
        "channel": p.channel, "quiet_hours": p.quiet_hours, "created_at": _when(p.created_at),
    }


def _enrolments(p: Patient) -> list[dict[str, Any]]:
    rows = db.session.execute(
        select(Enrolment, Protocol).join(Protocol, Protocol.id == Enrolment.protocol_id)
        .where(Enrolment.patient_id == p.id).order_by(Enrolment.id))
    return [{"id": e.id, "protocol": pr.slug, "protocol_name": pr.name,
             "anchor_at": _when(e.anchor_at), "timezone": e.timezone, "status": e.status,
             "source": e.source, "created_at": _when(e.created_at),
             "withdrawn_at": _when(e.withdrawn_at), "withdrawal_reason": e.withdrawal_reason}
            for e, pr in rows]


def _invitations(p: Patient) -> list[dict[str, Any]]:
    # Never the link tokens: only their hashes are stored, and they are no one's business.
    rows = db.session.execute(
        select(Invitation, Timepoint.label)
        .outerjoin(Timepoint, Timepoint.id == Invitation.timepoint_id)
        .where(Invitation.patient_id == p.id).order_by(Invitation.id))
    return [{"id": i.id, "service": i.service.slug, "instrument": i.instrument_id,
             "language": i.language, "status": i.status, "timepoint": label,
             "enrolment_id": i.enrolment_id, "due_at": _when(i.due_at),
             "opens_at": _when(i.opens_at), "closes_at": _when(i.closes_at),
             "created_at": _when(i.created_at), "completed_at": _when(i.completed_at),
             "channel": i.channel, "last_sent_at": _when(i.last_sent_at),
             "last_error": i.last_error}
            for i, label in rows]


def _responses(p: Patient) -> list[dict[str, Any]]:
    responses = db.session.scalars(
        select(Response).where(Response.patient_id == p.id).order_by(Response.id))
    return [{"id": r.id, "invitation_id": r.invitation_id, "service": r.service.slug,
             "instrument": r.instrument_id, "instrument_version": r.instrument_version,
             "language": r.language, "respondent": r.respondent,
             "proxy_relationship": r.proxy_relationship, "started_at": _when(r.started_at),
             "submitted_at": _when(r.submitted_at), "total": r.total, "band": r.band,
             "complete": r.complete, "missing": r.missing,
             "answers": [{"link_id": a.link_id, "code": a.value_code, "number": a.value_number,
                          "text": a.value_text} for a in sorted(r.answers,
                                                                key=lambda a: a.link_id)],
             "fhir": fhir_response(r)}
            for r in responses]


def _comment_ids(p: Patient) -> Any:
    return select(FeedbackItem.id).where(or_(
        FeedbackItem.patient_id == p.id,
        FeedbackItem.response_id.in_(select(Response.id).where(Response.patient_id == p.id))))


def _feedback(p: Patient) -> list[dict[str, Any]]:
    items = db.session.scalars(
        select(FeedbackItem).where(FeedbackItem.id.in_(_comment_ids(p)))
        .order_by(FeedbackItem.id))
    out = []
    for item in items:
        replies = db.session.scalars(select(Reply).where(Reply.item_id == item.id)
                                     .order_by(Reply.id))
        events = db.session.scalars(select(FeedbackEvent).where(FeedbackEvent.item_id == item.id)
                                    .order_by(FeedbackEvent.id))
        out.append({
            "id": item.id, "service": item.service.slug, "source": item.source,
            "received_via": item.received_via, "response_id": item.response_id,
            "question": item.question, "text": item.text, "redacted_text": item.redacted_text,
            "language": item.language, "received_at": _when(item.received_at),
            "status": item.status, "urgency": item.urgency,
            "sentiment": item.shown_sentiment,
            "themes": [t.theme.name for t in item.live_themes()],
            "contact": {"name": item.contact_name, "email": item.contact_email,
                        "phone": item.contact_phone, "consent": item.contact_consent},
            "replies": [{"created_at": _when(r.created_at), "channel": r.channel,
                         "to": r.to_address, "subject": r.subject, "body": r.body,
                         "status": r.status, "sent_at": _when(r.sent_at)} for r in replies],
            "notes": [{"at": _when(e.at), "note": e.detail["note"]} for e in events
                      if "note" in (e.detail or {})],
        })
    return out


def _alerts(p: Patient) -> list[dict[str, Any]]:
    alerts = db.session.scalars(select(Alert).where(Alert.patient_id == p.id)
                                .order_by(Alert.id))
    return [{"id": a.id, "kind": a.kind, "response_id": a.response_id,
             "feedback_item_id": a.feedback_item_id, "created_at": _when(a.created_at),
             "acknowledged_at": _when(a.acknowledged_at),
             "acknowledgement_note": a.acknowledgement_note} for a in alerts]


def _messages(p: Patient) -> list[dict[str, Any]]:
    messages = db.session.scalars(select(Message).where(Message.patient_id == p.id)
                                  .order_by(Message.id))
    return [{"id": m.id, "kind": m.kind, "channel": m.channel, "status": m.status,
             "created_at": _when(m.created_at), "sent_at": _when(m.sent_at),
             "attempts": m.attempts, "cancel_reason": m.cancel_reason,
             "invitations": sorted(i.id for i in m.invitations)} for m in messages]


def subject_access(ref: str, service: Service | None = None,
                   now: datetime | None = None) -> dict[str, Any]:
    """Everything held about the person with reference ``ref``, as one JSON-ready document;
    each record's export is audited (flushes)."""
    records = find_records(ref, service)
    if not records:
        raise RightsError(f"no patient record has the reference {ref.strip()!r}"
                          + (f" in service {service.slug!r}" if service else ""))
    document: dict[str, Any] = {
        "format": EXPORT_FORMAT, "reference": ref.strip(),
        "exported_at": _when(now or utcnow()), "records": [],
    }
    for p in records:
        document["records"].append({
            "patient": _patient(p),
            "opt_out": {"at": _when(p.opted_out_at), "source": p.opt_out_source}
            if p.opted_out_at else None,
            "enrolments": _enrolments(p), "invitations": _invitations(p),
            "responses": _responses(p), "feedback": _feedback(p), "alerts": _alerts(p),
            "messages": _messages(p),
        })
        record("export", "patient", p.id, patient_id=p.id, format="subject-access")
    db.session.flush()
    return document


# --- erasure ------------------------------------------------------------------------------------

@dataclass
class Erasure:
    """What erasing one record changed (counted before anything is changed)."""

    patient_id: int
    service: str
    counts: dict[str, int] = field(default_factory=dict)


def _count(query: Any) -> int:
    return db.session.scalar(select(func.count()).select_from(query.subquery())) or 0


def erasure_plan(records: Sequence[Patient]) -> list[Erasure]:
    """What :func:`erase` would change for each record; raises :class:`RightsError` while a
    safety alert about the person is unacknowledged (a clinician must see it first)."""
    plans = []
    for p in records:
        open_alerts = _count(select(Alert.id).where(Alert.patient_id == p.id,
                                                    Alert.acknowledged_at.is_(None)))
        if open_alerts:
            raise RightsError(
                f"record {p.id} ({p.service.slug}) has {open_alerts} safety alert(s) nobody "
                "has acknowledged: a clinician must acknowledge them before erasure")
        response_ids = select(Response.id).where(Response.patient_id == p.id)
        plans.append(Erasure(p.id, p.service.slug, {
            "responses_kept": _count(response_ids),
            "free_text_answers": _count(select(Answer.id).where(
                Answer.response_id.in_(response_ids), Answer.value_text.is_not(None))),
            "comments": _count(_comment_ids(p)),
            "invitations": _count(select(Invitation.id).where(Invitation.patient_id == p.id)),
            "messages_kept": _count(select(Message.id).where(Message.patient_id == p.id)),
            "enrolments": _count(select(Enrolment.id).where(Enrolment.patient_id == p.id)),
        }))
    return plans


def erase(records: Sequence[Patient], now: datetime | None = None) -> list[Erasure]:
    """Remove what identifies the person from each record, keeping what is counted; each
    record's erasure is audited (flushes; the caller commits).

    Removed: the reference (now ``erased-<record id>``), email, phone, own quiet hours; the
    text of free-text answers; comments' originals, contact details, notes and replies' text
    and addresses; alerts' acknowledgement notes; withdrawal reasons; delivery errors; the
    links (every token, so no link opens again). Stopped: messages (opt-out ``erased``),
    active enrolments, invitations still open. Kept: scores, bands and completeness (run
    charts and response rates), the redacted comment with its themes and sentiment, the
    count of messages and invitations, and the audit log as it was.
    """
    now = now or utcnow()
    plans = erasure_plan(records)
    for p, plan in zip(records, plans, strict=True):
        opt_out(p, "erased", now)
        for enrolment in db.session.scalars(select(Enrolment).where(
                Enrolment.patient_id == p.id, Enrolment.status == "active")):
            withdraw(enrolment, "", now)
        invitations = select(Invitation.id).where(Invitation.patient_id == p.id)
        db.session.execute(update(Invitation)
                           .where(Invitation.patient_id == p.id,
                                  Invitation.status.in_(OPEN_STATUSES))
                           .values(status="cancelled")
                           .execution_options(synchronize_session=False))
        db.session.execute(update(Invitation).where(Invitation.patient_id == p.id)
                           .values(last_error=None)
                           .execution_options(synchronize_session=False))
        db.session.execute(delete(InvitationToken)
                           .where(InvitationToken.invitation_id.in_(invitations))
                           .execution_options(synchronize_session=False))
        db.session.execute(update(Enrolment).where(Enrolment.patient_id == p.id)
                           .values(withdrawal_reason=None)
                           .execution_options(synchronize_session=False))
        db.session.execute(update(Answer)
                           .where(Answer.response_id.in_(
                               select(Response.id).where(Response.patient_id == p.id)),
                                  Answer.value_text.is_not(None))
                           .values(value_text=None)
                           .execution_options(synchronize_session=False))
        comment_ids = list(db.session.scalars(_comment_ids(p)))
        if comment_ids:
            scrub_comments(comment_ids, unlink_patient=False)
        db.session.execute(update(Alert).where(Alert.patient_id == p.id)
                           .values(acknowledgement_note=None)
                           .execution_options(synchronize_session=False))
        db.session.execute(update(Message)
                           .where(or_(Message.patient_id == p.id,
                                      Message.id.in_(select(message_invitation.c.message_id)
                                                     .where(message_invitation.c.invitation_id
                                                            .in_(invitations)))))
                           .values(last_error=None)
                           .execution_options(synchronize_session=False))
        p.ref = f"erased-{p.id}"
        p.email = None
        p.phone = None
        p.quiet_hours = None
        db.session.flush()
        record("erase", "patient", p.id, patient_id=p.id, counts=plan.counts)
    db.session.expire_all()
    return plans
