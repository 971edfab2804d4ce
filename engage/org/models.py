"""Service: a clinic, ward or pathway that feedback, teams and councils hang off."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, ForeignKey, String, Table
from sqlalchemy.orm import Mapped, mapped_column

from engage.core.db import utcnow
from engage.extensions import db

#: Staff who work in a service: they see its responses; its clinicians get its alerts.
service_member = Table(
    "service_member",
    db.metadata,
    Column("service_id", ForeignKey("service.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", ForeignKey("user.id", ondelete="CASCADE"), primary_key=True),
)


class Service(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "service"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Short stable name used in URLs and on the command line, e.g. ``mental-health``.
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"<Service {self.slug}>"
