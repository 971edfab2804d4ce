"""ApiKey: a secret an EHR integration sends as ``Authorization: Bearer <key>``."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, Column, ForeignKey, String, Table
from sqlalchemy.orm import Mapped, mapped_column, relationship

from engage.core.db import utcnow
from engage.extensions import db
from engage.org.models import Service


class ApiScope(StrEnum):
    """What a key may do. ``write`` includes everything ``read`` may."""

    #: List protocols, read enrolments.
    READ = "read"
    #: Also create and withdraw enrolments.
    WRITE = "write"


#: The services a key acts for: it sees and enrols only on their protocols and patients.
api_key_service = Table(
    "api_key_service",
    db.metadata,
    Column("api_key_id", ForeignKey("api_key.id", ondelete="CASCADE"), primary_key=True),
    Column("service_id", ForeignKey("service.id", ondelete="CASCADE"), primary_key=True,
           index=True),
)


class ApiKey(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "api_key"
    __table_args__ = (
        CheckConstraint("scope IN ('read', 'write')", name="scope"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Who the key is for, e.g. ``Epic interface engine``.
    name: Mapped[str] = mapped_column(String(100))
    #: The key's first 8 characters: shown in lists and audit events, used to revoke it.
    prefix: Mapped[str] = mapped_column(String(8), unique=True)
    #: SHA-256 of the whole key, hex. The key itself is never stored.
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: The admin who created it; None when created on the command line.
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("user.id", ondelete="SET NULL"))
    #: Updated at most once a minute, by requests that succeed.
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    #: ``read`` or ``write`` (:class:`ApiScope`).
    scope: Mapped[str] = mapped_column(String(8), default=ApiScope.READ)
    #: After this moment the key is refused (401, "expired"); None: until revoked.
    expires_at: Mapped[datetime | None]

    services: Mapped[list[Service]] = relationship(
        secondary=api_key_service, order_by=Service.slug, lazy="selectin")

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now

    def __repr__(self) -> str:
        return f"<ApiKey {self.prefix} {self.name!r}>"
