"""Alert: a response that needs a clinician now; CrisisContact: where a patient gets help now."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from engage.accounts.models import User
from engage.core.db import utcnow
from engage.extensions import db
from engage.feedback.models import FeedbackItem
from engage.org.models import Service
from engage.patients.models import Patient
from engage.survey.models import Response


class Alert(db.Model):  # type: ignore[name-defined,misc]
    """Raised by a questionnaire's alert rule, or by a comment that a safety rule flagged."""

    __tablename__ = "alert"
    __table_args__ = (
        Index("ix_alert_service_open", "service_id", "acknowledged_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The response that raised it (also for a comment given as a survey answer).
    response_id: Mapped[int | None] = mapped_column(
        ForeignKey("response.id", ondelete="CASCADE"))
    #: None for a comment left anonymously on the public page.
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patient.id", ondelete="CASCADE"))
    #: The comment that raised it, for an urgent comment.
    feedback_item_id: Mapped[int | None] = mapped_column(
        ForeignKey("feedback_item.id", ondelete="CASCADE"), index=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("service.id"))
    #: The rule that fired, e.g. ``self-harm``, or ``comment-<category>`` for a comment.
    kind: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: Last time the service's clinicians were emailed about it.
    notified_at: Mapped[datetime | None]
    notify_count: Mapped[int] = mapped_column(default=0)
    notify_error: Mapped[str | None] = mapped_column(Text)
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    #: What the clinician did, in their words.
    acknowledgement_note: Mapped[str | None] = mapped_column(Text)

    response: Mapped[Response | None] = relationship()
    patient: Mapped[Patient | None] = relationship()
    feedback_item: Mapped[FeedbackItem | None] = relationship()
    acknowledged_by: Mapped[User | None] = relationship()


class CrisisContact(db.Model):  # type: ignore[name-defined,misc]
    """A helpline shown on a patient's thank-you page when their answers raised an alert.

    ``crisis_contacts_for`` in ``alerts.services`` says which ones a patient sees.
    """

    __tablename__ = "crisis_contact"
    __table_args__ = (
        CheckConstraint("phone IS NOT NULL OR text IS NOT NULL", name="phone_or_text"),
        Index("ix_crisis_contact_service_position", "service_id", "position"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: None: the organisation-wide list, for services that have no list of their own.
    service_id: Mapped[int | None] = mapped_column(ForeignKey("service.id", ondelete="CASCADE"))
    #: One of ``LANGUAGES``; None: shown whatever the page's language.
    language: Mapped[str | None] = mapped_column(String(8))
    name: Mapped[str] = mapped_column(String(120))
    #: As patients should read it, e.g. ``116 123``; the ``tel:`` link keeps only the digits.
    phone: Mapped[str | None] = mapped_column(String(40))
    #: The text line as patients should read it, e.g. ``Text SHOUT to 85258``.
    text: Mapped[str | None] = mapped_column(String(120))
    #: When someone answers, e.g. ``24 hours, every day``.
    hours: Mapped[str] = mapped_column(String(120))
    #: Who it is for, in a few words, e.g. ``for people under 18``.
    note: Mapped[str | None] = mapped_column(String(200))
    #: Lower first, within the service's (or the organisation-wide) list.
    position: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    service: Mapped[Service | None] = relationship()

    def __repr__(self) -> str:
        return f"<CrisisContact {self.id} {self.name!r}>"
