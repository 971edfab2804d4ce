"""ApiKey: a secret an EHR integration sends as ``Authorization: Bearer <key>``."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from engage.core.db import utcnow
from engage.extensions import db


class ApiKey(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "api_key"

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

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def __repr__(self) -> str:
        return f"<ApiKey {self.prefix} {self.name!r}>"
