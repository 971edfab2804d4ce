"""Creating users and checking logins."""

from __future__ import annotations

from sqlalchemy import func, select

from engage.accounts.models import User
from engage.accounts.passwords import MIN_LENGTH, password_problem
from engage.audit.services import record
from engage.core.db import utcnow
from engage.core.permissions import ROLES
from engage.extensions import db
from engage.org.models import Service

MIN_PASSWORD_LENGTH = MIN_LENGTH


class AccountError(ValueError):
    """A user cannot be created or changed as asked; the message says why."""


def create_user(
    email: str, role: str, password: str, *, name: str = "",
    services: list[Service] | None = None, language: str | None = None,
) -> User:
    email = email.strip().lower()
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}")
    problem = password_problem(password, email=email, name=name)
    if problem:
        raise AccountError(problem)
    if db.session.scalar(select(User).where(User.email == email)):
        raise AccountError(f"a user with the email {email} already exists")
    user = User(email=email, role=role, name=name, language=language,
                services=list(services or []))
    user.set_password(password)
    user.password_changed_at = utcnow()
    db.session.add(user)
    db.session.flush()
    record("create", "user", user.id, role=role)
    return user


def authenticate(email: str, password: str) -> User | None:
    """The active user with these credentials, or None (same answer for any failure).

    Only the password: the login is complete (and ``last_login_at`` written) once every
    factor is given (``engage.accounts.login.complete``)."""
    user = db.session.scalar(
        select(User).where(func.lower(User.email) == email.strip().lower())
    )
    if user is None:
        # Spend the same time as a real check, so timing does not reveal accounts.
        User(password_hash="").set_password(password)
        return None
    if not user.active or not user.check_password(password):
        return None
    return user
