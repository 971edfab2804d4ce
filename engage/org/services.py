"""Creating services and finding the ones a user may see."""

from __future__ import annotations

import re

from sqlalchemy import select

from engage.accounts.models import User
from engage.extensions import db
from engage.org.models import Service

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")


def create_service(slug: str, name: str) -> Service:
    if not SLUG.match(slug):
        raise ValueError("a service id is lower-case letters, digits and hyphens")
    if db.session.scalar(select(Service).where(Service.slug == slug)):
        raise ValueError(f"service {slug} already exists")
    service = Service(slug=slug, name=name.strip() or slug)
    db.session.add(service)
    db.session.flush()
    return service


def visible_services(user: User) -> list[Service]:
    if user.role == "admin":
        return list(db.session.scalars(select(Service).order_by(Service.name)).all())
    return list(user.services)


def find_service(key: str) -> Service | None:
    """A service by slug or numeric id."""
    if key.isdigit():
        found = db.session.get(Service, int(key))
        if found:
            return found
    return db.session.scalar(select(Service).where(Service.slug == key))
