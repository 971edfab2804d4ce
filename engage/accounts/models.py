"""User: a member of staff, clinician, admin or council volunteer."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from flask_login import UserMixin
from sqlalchemy import CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from engage.core.db import utcnow
from engage.extensions import db
from engage.org.models import Service, service_member


class User(UserMixin, db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "user"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Stored lower-case; the login name.
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(256))
    #: One of :data:`engage.core.permissions.ROLES`.
    role: Mapped[str] = mapped_column(String(20))
    active: Mapped[bool] = mapped_column(default=True)
    #: Preferred interface language; None follows the browser.
    language: Mapped[str | None] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None]
    #: When the password was last set; None for an invited user who has not set one yet
    #: (invited through ``engage.accounts.admin``).
    password_changed_at: Mapped[datetime | None]

    services: Mapped[list[Service]] = relationship(
        secondary=service_member, order_by=Service.name, lazy="selectin"
    )

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    @property
    def is_active(self) -> bool:  # Flask-Login refuses inactive users
        return self.active

    def __repr__(self) -> str:
        return f"<User {self.email} {self.role}>"


class SessionEnd(StrEnum):
    """Why a staff session ended."""

    LOGOUT = "logout"
    #: Idle longer than ``ENGAGE_SESSION_IDLE_MINUTES``.
    IDLE = "idle"
    #: Older than ``ENGAGE_SESSION_HOURS``.
    EXPIRED = "expired"
    #: The password was changed or reset elsewhere.
    PASSWORD = "password"
    #: An admin deactivated the account.
    DEACTIVATED = "deactivated"
    #: The user ended it from their account page.
    ENDED = "ended"


class UserSession(db.Model):  # type: ignore[name-defined,misc]
    """One staff login, held on the server so it can be ended (logout, deactivation, idle).

    The browser's signed cookie carries only a random token; this row keeps its SHA-256.
    A cookie is honoured only while its row exists and has not ended.
    """

    __tablename__ = "user_session"
    __table_args__ = (
        Index("ix_user_session_user_id_ended_at", "user_id", "ended_at"),
        CheckConstraint(
            "ended_reason IN ('logout', 'idle', 'expired', 'password', 'deactivated', 'ended')",
            name="ended_reason"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"))
    #: SHA-256 (hex) of the token in the session cookie; never the token itself.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: Updated at most once a minute, so a busy page does not write on every request.
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None]
    #: A :class:`SessionEnd` value once ended.
    ended_reason: Mapped[str | None] = mapped_column(String(16))
    ip: Mapped[str | None] = mapped_column(String(45))
    #: The browser's User-Agent, cut to fit: shown to the user so they recognise a device.
    user_agent: Mapped[str] = mapped_column(String(200), default="")

    @property
    def active(self) -> bool:
        return self.ended_at is None


class TokenPurpose(StrEnum):
    """What an emailed account link is for."""

    INVITE = "invite"
    RESET = "reset"


class AccountToken(db.Model):  # type: ignore[name-defined,misc]
    """A single-use, expiring link to set a password: an invitation or a reset.

    Only the SHA-256 of the token is stored, so a copy of the database opens no account.
    """

    __tablename__ = "account_token"
    __table_args__ = (
        CheckConstraint("purpose IN ('invite', 'reset')", name="purpose"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"),
                                         index=True)
    #: A :class:`TokenPurpose` value.
    purpose: Mapped[str] = mapped_column(String(8))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    #: Set when the link is used, or when a newer link replaces it.
    used_at: Mapped[datetime | None]
    #: The admin who sent it; None from the CLI or the "forgot password" page.
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("user.id", ondelete="SET NULL"))
