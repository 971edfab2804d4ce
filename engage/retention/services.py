"""Applying the retention periods (``ENGAGE_RETENTION_<KIND>_DAYS``), and the scrubbing of
a comment's identifiable parts that erasure shares.

Each kind is applied in its own transaction, together with its audit row, so data is never
removed without the record saying so. What is kept, and why, is in docs/security.md
("Retention and patients' rights"):

- ``responses``: submitted (or abandoned) responses past the period are deleted with their
  answers and their acknowledged alerts. Kept whatever their age: a response with an alert
  nobody has acknowledged, and every response of an enrolment whose follow-up is still
  running (active, with questionnaires still to come), which its run chart compares with.
  A comment given as an answer is detached and follows ``comments``.
- ``comments``: past the period, a closed comment keeps its redacted text, themes,
  sentiment and safety level (what measurement and the council's page count) and loses its
  original text, contact details, link to the patient, staff notes and the text and address
  of replies. Open comments and those behind an unacknowledged alert are kept.
- ``messages``: sent, failed and cancelled outbox rows past the period are deleted (they
  hold no address or text; pending ones are never touched).
- ``audit``: audit events past the period are deleted; at least a year is kept whatever the
  setting, and PostgreSQL's trigger enforces it too (migration 0009).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import delete, exists, func, or_, select, text, update
from sqlalchemy.orm import aliased
from sqlalchemy.sql import ColumnElement

from engage.alerts.models import Alert
from engage.audit.models import AuditEvent
from engage.audit.services import record
from engage.core.db import job_lease, release_lease, utcnow
from engage.delivery.models import Message, message_invitation
from engage.extensions import db
from engage.feedback.models import OPEN_STATUSES as OPEN_COMMENT_STATUSES
from engage.feedback.models import FeedbackEvent, FeedbackItem, Reply
from engage.scheduling.models import Enrolment
from engage.survey.models import OPEN_STATUSES as OPEN_INVITATION_STATUSES
from engage.survey.models import Answer, Invitation, Response

#: The kinds of data with a retention period, in the order they are applied.
KINDS = ("responses", "comments", "messages", "audit")
#: The audit log is kept at least this long, whatever the setting.
MIN_AUDIT_DAYS = 365
#: Rows handled per statement, so no statement carries an unbounded list of ids.
CHUNK = 500
LEASE = "retention"
#: A run by the scheduler is skipped when another finished less than this long ago.
JOB_INTERVAL = timedelta(hours=20)


class RetentionError(ValueError):
    """A retention setting that cannot be applied; the message says what to set."""


@dataclass
class KindResult:
    kind: str
    #: 0: kept for ever.
    days: int
    cutoff: datetime | None
    #: Rows deleted (or, for comments, scrubbed); what would be, in a dry run.
    count: int


def retention_days() -> dict[str, int]:
    """``ENGAGE_RETENTION_<KIND>_DAYS`` per kind; raises :class:`RetentionError` for an audit
    period shorter than a year."""
    configured = current_app.config.get("RETENTION_DAYS") or {}
    days = {kind: max(int(configured.get(kind) or 0), 0) for kind in KINDS}
    if 0 < days["audit"] < MIN_AUDIT_DAYS:
        raise RetentionError(
            f"ENGAGE_RETENTION_AUDIT_DAYS={days['audit']} is shorter than a year: set 0 "
            f"(keep for ever) or at least {MIN_AUDIT_DAYS}.")
    return days


# --- what is past its period -----------------------------------------------------------------

def _open_alert_on(condition: ColumnElement[bool]) -> Any:
    return exists().where(condition, Alert.acknowledged_at.is_(None))


def _responses_due(cutoff: datetime) -> Any:
    to_come = aliased(Invitation)
    follow_up_running = exists().where(
        Enrolment.id == Invitation.enrolment_id, Enrolment.status == "active",
        exists().where(to_come.enrolment_id == Enrolment.id,
                       to_come.status.in_(OPEN_INVITATION_STATUSES)))
    comment_alert = exists().where(FeedbackItem.response_id == Response.id,
                                   Alert.feedback_item_id == FeedbackItem.id,
                                   Alert.acknowledged_at.is_(None))
    return (
        select(Response.id)
        .join(Invitation, Invitation.id == Response.invitation_id)
        .where(func.coalesce(Response.submitted_at, Response.started_at) < cutoff,
               ~_open_alert_on(Alert.response_id == Response.id),
               ~comment_alert, ~follow_up_running)
        .order_by(Response.id)
    )


def _comments_due(cutoff: datetime) -> Any:
    return (
        select(FeedbackItem.id)
        .where(FeedbackItem.received_at < cutoff,
               FeedbackItem.status.not_in(OPEN_COMMENT_STATUSES),
               ~_open_alert_on(Alert.feedback_item_id == FeedbackItem.id),
               ~exists().where(Reply.item_id == FeedbackItem.id, Reply.status == "pending"),
               identifiable_comment())
        .order_by(FeedbackItem.id)
    )


def identifiable_comment() -> ColumnElement[bool]:
    """A comment that still holds something scrubbing removes (so scrubbing is idempotent)."""
    return or_(FeedbackItem.text != FeedbackItem.redacted_text,
               FeedbackItem.contact_name.is_not(None), FeedbackItem.contact_email.is_not(None),
               FeedbackItem.contact_phone.is_not(None), FeedbackItem.patient_id.is_not(None))


def _messages_due(cutoff: datetime) -> Any:
    return (
        select(Message.id)
        .where(Message.status.in_(("sent", "failed", "cancelled")),
               func.coalesce(Message.sent_at, Message.created_at) < cutoff)
        .order_by(Message.id)
    )


def _audit_due(cutoff: datetime) -> Any:
    return select(AuditEvent.id).where(AuditEvent.at < cutoff).order_by(AuditEvent.id)


DUE = {"responses": _responses_due, "comments": _comments_due, "messages": _messages_due,
       "audit": _audit_due}


# --- removing ---------------------------------------------------------------------------------

def _delete_responses(ids: Sequence[int]) -> None:
    # Foreign keys first: comments are detached (they follow their own period), then the
    # answers and the (acknowledged) alerts go before the responses.
    db.session.execute(update(FeedbackItem).where(FeedbackItem.response_id.in_(ids))
                       .values(response_id=None).execution_options(synchronize_session=False))
    db.session.execute(delete(Answer).where(Answer.response_id.in_(ids))
                       .execution_options(synchronize_session=False))
    db.session.execute(delete(Alert).where(Alert.response_id.in_(ids))
                       .execution_options(synchronize_session=False))
    db.session.execute(delete(Response).where(Response.id.in_(ids))
                       .execution_options(synchronize_session=False))


def scrub_comments(ids: Sequence[int], *, unlink_patient: bool) -> None:
    """Remove a comment's identifiable parts, keeping what measurement counts.

    The original becomes the redacted text (personal details replaced at intake); contact
    details, the positions of what was found and matched in the original, staff notes, and
    replies' addresses and text go. ``unlink_patient`` also forgets whose comment it was
    (retention); erasure keeps the link to the erased, opaque record.
    """
    values: dict[str, Any] = {
        "text": FeedbackItem.redacted_text, "contact_name": None, "contact_email": None,
        "contact_phone": None, "contact_consent": False, "pii": [], "safety_matches": [],
    }
    if unlink_patient:
        values["patient_id"] = None
    db.session.execute(update(FeedbackItem).where(FeedbackItem.id.in_(ids)).values(**values)
                       .execution_options(synchronize_session=False))
    db.session.execute(update(Reply).where(Reply.item_id.in_(ids))
                       .values(to_address="", subject="", body="", last_error=None)
                       .execution_options(synchronize_session=False))
    for event in db.session.scalars(select(FeedbackEvent).where(
            FeedbackEvent.item_id.in_(ids))):
        if "note" in (event.detail or {}):
            event.detail = {k: v for k, v in event.detail.items() if k != "note"}
    db.session.flush()


def _delete_messages(ids: Sequence[int]) -> None:
    db.session.execute(delete(message_invitation)
                       .where(message_invitation.c.message_id.in_(ids)))
    db.session.execute(delete(Message).where(Message.id.in_(ids))
                       .execution_options(synchronize_session=False))


def _delete_audit(ids: Sequence[int]) -> None:
    db.session.execute(delete(AuditEvent).where(AuditEvent.id.in_(ids))
                       .execution_options(synchronize_session=False))


REMOVE = {"responses": _delete_responses,
          "comments": lambda ids: scrub_comments(ids, unlink_patient=True),
          "messages": _delete_messages, "audit": _delete_audit}


def _allow_audit_deletion(cutoff: datetime) -> None:
    """Tell PostgreSQL's append-only trigger (migration 0009) which rows retention may
    delete, for this transaction only."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(text("SELECT set_config('engage.audit_retention_before', :c, true)"),
                           {"c": cutoff.isoformat()})


