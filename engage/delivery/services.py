"""The dispatcher: expire closed windows, plan messages, claim them, send them once.

One pass (:func:`dispatch`) is what the scheduler's jobs and ``engage dispatch``
run. It is safe to run in several processes at once:

* planning moves each invitation's ``messages_planned`` counter with a
  conditional UPDATE, so only one process plans a given first message or reminder;
* sending claims messages with ``UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP
  LOCKED)`` on PostgreSQL (on SQLite, where every transaction takes the write lock
  first, the same statement is atomic), setting a lease; a message whose lease
  lapsed (its process died) is claimed again;
* each message's links are committed before it is handed to the channel, and its
  result right after, so a crash loses nothing (at worst, a message whose send
  finished but whose result was not recorded goes again after its lease).
"""

from __future__ import annotations

import os
import socket
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from babel.dates import format_date
from flask import current_app, render_template
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import and_, exists, or_, select, update
from sqlalchemy.orm import selectinload

from engage.audit.services import record
from engage.core import mail
from engage.core.db import claim, utcnow
from engage.core.security import read_signed_id, signed_id
from engage.delivery.channels import (
    PermanentError,
    Sms,
    TransientError,
    email_backend,
    sms_backend,
)
from engage.delivery.models import Message, message_invitation
from engage.extensions import db
from engage.feedback.models import Reply
from engage.patients.models import Patient
from engage.scheduling.models import Enrolment, Timepoint
from engage.scheduling.timing import Offset, QuietHours, zone
from engage.survey.models import OPEN_STATUSES, Invitation
from engage.survey.services import issue_token, survey_url

#: Invitations a message may still be sent for.
SENDABLE = OPEN_STATUSES
#: Seconds on a steady clock; a name of its own so tests can make a pass "take hours".
elapsed_clock = time.monotonic


@dataclass
class PassReport:
    expired: int = 0
    planned: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    cancelled: int = 0
    deferred: int = 0
    errors: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return (f"expired {self.expired} invitations; planned {self.planned} messages; "
                f"sent {self.sent}, will retry {self.retried}, failed {self.failed}, "
                f"cancelled {self.cancelled}, deferred {self.deferred}")


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def quiet_hours_for(patient: Patient) -> QuietHours:
    return QuietHours.parse(patient.quiet_hours or current_app.config["QUIET_HOURS"])


# --- expiry ----------------------------------------------------------------------------

def expire_closed(now: datetime) -> int:
    """Invitations whose window closed unanswered become ``expired``; commits."""
    expired = claim(
        update(Invitation)
        .where(Invitation.status.in_(SENDABLE), Invitation.closes_at <= now)
        .values(status="expired")
    )
    db.session.commit()
    return expired


# --- planning --------------------------------------------------------------------------

def plan_messages(now: datetime, batch: int = 1000) -> int:
    """Queue first messages and reminders that are due; one message per patient and kind.

    Commits after each batch. Returns how many messages were created.
    """
    created = 0
    created += _plan(now, batch, kind="invitation")
    created += _plan(now, batch, kind="reminder")
    return created


def _candidates(now: datetime, kind: str, after_id: int, batch: int) -> list[Any]:
    active_or_none = or_(
        Invitation.enrolment_id.is_(None),
        exists().where(Enrolment.id == Invitation.enrolment_id, Enrolment.status == "active"),
    )
    query = (
        select(Invitation.id, Invitation.patient_id, Invitation.messages_planned,
               Invitation.opens_at, Invitation.channel, Timepoint.reminders,
               Patient.timezone)
        .outerjoin(Timepoint, Timepoint.id == Invitation.timepoint_id)
        .join(Patient, Patient.id == Invitation.patient_id)
        .where(Invitation.id > after_id, Invitation.opens_at <= now,
               Invitation.closes_at > now, active_or_none)
        .order_by(Invitation.id).limit(batch)
    )
    if kind == "invitation":
        # Only invitations planned by a protocol are messaged; one-off links are handed out.
        query = query.where(Invitation.status == "scheduled", Invitation.messages_planned == 0,
                            Invitation.timepoint_id.is_not(None))
    else:
        query = query.where(Invitation.status.in_(("sent", "reminded")),
                            Invitation.messages_planned >= 1,
                            Invitation.timepoint_id.is_not(None))
    return list(db.session.execute(query).all())


