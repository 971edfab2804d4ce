"""Tables of the plumbing itself, used by every domain (no patient data)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from engage.extensions import db


class JobLease(db.Model):  # type: ignore[name-defined,misc]
    """A named lease that one scheduler process holds at a time (see ``core.db.job_lease``)."""

    __tablename__ = "job_lease"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: ``host:pid`` of the process holding it.
    holder: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None]


class JobRequest(db.Model):  # type: ignore[name-defined,misc]
    """Someone asked for a job's work to be done at its next run (e.g. "train a model now").

    Work too long for a web request is asked for here and done by the scheduler.
    """

    __tablename__ = "job_request"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    requested_at: Mapped[datetime]
    requested_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("user.id", ondelete="SET NULL"))
