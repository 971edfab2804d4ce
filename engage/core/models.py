"""Tables of the plumbing itself, used by every domain (no patient data)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from engage.extensions import db


class JobLease(db.Model):  # type: ignore[name-defined,misc]
    """A named lease that one scheduler process holds at a time (see ``core.db.job_lease``)."""

    __tablename__ = "job_lease"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: ``host:pid`` of the process holding it.
    holder: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None]