def _plan(now: datetime, batch: int, kind: str) -> int:
    created = 0
    after_id = 0
    while True:
        rows = _candidates(now, kind, after_id, batch)
        if not rows:
            return created
        after_id = rows[-1].id
        due = []
        for row in rows:
            if kind == "reminder":
                reminders = row.reminders or []
                step = row.messages_planned - 1
                if step >= len(reminders):
                    continue
                when = Offset.parse(reminders[step]).apply(row.opens_at, zone(row.timezone))
                if when > now:
                    continue
            due.append(row)
        # Claim each invitation's next step, so a second planner skips it.
        by_id = {r.id: r for r in due}
        won: dict[int, Any] = {}
        for step_count in {r.messages_planned for r in due}:
            ids = [r.id for r in due if r.messages_planned == step_count]
            for claimed_id in db.session.scalars(
                update(Invitation)
                .where(Invitation.id.in_(ids), Invitation.messages_planned == step_count)
                .values(messages_planned=step_count + 1)
                .returning(Invitation.id)
                .execution_options(synchronize_session=False)
            ):
                won[claimed_id] = by_id[claimed_id]
        created += _queue(won.values(), kind, now)
        db.session.commit()


def _queue(rows: Any, kind: str, now: datetime) -> int:
    """One message per patient and channel for these invitation rows."""
    by_patient: dict[int, list[Any]] = defaultdict(list)
    for row in rows:
        by_patient[row.patient_id].append(row)
    if not by_patient:
        return 0
    patients = {p.id: p for p in db.session.scalars(
        select(Patient).where(Patient.id.in_(list(by_patient))))}
    created = 0
    links: list[dict[str, int]] = []
    for patient_id, invitation_rows in by_patient.items():
        patient = patients[patient_id]
        if patient.opted_out_at is not None:
            continue  # planned but never sent: opt-out stops everything
        groups: dict[str, list[int]] = defaultdict(list)
        for row in invitation_rows:
            groups[choose_channel(patient, row.channel)].append(row.id)
        start = quiet_hours_for(patient).next_allowed(now, zone(patient.timezone))
        for channel, ids in groups.items():
            message = Message(patient_id=patient_id, kind=kind, channel=channel,
                              next_attempt_at=start, created_at=now)
            db.session.add(message)
            db.session.flush()
            links.extend({"message_id": message.id, "invitation_id": i} for i in ids)
            created += 1
    if links:
        db.session.execute(message_invitation.insert(), links)
    return created


def choose_channel(patient: Patient, wanted: str) -> str:
    """The timepoint's channel, else the patient's; SMS only when there is a number."""
    channel = patient.channel if wanted == "patient" else wanted
    if channel == "sms" and not patient.phone and patient.email:
        return "email"
    if channel == "email" and not patient.email and patient.phone:
        return "sms"
    return channel


# --- claiming and sending --------------------------------------------------------------

def claim_batch(now: datetime, worker: str, batch: int, lease: timedelta) -> list[int]:
    """Atomically take up to ``batch`` due messages (or ones whose lease lapsed); commits."""
    due = or_(
        and_(Message.status == "pending", Message.next_attempt_at <= now),
        and_(Message.status == "sending", Message.lease_until < now),
    )
    # MATERIALIZED: as a plain ``IN (subquery)`` PostgreSQL may run the locking
    # subquery once per outer row (a nested-loop semi join), each run locking
    # ``batch`` more rows, so one claim took nearly every due message.
    claimable = (
        select(Message.id).where(due).order_by(Message.next_attempt_at, Message.id)
        .limit(batch).with_for_update(skip_locked=True)
        .cte("claimable").prefix_with("MATERIALIZED", dialect="postgresql")
    )
    ids = list(db.session.scalars(
        update(Message)
        .where(Message.id.in_(select(claimable.c.id)), due)
        .values(status="sending", lease_until=now + lease, claimed_by=worker)
        .returning(Message.id)
        .execution_options(synchronize_session=False)
    ))
    db.session.commit()
    return sorted(ids)


