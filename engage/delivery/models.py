"""Message: one email or SMS to one patient, listing one or more invitations.

Messages are the outbox. Each is claimed in the database before it is sent
(``status`` pending -> sending with a lease), so no two dispatchers send it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, ForeignKey, Index, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from engage.core.db import utcnow
from engage.extensions import db
from engage.feedback.models import Reply
from engage.patients.models import Patient
from engage.survey.models import Invitation

MESSAGE_STATUSES = ("pending", "sending", "sent", "failed", "cancelled")

message_invitation = Table(
    "message_invitation",
    db.metadata,
    Column("message_id", ForeignKey("message.id", ondelete="CASCADE"), primary_key=True),
    Column("invitation_id", ForeignKey("invitation.id", ondelete="CASCADE"), primary_key=True,
           index=True),
)


class Message(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "message"
    __table_args__ = (
        # The dispatcher's claim query: due pending messages, oldest first.
        Index("ix_message_status_due", "status", "next_attempt_at"),
        Index("ix_message_patient_created", "patient_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: None for a reply to someone who is not a patient on record.
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patient.id", ondelete="CASCADE"))
    #: ``invitation`` (first message for these invitations), ``reminder``, or ``reply``.
    kind: Mapped[str] = mapped_column(String(12))
    #: For a reply: what to send and to whom.
    reply_id: Mapped[int | None] = mapped_column(
        ForeignKey("feedback_reply.id", ondelete="CASCADE"), index=True)
    #: ``email`` or ``sms``.
    channel: Mapped[str] = mapped_column(String(8))
    #: One of :data:`MESSAGE_STATUSES`.
    status: Mapped[str] = mapped_column(String(12), default="pending")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: Not before this (quiet hours, retry backoff).
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    attempts: Mapped[int] = mapped_column(default=0)
    #: While ``sending``: the claim lapses at this time, so a crashed sender's work is retried.
    lease_until: Mapped[datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    sent_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    #: Why a message was cancelled (opt-out, completed, withdrawn, window closed).
    cancel_reason: Mapped[str | None] = mapped_column(String(32))

    patient: Mapped[Patient | None] = relationship()
    reply: Mapped[Reply | None] = relationship()
    invitations: Mapped[list[Invitation]] = relationship(secondary=message_invitation,
                                                         lazy="selectin")
