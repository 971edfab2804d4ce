"""Creating and editing improvement teams."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from engage.accounts.models import User
from engage.audit.services import record
from engage.extensions import db
from engage.teams.models import ImprovementTeam

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class TeamError(ValueError):
    def __init__(self, message: Any, field: str | None = None) -> None:
        super().__init__(str(message))
        self.field = field


def save_team(team: ImprovementTeam | None, *, slug: str, name: str, description: str = "",
              email: str | None = None, active: bool = True,
              members: Sequence[User] = ()) -> ImprovementTeam:
    """Create (``team`` None) or update a team; raises TeamError naming the field."""
    slug, name = (slug or "").strip().lower(), (name or "").strip()
    email = (email or "").strip() or None
    if not name:
        raise TeamError(_l("Enter the team's name."), "name")
    if not SLUG.match(slug):
        raise TeamError(_l("Use lower-case letters, digits and hyphens, e.g. "
                           "access-and-waiting."), "slug")
    clash = db.session.scalar(select(ImprovementTeam.id).where(ImprovementTeam.slug == slug))
    if clash is not None and (team is None or clash != team.id):
        raise TeamError(_l("Another team already uses that identifier."), "slug")
    if email and not EMAIL.match(email):
        raise TeamError(_l("Enter an email address like team@hospital.org."), "email")
    if team is None:
        team = ImprovementTeam(slug=slug, name=name)
        db.session.add(team)
    team.slug, team.name, team.description = slug, name[:200], description.strip()
    team.email, team.active = email, active
    team.members = list(members)
    db.session.flush()
    record("update", "improvement_team", team.id, members=len(team.members))
    return team


def find_team(slug: str) -> ImprovementTeam | None:
    return db.session.scalar(select(ImprovementTeam).where(ImprovementTeam.slug == slug))


def all_teams() -> list[ImprovementTeam]:
    return list(db.session.scalars(select(ImprovementTeam)
                                   .order_by(ImprovementTeam.active.desc(), ImprovementTeam.name)))
