"""Patient: identified by the hospital's reference (MRN), with language and contact."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from engage.core.db import utcnow
from engage.extensions import db


class Patient(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "patient"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The hospital's own reference for the patient (MRN); identifiable.
    ref: Mapped[str] = mapped_column(String(64), unique=True)
    #: Preferred language (a code in ``LANGUAGES``).
    language: Mapped[str] = mapped_column(String(8), default="en")
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(32))
    #: IANA time zone, for quiet hours and dates shown to the patient.
    timezone: Mapped[str] = mapped_column(String(64), default="Europe/London")
    #: ``email`` or ``sms``: how the patient prefers to be reached.
    channel: Mapped[str] = mapped_column(String(8), default="email")
    #: Own quiet hours like ``22:00-07:00``; None uses the site default.
    quiet_hours: Mapped[str | None] = mapped_column(String(11))
    #: Set when the patient (or staff for them) stopped all messages.
    opted_out_at: Mapped[datetime | None]
    #: How: ``link`` (unsubscribe link), ``email-header`` (one-click), ``staff``.
    opt_out_source: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"<Patient {self.id}>"