def send_due(now: datetime, *, report: PassReport | None = None) -> PassReport:
    """Claim and send every due message, batch by batch."""
    report = report or PassReport()
    cfg = current_app.config
    lease = timedelta(seconds=cfg["DELIVERY_LEASE_SECONDS"])
    worker = worker_name()
    pass_started = elapsed_clock()
    while True:
        # A pass may outlast a lease: each claim counts its lease from the moment it is
        # made (the pass's clock plus the time elapsed), never from when the pass began,
        # or a long pass would make claims that another dispatcher may take over at once.
        claimed_at = now + timedelta(seconds=elapsed_clock() - pass_started)
        ids = claim_batch(claimed_at, worker, cfg["DELIVERY_BATCH"], lease)
        if not ids:
            return report
        started = elapsed_clock()
        for message_id in ids:
            if elapsed_clock() - started > lease.total_seconds() / 2:
                _release(message_id, worker)  # give the rest back before the lease lapses
                continue
            _send_one(message_id, worker, now, report)


def _release(message_id: int, worker: str) -> None:
    claim(update(Message).where(Message.id == message_id, Message.claimed_by == worker,
                                Message.status == "sending")
          .values(status="pending", lease_until=None))
    db.session.commit()


def _send_one(message_id: int, worker: str, now: datetime, report: PassReport) -> None:
    message = db.session.scalar(
        select(Message).options(
            selectinload(Message.invitations).selectinload(Invitation.enrolment),
            selectinload(Message.patient), selectinload(Message.reply))
        .where(Message.id == message_id, Message.status == "sending",
               Message.claimed_by == worker)
    )
    if message is None:
        return
    patient = message.patient
    reply = message.reply
    invitations = [i for i in message.invitations if _still_wanted(i, now)]
    reason = None
    if reply is not None:
        pass  # someone asked to be contacted: a questionnaire opt-out does not stop it
    elif patient is None or patient.opted_out_at is not None:
        reason = "opted-out"
    elif not invitations:
        reason = "nothing-left"
    if reason:
        message.status, message.cancel_reason, message.lease_until = "cancelled", reason, None
        db.session.commit()
        report.cancelled += 1
        return
    tz, quiet = recipient_clock(message)
    allowed = quiet.next_allowed(now, tz)
    if allowed > now:
        message.status, message.next_attempt_at, message.lease_until = "pending", allowed, None
        db.session.commit()
        report.deferred += 1
        return
    # The links must exist before the message that carries them leaves.
    payload = render_reply(reply) if reply is not None else render(message, invitations)
    channel = message.channel  # read now: after the commit it would open a new transaction
    db.session.commit()
    # No database access from here until the send is over: on SQLite a transaction holds
    # the only write lock, and a slow mail server must not keep web requests waiting.
    try:
        if channel == "sms":
            sms_backend().send(payload)  # type: ignore[arg-type]
        else:
            email_backend().send(payload)  # type: ignore[arg-type]
    except (TransientError, PermanentError) as exc:
        _failed(message, invitations, exc, now, report)
        return
    message.status, message.sent_at, message.lease_until = "sent", now, None
    message.attempts += 1
    message.last_error = None
    for invitation in invitations:
        invitation.status = "sent" if message.kind == "invitation" else "reminded"
        invitation.last_sent_at = now
        invitation.last_error = None
    if reply is not None:
        reply.status, reply.sent_at, reply.last_error = "sent", now, None
    record("send", "message", message.id, patient_id=message.patient_id, actor="job",
           channel=message.channel, kind=message.kind)
    db.session.commit()
    report.sent += 1


def recipient_clock(message: Message) -> tuple[Any, QuietHours]:
    """The recipient's time zone and quiet hours: the patient's, or the site's defaults."""
    cfg = current_app.config
    if message.patient is not None:
        return zone(message.patient.timezone), quiet_hours_for(message.patient)
    return zone(cfg["DEFAULT_TIMEZONE"]), QuietHours.parse(cfg["QUIET_HOURS"])


def _still_wanted(invitation: Invitation, now: datetime) -> bool:
    if invitation.status not in SENDABLE or invitation.closes_at <= now:
        return False
    return invitation.enrolment is None or invitation.enrolment.status == "active"


