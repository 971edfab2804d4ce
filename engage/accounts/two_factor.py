"""The second factor: TOTP authenticators, single-use recovery codes, and who must have one."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import datetime

import pyotp
import segno
from flask import current_app
from sqlalchemy import delete, func, select, update

from engage.accounts.login_models import RecoveryCode, SecondFactor
from engage.accounts.models import User
from engage.accounts.notices import Change, notify
from engage.audit.services import record
from engage.core.db import utcnow
from engage.extensions import db

ISSUER = "Engage"
RECOVERY_CODES = 10
#: 16 characters of 31 (79 bits): too many to guess online or offline, so SHA-256 will do.
_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: read off paper without doubt
_CODE_LENGTH = 16
#: Codes of the step before and after are accepted too (a phone's clock may drift 30 s).
VALID_WINDOW = 1


class FactorError(ValueError):
    """A second-factor change is refused; the message (translated by the view) says why."""


def required_for(user: User) -> bool:
    """Whether ``user``'s role must log in with a second factor (``REQUIRE_2FA_ROLES``)."""
    return user.role in current_app.config["REQUIRE_2FA_ROLES"]


def factor_of(user: User) -> SecondFactor | None:
    return db.session.get(SecondFactor, user.id)


def new_secret() -> str:
    """A fresh TOTP secret (160 random bits, base32), not yet saved."""
    return pyotp.random_base32(32)


def provisioning_uri(user: User, secret: str) -> str:
    """The ``otpauth://`` address an authenticator app reads from the QR code."""
    return pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=ISSUER)


def qr_data_uri(uri: str) -> str:
    """The QR code of ``uri`` as an SVG ``data:`` image (the CSP allows ``img-src data:``,
    and an image needs neither inline script nor style)."""
    return str(segno.make(uri, error="m").svg_data_uri(scale=5, border=4))


def _step_matching(secret: str, code: str, now: datetime) -> int | None:
    """The time step whose code is ``code`` (within the window), or None."""
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now)
    for step in range(current - VALID_WINDOW, current + VALID_WINDOW + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def normalise_code(code: str) -> str:
    """A typed code without spaces and dashes, lower-case (recovery codes) or digits."""
    return re.sub(r"[\s-]+", "", code or "").lower()


def enrol(user: User, secret: str, code: str, now: datetime | None = None) -> list[str]:
    """Save ``secret`` as ``user``'s authenticator once ``code`` proves the app has it;
    returns the new recovery codes (to show once). Raises :class:`FactorError`."""
    now = now or utcnow()
    code = normalise_code(code)
    step = _step_matching(secret, code, now) if code.isdigit() and len(code) == 6 else None
    if step is None:
        raise FactorError("code")
    factor = factor_of(user)
    if factor is None:
        factor = SecondFactor(user_id=user.id, secret=secret)
        db.session.add(factor)
    else:
        factor.secret, factor.created_at = secret, now
    factor.last_step = step
    codes = _new_recovery_codes(user)
    record("2fa-enabled", "user", user.id)
    notify(user, Change.FACTOR_ADDED)
    db.session.flush()
    return codes


def check_code(user: User, code: str, now: datetime | None = None) -> str | None:
    """Check a code typed at login: ``"totp"`` or ``"recovery"`` when it is right (the
    code is then used up), else None. A TOTP code is accepted once only: the time step of
    the last one accepted is kept, and the update is conditional so two requests racing
    with the same code cannot both win."""
    now = now or utcnow()
    factor = factor_of(user)
    if factor is None:
        return None
    code = normalise_code(code)
    if code.isdigit() and len(code) == 6:
        step = _step_matching(factor.secret, code, now)
        if step is None:
            return None
        won = db.session.execute(
            update(SecondFactor)
            .where(SecondFactor.user_id == user.id,
                   (SecondFactor.last_step.is_(None)) | (SecondFactor.last_step < step))
            .values(last_step=step)
            .execution_options(synchronize_session=False)
        ).rowcount  # type: ignore[attr-defined]
        db.session.expire(factor)
        return "totp" if won else None
    if len(code) == _CODE_LENGTH:
        won = db.session.execute(
            update(RecoveryCode)
            .where(RecoveryCode.user_id == user.id, RecoveryCode.code_hash == _hash(code),
                   RecoveryCode.used_at.is_(None))
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount  # type: ignore[attr-defined]
        if won:
            record("recovery-code-used", "user", user.id, left=recovery_codes_left(user))
            return "recovery"
    return None


def recovery_codes_left(user: User) -> int:
    return int(db.session.scalar(
        select(func.count()).select_from(RecoveryCode)
        .where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))) or 0)


def regenerate_recovery_codes(user: User) -> list[str]:
    """Replace ``user``'s recovery codes with new ones (the old stop working); audited."""
    if factor_of(user) is None:
        raise FactorError("none")
    codes = _new_recovery_codes(user)
    record("recovery-codes-new", "user", user.id)
    notify(user, Change.RECOVERY_CODES)
    return codes


def disable(user: User) -> None:
    """The user turns their own second factor off (refused when their role requires one)."""
    if required_for(user):
        raise FactorError("required")
    _remove(user)
    record("2fa-disabled", "user", user.id)
    notify(user, Change.FACTOR_REMOVED)


def reset(user: User) -> bool:
    """An admin removes ``user``'s second factor (a lost phone): they set up a new one at
    their next login if their role requires it. Audited; True if there was one."""
    had = _remove(user)
    record("2fa-reset", "user", user.id)
    if had:
        notify(user, Change.FACTOR_REMOVED)
    return had


def _remove(user: User) -> bool:
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    result = db.session.execute(delete(SecondFactor).where(SecondFactor.user_id == user.id))
    db.session.expire_all()
    return bool(result.rowcount)  # type: ignore[attr-defined]


def _new_recovery_codes(user: User) -> list[str]:
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    codes = ["".join(secrets.choice(_ALPHABET) for _ in range(_CODE_LENGTH))
             for _ in range(RECOVERY_CODES)]
    db.session.add_all(RecoveryCode(user_id=user.id, code_hash=_hash(c)) for c in codes)
    db.session.flush()
    return [format_code(c) for c in codes]


def format_code(code: str) -> str:
    """``abcd-efgh-jkmn-pqrs``: easier to copy by hand."""
    return "-".join(code[i:i + 4] for i in range(0, len(code), 4))


def _hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()
