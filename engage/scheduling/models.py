"""Protocol (a follow-up plan), its Timepoints, and a patient's Enrolment on it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from engage.core.db import utcnow
from engage.extensions import db
from engage.org.models import Service
from engage.patients.models import Patient

#: How a timepoint reaches the patient: their own preference, or a fixed channel.
CHANNELS = ("patient", "email", "sms")
ENROLMENT_STATUSES = ("active", "withdrawn")


class Protocol(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "protocol"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Stable id used on the command line, in CSV files and the API, e.g. ``depression-followup``.
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    service_id: Mapped[int] = mapped_column(ForeignKey("service.id"))
    #: What the anchor date is, in words: "surgery date", "first visit".
    anchor_label: Mapped[str] = mapped_column(String(100), default="")
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    service: Mapped[Service] = relationship()
    timepoints: Mapped[list[Timepoint]] = relationship(
        back_populates="protocol", order_by="Timepoint.position",
        cascade="all, delete-orphan", lazy="selectin",
    )


class Timepoint(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "timepoint"

    id: Mapped[int] = mapped_column(primary_key=True)
    protocol_id: Mapped[int] = mapped_column(ForeignKey("protocol.id", ondelete="CASCADE"),
                                             index=True)
    position: Mapped[int] = mapped_column(default=0)
    #: Shown to staff: "Baseline", "6 weeks".
    label: Mapped[str] = mapped_column(String(100))
    #: When it is due, from the anchor: ``-7d``, ``0``, ``+2w``, ``+3m``.
    offset: Mapped[str] = mapped_column(String(16))
    #: Instrument ids, e.g. ``["phq-9", "gad-7"]``.
    instruments: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: When the answer window opens and closes, from the due time.
    window_opens: Mapped[str] = mapped_column(String(16), default="0")
    window_closes: Mapped[str] = mapped_column(String(16), default="+7d")
    #: Reminders, from when the window opens, e.g. ``["+3d", "+6d"]``.
    reminders: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: One of :data:`CHANNELS`.
    channel: Mapped[str] = mapped_column(String(8), default="patient")

    protocol: Mapped[Protocol] = relationship(back_populates="timepoints")


class Enrolment(db.Model):  # type: ignore[name-defined,misc]
    """A patient following a protocol from an anchor date; at most one active per protocol."""

    __tablename__ = "enrolment"
    __table_args__ = (
        Index("uq_enrolment_active", "patient_id", "protocol_id", unique=True,
              sqlite_where=db.text("status = 'active'"),
              postgresql_where=db.text("status = 'active'")),
        Index("ix_enrolment_protocol_status", "protocol_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id", ondelete="CASCADE"))
    protocol_id: Mapped[int] = mapped_column(ForeignKey("protocol.id"))
    #: The anchor event (e.g. the surgery), as an instant.
    anchor_at: Mapped[datetime]
    #: IANA zone the offsets and quiet hours are counted in.
    timezone: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(12), default="active")
    #: Where it came from: ``web``, ``csv``, ``cli``, ``api``.
    source: Mapped[str] = mapped_column(String(8), default="web")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    withdrawn_at: Mapped[datetime | None]
    withdrawal_reason: Mapped[str | None] = mapped_column(Text)

    patient: Mapped[Patient] = relationship()
    protocol: Mapped[Protocol] = relationship()