def _failed(message: Message, invitations: list[Invitation], exc: Exception, now: datetime,
            report: PassReport) -> None:
    cfg = current_app.config
    message.attempts += 1
    message.last_error = str(exc)[:2000]
    message.lease_until = None
    final = isinstance(exc, PermanentError) or message.attempts >= cfg["DELIVERY_MAX_ATTEMPTS"]
    if final:
        message.status = "failed"
        report.failed += 1
        for invitation in invitations:
            invitation.last_error = message.last_error
            if message.kind == "invitation":
                invitation.status = "failed"
        if message.reply is not None:
            message.reply.status = "failed"
    else:
        backoff = timedelta(seconds=cfg["DELIVERY_RETRY_SECONDS"] * 2 ** (message.attempts - 1))
        tz, quiet = recipient_clock(message)
        message.next_attempt_at = quiet.next_allowed(now + backoff, tz)
        message.status = "pending"
        report.retried += 1
        for invitation in invitations:
            invitation.last_error = message.last_error
    if message.reply is not None:
        message.reply.last_error = message.last_error
    db.session.commit()
    current_app.logger.warning("message %s: %s (attempt %s%s)", message.id, exc,
                               message.attempts, ", giving up" if final else "")


# --- rendering -------------------------------------------------------------------------

def unsubscribe_token(patient_id: int) -> str:
    return signed_id("unsubscribe", patient_id)


def patient_from_unsubscribe_token(token: str) -> int | None:
    return read_signed_id("unsubscribe", token)


def render(message: Message, invitations: list[Invitation]) -> Any:
    """The email or SMS for ``message``, in the patient's language, with fresh links."""
    import surveys

    patient = message.patient
    assert patient is not None  # invitations are always a patient's
    base = current_app.config["BASE_URL"]
    language = invitations[0].language or patient.language
    tz = zone(patient.timezone)
    items = []
    for invitation in invitations:
        url = survey_url(base, issue_token(invitation, short=message.channel == "sms"))
        instrument = surveys.get(invitation.instrument_id)
        closes = format_date(invitation.closes_at.astimezone(tz).date(), format="long",
                             locale=language)
        items.append({"title": instrument.title_in(language), "url": url, "closes": closes})
    unsubscribe = f"{base}/u/{unsubscribe_token(patient.id)}"
    service = invitations[0].service.name
    context = {"items": items, "service": service, "unsubscribe": unsubscribe,
               "reminder": message.kind == "reminder", "language": language}
    with force_locale(language):
        if message.channel == "sms":
            return Sms(to=patient.phone or "",
                       body=sms_body(items, service, unsubscribe, message.kind == "reminder"))
        subject = (_("Reminder: %(service)s would like to hear from you", service=service)
                   if message.kind == "reminder"
                   else _("%(service)s would like to hear from you", service=service))
        email = mail.build_message(
            patient.email or "", subject,
            render_template("delivery/invitation_email.txt", **context),
            html=render_template("delivery/invitation_email.html", **context),
            headers={"List-Unsubscribe": f"<{unsubscribe}>",
                     "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
                     "Content-Language": language},
        )
        return email


def render_reply(reply: Reply) -> Any:
    """A reply to a comment: the text staff wrote, in the person's language."""
    from engage.feedback.models import FeedbackItem

    item = db.session.get(FeedbackItem, reply.item_id)
    service = item.service.name if item is not None else ""
    with force_locale(reply.language):
        if reply.channel == "sms":
            return Sms(to=reply.to_address, body=reply.body)
        subject = reply.subject or _("A reply from %(service)s about your feedback",
                                     service=service)
        context = {"body": reply.body, "service": service, "language": reply.language}
        return mail.build_message(
            reply.to_address, subject,
            render_template("feedback/reply_email.txt", **context),
            html=render_template("feedback/reply_email.html", **context),
            headers={"Content-Language": reply.language},
        )


def queue_reply(reply: Reply, item: Any, now: datetime | None = None) -> Message:
    """Put a reply in the outbox; the dispatcher sends it once, outside quiet hours."""
    now = now or utcnow()
    message = Message(patient_id=item.patient_id, kind="reply", channel=reply.channel,
                      reply_id=reply.id, created_at=now, next_attempt_at=now)
    db.session.add(message)
    db.session.flush()
    tz, quiet = recipient_clock(message)
    message.next_attempt_at = quiet.next_allowed(now, tz)
    return message


