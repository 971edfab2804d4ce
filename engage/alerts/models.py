"""Alert: a response that needs a clinician now (e.g. PHQ-9 item 9 above zero)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from engage.accounts.models import User
from engage.core.db import utcnow
from engage.extensions import db
from engage.feedback.models import FeedbackItem
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