# --- a run ------------------------------------------------------------------------------------

def apply_kind(kind: str, days: int, now: datetime, *, dry_run: bool, actor: str
               ) -> KindResult:
    """Apply one kind's period and record it; commits (one transaction per kind)."""
    cutoff = now - timedelta(days=days) if days else None
    count = 0
    if cutoff is not None:
        due = DUE[kind](cutoff)
        if dry_run:
            count = db.session.scalar(select(func.count()).select_from(due.subquery())) or 0
        else:
            if kind == "audit":
                _allow_audit_deletion(cutoff)
            while ids := list(db.session.scalars(due.limit(CHUNK))):
                REMOVE[kind](ids)
                count += len(ids)
    record("retention", kind, None, actor=actor, days=days,
           cutoff=cutoff.isoformat() if cutoff else None, count=count, dry_run=dry_run)
    db.session.commit()
    return KindResult(kind, days, cutoff, count)


def run(now: datetime | None = None, *, dry_run: bool = False, actor: str = "cli"
        ) -> list[KindResult]:
    """Apply every kind's retention period (or count what it would remove); commits."""
    now = now or utcnow()
    days = retention_days()
    return [apply_kind(kind, days[kind], now, dry_run=dry_run, actor=actor) for kind in KINDS]


def holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:64]


def run_exclusive(now: datetime | None = None, *, actor: str) -> list[KindResult] | None:
    """:func:`run` under the retention lease; None when another run holds it."""
    me = holder()
    if not job_lease(LEASE, me, 3600, now):
        return None
    try:
        return run(now, actor=actor)
    finally:
        db.session.rollback()
        release_lease(LEASE, me)


def scheduled_run(now: datetime | None = None) -> list[KindResult] | None:
    """The ``retention.apply`` job: once a day, whichever scheduler comes first."""
    now = now or utcnow()
    recent = db.session.scalar(select(AuditEvent.id).where(
        AuditEvent.object_type == KINDS[0], AuditEvent.action == "retention",
        AuditEvent.actor == "job", AuditEvent.at > now - JOB_INTERVAL).limit(1))
    if recent is not None:
        return None
    return run_exclusive(now, actor="job")