def sms_body(items: list[dict[str, Any]], service: str, unsubscribe: str,
             reminder: bool) -> str:
    """A short text with the links: one GSM-7 SMS (160) for one link where the language allows.

    The service's name is dropped when keeping it would need a second part.
    """
    from engage.delivery.channels import sms_segments

    links = " ".join(i["url"] for i in items)
    stop = _("Stop: %(url)s", url=unsubscribe)
    if reminder:
        texts = [_("%(service)s reminder: %(links)s", service=service, links=links),
                 _("Reminder: %(links)s", links=links)]
    else:
        texts = [_("%(service)s asks how you are: %(links)s", service=service, links=links),
                 _("How are you? %(links)s", links=links)]
    bodies = [f"{text}\n{stop}" for text in texts]
    return next((b for b in bodies if sms_segments(b) == 1), bodies[-1])


# --- opt-out, cancellation -------------------------------------------------------------

#: Opt-outs the patient made themselves (the link in a message, the one-click header).
PATIENT_OPT_OUTS = ("link", "email-header")


def opt_out(patient: Patient, source: str, now: datetime | None = None) -> bool:
    """Stop every message to the patient; recorded. False if they had already opted out.

    Staff (``source="staff"``) stop only this record, their service's. When the patient
    says stop (:data:`PATIENT_OPT_OUTS`), every service's record of the same reference
    stops too: a person who asks for no more messages means none, and stopping messages
    can never redirect them to anyone.
    """
    if source in PATIENT_OPT_OUTS:
        others = db.session.scalars(select(Patient).where(
            Patient.ref == patient.ref, Patient.id != patient.id,
            Patient.opted_out_at.is_(None))).all()
        for other in others:
            _stop(other, source, now)
    if patient.opted_out_at is not None:
        return False
    _stop(patient, source, now)
    return True


def _stop(patient: Patient, source: str, now: datetime | None) -> None:
    patient.opted_out_at = now or utcnow()
    patient.opt_out_source = source
    cancel_pending_messages(
        select(Invitation.id).where(Invitation.patient_id == patient.id), "opted-out",
        patient_id=patient.id)
    db.session.flush()
    record("opt-out", "patient", patient.id, patient_id=patient.id, source=source,
           actor="patient-link" if source in PATIENT_OPT_OUTS else None)


def opt_in(patient: Patient) -> None:
    """Staff undo of an opt-out, at the patient's request; recorded.

    Questionnaires not yet sent whose first message the opt-out stopped are
    planned again, so the next pass sends those whose window is still open.
    """
    patient.opted_out_at = None
    patient.opt_out_source = None
    live_message = exists().where(
        message_invitation.c.invitation_id == Invitation.id,
        message_invitation.c.message_id == Message.id, Message.status != "cancelled")
    claim(update(Invitation)
          .where(Invitation.patient_id == patient.id, Invitation.status == "scheduled",
                 Invitation.messages_planned > 0, ~live_message)
          .values(messages_planned=0))
    db.session.flush()
    record("opt-in", "patient", patient.id, patient_id=patient.id)


def cancel_pending_messages(invitation_ids: Any, reason: str,
                            patient_id: int | None = None) -> int:
    """Cancel pending messages for these invitations (a select of ids), or all of a patient's."""
    condition: Any = Message.id.in_(
        select(message_invitation.c.message_id)
        .where(message_invitation.c.invitation_id.in_(invitation_ids)))
    if patient_id is not None:
        # Not replies: those answer a comment whose writer asked to be contacted.
        condition = or_(condition, and_(Message.patient_id == patient_id,
                                        Message.reply_id.is_(None)))
    return claim(update(Message).where(condition, Message.status == "pending")
                 .values(status="cancelled", cancel_reason=reason))


# --- one pass --------------------------------------------------------------------------

def dispatch(now: datetime | None = None) -> PassReport:
    """Expire, plan and send everything due at ``now``."""
    now = now or utcnow()
    report = PassReport()
    report.expired = expire_closed(now)
    report.planned = plan_messages(now)
    send_due(now, report=report)
    return report

