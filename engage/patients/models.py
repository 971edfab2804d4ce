"""Patient: one service's record of a person, by the hospital's reference (MRN).

The same person seen by two services has two records, one per service, each with its own
contact details, language and opt-out: one service can never redirect or stop another's
messages, nor learn that another service knows the reference (docs/security.md).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from engage.core.db import utcnow
from engage.extensions import db
from engage.org.models import Service


class Patient(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "patient"
    __table_args__ = (
        # A reference is unique within a service only: each service has its own record.
        UniqueConstraint("service_id", "ref"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The service this record belongs to; only its staff (and admins) see or change it.
    service_id: Mapped[int] = mapped_column(ForeignKey("service.id"))
    #: The hospital's own reference for the patient (MRN); identifiable.
    ref: Mapped[str] = mapped_column(String(64))
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

    service: Mapped[Service] = relationship()

    def __repr__(self) -> str:
        return f"<Patient {self.id}>"
