"""Login failures and lock-outs, and each user's second factor (TOTP and recovery codes)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from engage.core.db import utcnow
from engage.extensions import db


class ThrottleScope(StrEnum):
    """What one :class:`LoginThrottle` row counts failures for."""

    #: One login name (an account, or a name no account has: both lock the same way, so a
    #: lock-out message does not reveal which names exist). ``subject`` is its keyed hash.
    ACCOUNT = "account"
    #: One client address, across every login name.
    ADDRESS = "address"
    #: One login name from one address: counts the distinct names an address has failed on.
    PAIR = "pair"


class LoginThrottle(db.Model):  # type: ignore[name-defined,misc]
    """Failed logins counted in the database, so every web worker shares them."""

    __tablename__ = "login_throttle"
    __table_args__ = (
        UniqueConstraint("scope", "address", "subject"),
        CheckConstraint("scope IN ('account', 'address', 'pair')", name="scope"),
        Index("ix_login_throttle_scope_address_last", "scope", "address", "last_failure_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: A :class:`ThrottleScope` value.
    scope: Mapped[str] = mapped_column(String(8))
    #: The client address ("" for an account row).
    address: Mapped[str] = mapped_column(String(45), default="")
    #: HMAC-SHA256 (hex) of the lower-cased login name ("" for an address row); never the
    #: name itself, which may be a password typed into the wrong field.
    subject: Mapped[str] = mapped_column(String(64), default="")
    #: Failures since the last success or lock (account), or in the current window (address).
    failures: Mapped[int] = mapped_column(default=0)
    window_started_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_failure_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: Lock-outs so far: each one lasts twice as long as the one before, up to the cap.
    locks: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None]


class SecondFactor(db.Model):  # type: ignore[name-defined,misc]
    """A user's TOTP authenticator (RFC 6238: 6 digits, 30 seconds, SHA-1)."""

    __tablename__ = "second_factor"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("user.id", ondelete="CASCADE"), primary_key=True)
    #: The shared secret, base32. Kept in the database as it is: the authenticator app
    #: needs the same value, so it cannot be hashed (docs/security.md says who can read it).
    secret: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: The 30-second time step of the last code accepted: a code is never accepted twice.
    last_step: Mapped[int | None] = mapped_column(BigInteger)


class RecoveryCode(db.Model):  # type: ignore[name-defined,misc]
    """One single-use recovery code, for a user who has lost their authenticator."""

    __tablename__ = "recovery_code"
    __table_args__ = (UniqueConstraint("user_id", "code_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"))
    #: SHA-256 (hex) of the code (80 random bits): shown once, never stored.
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    used_at: Mapped[datetime | None]
