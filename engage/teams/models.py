"""ImprovementTeam and its members."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, ForeignKey, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from engage.accounts.models import User
from engage.core.db import utcnow
from engage.extensions import db

#: Who belongs to a team: they see its queue and get its weekly digest.
team_member = Table(
    "team_member",
    db.metadata,
    Column("team_id", ForeignKey("improvement_team.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", ForeignKey("user.id", ondelete="CASCADE"), primary_key=True, index=True),
)


class ImprovementTeam(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "improvement_team"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Short stable name used in URLs, e.g. ``access-and-waiting``.
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    #: A shared mailbox that gets the weekly digest too; None: members only.
    email: Mapped[str | None] = mapped_column(String(254))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    members: Mapped[list[User]] = relationship(secondary=team_member, order_by=User.email,
                                               lazy="selectin")

    def __repr__(self) -> str:
        return f"<ImprovementTeam {self.slug}>"
