"""Invitation (one questionnaire offered through one link), Response and Answer."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from engage.core.db import utcnow
from engage.extensions import db
from engage.org.models import Service
from engage.patients.models import Patient

if TYPE_CHECKING:
    from engage.scheduling.models import Enrolment

INVITATION_STATUSES = (
    "scheduled", "sent", "reminded", "completed", "expired", "cancelled", "failed",
)
#: Statuses in which the link still opens the questionnaire.
OPEN_STATUSES = ("scheduled", "sent", "reminded")


class Invitation(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "invitation"
    __table_args__ = (
        Index("ix_invitation_patient_status", "patient_id", "status"),
        # The dispatcher looks for invitations whose window is open and that need a message.
        Index("ix_invitation_status_opens", "status", "opens_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id", ondelete="CASCADE"))
    service_id: Mapped[int] = mapped_column(ForeignKey("service.id"))
    instrument_id: Mapped[str] = mapped_column(String(64))
    #: Language the questionnaire is shown in; the patient may change it on the page.
    language: Mapped[str] = mapped_column(String(8), default="en")
    status: Mapped[str] = mapped_column(String(16), default="sent")
    opens_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: End of the answer window: the link stops working after it.
    closes_at: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    completed_at: Mapped[datetime | None]
    #: The enrolment and timepoint that planned it; None for a one-off invitation.
    enrolment_id: Mapped[int | None] = mapped_column(
        ForeignKey("enrolment.id", ondelete="CASCADE"), index=True)
    timepoint_id: Mapped[int | None] = mapped_column(ForeignKey("timepoint.id",
                                                                ondelete="SET NULL"))
    #: When it is due (the window may open before or after), for ordering and rates.
    due_at: Mapped[datetime | None]
    #: ``patient`` (their preference), ``email`` or ``sms``.
    channel: Mapped[str] = mapped_column(String(8), default="patient")
    #: How many messages (first + reminders) have been planned for it so far.
    messages_planned: Mapped[int] = mapped_column(default=0)
    last_sent_at: Mapped[datetime | None]
    #: The last delivery failure, shown to staff.
    last_error: Mapped[str | None] = mapped_column(Text)

    patient: Mapped[Patient] = relationship(lazy="joined")
    service: Mapped[Service] = relationship(lazy="joined")
    response: Mapped[Response | None] = relationship(back_populates="invitation")
    enrolment: Mapped[Enrolment | None] = relationship()


class InvitationToken(db.Model):  # type: ignore[name-defined,misc]
    """One link to an invitation. Every message carries a fresh one; all stay valid.

    The token itself is never stored, only its SHA-256, so each message must
    mint its own link: the one in an earlier email cannot be rebuilt.
    """

    __tablename__ = "invitation_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    invitation_id: Mapped[int] = mapped_column(ForeignKey("invitation.id", ondelete="CASCADE"),
                                               index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    invitation: Mapped[Invitation] = relationship()


class Response(db.Model):  # type: ignore[name-defined,misc]
    """The answers given through one invitation; at most one per invitation."""

    __tablename__ = "response"
    __table_args__ = (
        Index("ix_response_service_submitted", "service_id", "submitted_at"),
        Index("ix_response_patient_submitted", "patient_id", "submitted_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    invitation_id: Mapped[int] = mapped_column(
        ForeignKey("invitation.id", ondelete="CASCADE"), unique=True
    )
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id", ondelete="CASCADE"))
    service_id: Mapped[int] = mapped_column(ForeignKey("service.id"))
    instrument_id: Mapped[str] = mapped_column(String(64))
    instrument_version: Mapped[str] = mapped_column(String(32))
    language: Mapped[str] = mapped_column(String(8))
    #: ``self`` or ``proxy`` (someone answering for the patient).
    respondent: Mapped[str] = mapped_column(String(8), default="self")
    #: The proxy's relationship to the patient, e.g. ``parent``; None when self.
    proxy_relationship: Mapped[str | None] = mapped_column(String(32))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: None while the patient is still answering.
    submitted_at: Mapped[datetime | None]
    total: Mapped[float | None]
    band: Mapped[str | None] = mapped_column(String(32))
    complete: Mapped[bool] = mapped_column(default=False)
    #: link_ids of scored items left unanswered.
    missing: Mapped[list[str]] = mapped_column(JSON, default=list)

    invitation: Mapped[Invitation] = relationship(back_populates="response")
    patient: Mapped[Patient] = relationship()
    service: Mapped[Service] = relationship()
    answers: Mapped[list[Answer]] = relationship(
        back_populates="response", cascade="all, delete-orphan", lazy="selectin"
    )

    def answer_map(self) -> dict[str, Any]:
        """``link_id`` -> the value as the scoring API takes it."""
        return {a.link_id: a.value for a in self.answers}


class Answer(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "answer"
    __table_args__ = (UniqueConstraint("response_id", "link_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    response_id: Mapped[int] = mapped_column(ForeignKey("response.id", ondelete="CASCADE"))
    link_id: Mapped[str] = mapped_column(String(64))
    #: The chosen option's code, for choice items.
    value_code: Mapped[str | None] = mapped_column(String(64))
    #: The chosen option's numeric value, for choice items.
    value_number: Mapped[float | None]
    #: Free text, for text items.
    value_text: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    response: Mapped[Response] = relationship(back_populates="answers")

    @property
    def value(self) -> Any:
        if self.value_code is not None:
            return self.value_code
        return self.value_text
