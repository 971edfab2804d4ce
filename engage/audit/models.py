"""AuditEvent: one view or change of identifiable data; append-only (migration 0009)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from engage.core.db import utcnow
from engage.extensions import db


class AuditEvent(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "audit_event"
    __table_args__ = (
        Index("ix_audit_event_patient_at", "patient_id", "at"),
        Index("ix_audit_event_user_at", "user_id", "at"),
        # The viewer: newest first, by object, by client address.
        Index("ix_audit_event_at", "at"),
        Index("ix_audit_event_object", "object_type", "object_id", "at"),
        Index("ix_audit_event_ip_at", "ip", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    #: The member of staff; None for a patient link, the CLI or a job. Not a foreign key:
    #: deleting the user must not rewrite what they did.
    user_id: Mapped[int | None]
    #: Who acted when there is no user: ``patient-link``, ``cli``, ``job``.
    actor: Mapped[str] = mapped_column(String(32))
    #: e.g. ``view``, ``create``, ``update``, ``acknowledge``.
    action: Mapped[str] = mapped_column(String(32))
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[int | None]
    #: The patient whose data it was. Not a foreign key, for the same reason: an erased
    #: or deleted patient's audit rows stay as they were.
    patient_id: Mapped[int | None]
    ip: Mapped[str | None] = mapped_column(String(45))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
