"""Alert: a response that needs a clinician now (e.g. PHQ-9 item 9 above zero)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from engage.accounts.models import User
from engage.core.db import utcnow
from engage.extensions import db
from engage.patients.models import Patient
from engage.survey.models import Response


class Alert(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "alert"
    __table_args__ = (
        Index("ix_alert_service_open", "service_id", "acknowledged_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    response_id: Mapped[int] = mapped_column(ForeignKey("response.id", ondelete="CASCADE"))
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id", ondelete="CASCADE"))
    service_id: Mapped[int] = mapped_column(ForeignKey("service.id"))
    #: The rule that fired, e.g. ``self-harm``.
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

    response: Mapped[Response] = relationship()
    patient: Mapped[Patient] = relationship()
    acknowledged_by: Mapped[User | None] = relationship()
