"""The login policy: password, throttling, auditing, and the step a login takes next.

A login is complete only when every factor has been given: after a right password, a user
with a second factor (or whose role requires one) is held in a *pending* state in the
session, bound to that user and good for :data:`PENDING_SECONDS`, and is not logged in.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from flask import after_this_request, current_app, request, session
from flask_babel import ngettext
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import func, select
from werkzeug.wrappers import Response as WerkzeugResponse

from engage.accounts.models import User
from engage.accounts.services import authenticate
from engage.accounts.sessions import start_session
from engage.accounts.throttle import Lock, current_lock, name_hash, record_failure, record_success
from engage.accounts.two_factor import factor_of, required_for
from engage.audit.services import record
from engage.core.db import utcnow
from engage.extensions import db

#: Session keys: the pending login, and the secret of an authenticator being set up.
PENDING_KEY = "_engage_login"
SETUP_KEY = "_engage_totp_setup"
#: Seconds between a right password and the second factor.
PENDING_SECONDS = 300
#: Seconds to set one up when the role requires it (installing an app takes a while).
ENROL_SECONDS = 900
#: The cookie naming the accounts a browser has logged in to, its life, and how many.
DEVICE_COOKIE = "engage_device"
DEVICE_DAYS = 180
DEVICE_USERS = 10


class Step(StrEnum):
    """What follows a password."""

    DONE = "done"  # logged in
    CODE = "code"  # the second factor is asked for
    ENROL = "enrol"  # the role requires a second factor the user has not set up
    REFUSED = "refused"


@dataclass(frozen=True)
class Outcome:
    step: Step
    user: User | None = None
    #: Set when the login is refused because of a lock (new or already running).
    lock: Lock | None = None


def find_user(email: str) -> User | None:
    """The account with this login name, if any."""
    email = email.strip().lower()
    if not email or "\x00" in email:  # PostgreSQL refuses NUL in text; no account has one
        return None
    return db.session.scalar(select(User).where(func.lower(User.email) == email))


def check_password(email: str, password: str) -> Outcome:
    """The first step of a login, from this request's client address.

    Every refusal is audited (``login-failed``; the name typed is kept only as the account
    it names, or as a keyed hash when it names none, since people type passwords into the
    wrong box) and counted, unless a lock refused it unchecked.
    """
    address = request.remote_addr
    device = is_known_device(find_user(email))
    lock = current_lock(email, address, device=device)
    if lock is not None:
        # The same work as a real check, so a lock cannot be told from a wrong password
        # by the time the answer takes.
        User(password_hash="").set_password(password)
        _audit_failure(email, "locked")
        return Outcome(Step.REFUSED, lock=lock)
    if "\x00" in email:  # no account has one, and PostgreSQL refuses NUL in a query
        User(password_hash="").set_password(password)
        user = None
    else:
        user = authenticate(email, password)
    if user is None:
        known = _audit_failure(email, "password")
        return Outcome(Step.REFUSED,
                       lock=record_failure(email, address, known, device=device))
    if factor_of(user) is not None:
        return Outcome(Step.CODE, user)
    if required_for(user):
        return Outcome(Step.ENROL, user)
    return Outcome(Step.DONE, user)


def _audit_failure(email: str, reason: str, user: User | None = None) -> User | None:
    user = user or find_user(email)
    if user is not None:
        record("login-failed", "user", user.id, reason=reason)
    else:
        record("login-failed", "user", None, reason=reason, name_hash=name_hash(email))
    return user


def code_failed(user: User) -> Lock | None:
    """A wrong second-factor code: audited (``2fa-failed``) and counted towards the
    account's lock, like a wrong password."""
    record("2fa-failed", "user", user.id)
    return record_failure(user.email, request.remote_addr, user,
                          device=is_known_device(user))


def code_refused_by_lock(user: User) -> Lock | None:
    """The lock that refuses ``user``'s second factor now (audited), if any."""
    lock = current_lock(user.email, request.remote_addr, device=is_known_device(user))
    if lock is not None:
        record("login-failed", "user", user.id, reason="locked", stage="second-factor")
    return lock


def complete(user: User, factor: str | None) -> None:
    """Log ``user`` in: every factor was given. Clears the name's failures."""
    session.pop(PENDING_KEY, None)
    session.pop(SETUP_KEY, None)
    record_success(user.email, request.remote_addr)
    remember_device(user)
    user.last_login_at = utcnow()
    start_session(user)
    if factor:
        record("login", "user", user.id, factor=factor)
    else:
        record("login", "user", user.id)


def _device_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="engage-login-device")


def _device_users() -> list[int]:
    """The accounts this browser has fully logged in to (newest first), from its cookie."""
    raw = request.cookies.get(DEVICE_COOKIE)
    if not raw:
        return []
    try:
        ids = _device_serializer().loads(raw, max_age=DEVICE_DAYS * 86400)
    except BadSignature:
        return []
    return [i for i in ids if isinstance(i, int)] if isinstance(ids, list) else []


def is_known_device(user: User | None) -> bool:
    """Whether this browser has logged in to ``user``'s account before (every factor given):
    the account's and the address's locks do not apply to it (``throttle.current_lock``)."""
    return user is not None and user.id in _device_users()


def remember_device(user: User) -> None:
    """Mark this browser as one ``user`` logs in from (a signed cookie holding only account
    ids, for the login pages; a shared ward computer remembers its last few users)."""
    ids = [user.id, *(i for i in _device_users() if i != user.id)][:DEVICE_USERS]
    value = _device_serializer().dumps(ids)
    config = current_app.config

    @after_this_request
    def set_cookie(response: WerkzeugResponse) -> WerkzeugResponse:
        response.set_cookie(DEVICE_COOKIE, value, max_age=DEVICE_DAYS * 86400, path="/login",
                            secure=bool(config["SESSION_COOKIE_SECURE"]), httponly=True,
                            samesite="Lax")
        return response


def begin_pending(user: User, next_url: str, step: Step) -> None:
    """Hold a login that still needs a second factor (``CODE`` or ``ENROL``)."""
    session.pop(SETUP_KEY, None)
    session[PENDING_KEY] = {"uid": user.id, "at": int(time.time()), "next": next_url,
                            "step": str(step)}


def pending(step: Step) -> tuple[User, str] | None:
    """The user and next address of this session's pending login at ``step``, or None
    when there is none, it is older than :data:`PENDING_SECONDS` (:data:`ENROL_SECONDS`
    to set a factor up) or the account is no longer active."""
    held: Any = session.get(PENDING_KEY)
    if not isinstance(held, dict) or held.get("step") != str(step):
        return None
    limit = ENROL_SECONDS if step == Step.ENROL else PENDING_SECONDS
    if not isinstance(held.get("at"), int) or time.time() - held["at"] > limit:
        session.pop(PENDING_KEY, None)
        return None
    user = db.session.get(User, held.get("uid"))
    if user is None or not user.active:
        session.pop(PENDING_KEY, None)
        return None
    return user, str(held.get("next") or "/")


def drop_pending() -> None:
    session.pop(PENDING_KEY, None)
    session.pop(SETUP_KEY, None)


def lock_message(lock: Lock) -> str:
    """The one message for any lock: when to try again, in minutes from now."""
    minutes = lock.minutes_left()
    return ngettext(
        "Too many failed attempts. Please try again in %(num)d minute.",
        "Too many failed attempts. Please try again in %(num)d minutes.",
        minutes,
    )
