"""Login throttling: failed attempts counted per login name and per client address.

Three kinds of :class:`LoginThrottle` rows, all in the database so every web worker
shares them:

- per login name (``account``): after ``LOGIN_LOCK_AFTER`` consecutive failures the name
  is locked for 1, 2, 4 ... up to ``LOGIN_LOCK_MAX_MINUTES`` minutes; even the right
  password is refused until then. A name no account has locks the same way, so the
  lock-out message does not tell a guesser which names exist. A success clears it.
- per client address (``address``): an address that has failed on
  ``LOGIN_ADDRESS_ACCOUNTS`` different names (not later logged in with) within
  ``LOGIN_ADDRESS_WINDOW_MINUTES``, or ``LOGIN_ADDRESS_CEILING`` times in all, waits with
  the same back-off. Counting names, not attempts, means one nurse's typos on a shared
  hospital address never lock out the rest of the ward; password spraying across many
  accounts is what it stops.
- per (address, name) (``pair``): when each name last failed from each address; what the
  address rule counts.

Attempts refused because of a lock are not counted: a lock cannot be stretched by hammering
it. Only failures count; a successful login never locks anything.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from engage.accounts.login_models import LoginThrottle, ThrottleScope
from engage.accounts.models import User
from engage.audit.services import record
from engage.core.db import utcnow
from engage.extensions import db

#: A name or address quiet for this long starts again from the shortest lock.
FORGET_AFTER = timedelta(hours=24)


@dataclass(frozen=True)
class Lock:
    """Why, and until when, a login is refused."""

    until: datetime
    #: ``account`` or ``address`` (never shown: the message is the same for both).
    scope: str

    def minutes_left(self, now: datetime | None = None) -> int:
        """Whole minutes until the lock ends, rounded up (at least 1)."""
        seconds = (self.until - (now or utcnow())).total_seconds()
        return max(1, int(-(-seconds // 60)))


def name_hash(email: str) -> str:
    """The keyed hash of a login name: rows and audit events can be matched on it, but it
    cannot be reversed by hashing a list of guesses without the app's secret."""
    key = current_app.config["SECRET_KEY"].encode()
    normal = email.strip().lower().encode("utf-8", "replace")
    return hmac.new(key, b"login-name:" + normal, hashlib.sha256).hexdigest()


def current_lock(email: str, address: str | None, now: datetime | None = None, *,
                 device: bool = False) -> Lock | None:
    """The lock that refuses a login by ``email`` from ``address`` now, if any.

    ``device``: the browser has logged in to this account before (a signed cookie). The
    account's and the address's locks do not apply to it, only the lock of its own
    (address, name) pair: so an attacker elsewhere who keeps an account locked, or who
    sprays guesses from the hospital's own address, does not lock out its real user.
    """
    now = now or utcnow()
    subject = name_hash(email)
    if device:
        keys = ((LoginThrottle.scope == ThrottleScope.PAIR)
                & (LoginThrottle.address == (address or "")) & (LoginThrottle.subject == subject))
    else:
        keys = (((LoginThrottle.scope == ThrottleScope.ACCOUNT)
                 & (LoginThrottle.address == "") & (LoginThrottle.subject == subject))
                | ((LoginThrottle.scope == ThrottleScope.ADDRESS)
                   & (LoginThrottle.address == (address or "")) & (LoginThrottle.subject == "")))
    rows = db.session.scalars(
        select(LoginThrottle).where(keys, LoginThrottle.locked_until > now)).all()
    if not rows:
        return None
    longest = max(rows, key=lambda row: row.locked_until or now)
    assert longest.locked_until is not None
    return Lock(longest.locked_until, longest.scope)


def record_failure(email: str, address: str | None, user: User | None,
                   now: datetime | None = None, *, device: bool = False) -> Lock | None:
    """Count one failed attempt (a wrong password, or a wrong second-factor code) by
    ``email`` from ``address``; the lock it starts, if it starts one (audited as ``lock``).

    Call only when :func:`current_lock` found no lock: refused attempts are not counted.
    """
    now = now or utcnow()
    config = current_app.config
    subject = name_hash(email)
    address = address or ""
    lock = None

    account = _row(ThrottleScope.ACCOUNT, "", subject, now)
    if account.last_failure_at < now - FORGET_AFTER:
        account.locks = 0
    account.failures += 1
    account.last_failure_at = now
    if account.failures >= config["LOGIN_LOCK_AFTER"]:
        lock = _lock(account, now)
        event = record("lock", "user", user.id if user else None,
                       scope=str(ThrottleScope.ACCOUNT), minutes=_minutes(account))
        if user is None:  # a name no account has: only its keyed hash
            event.detail = {**event.detail, "name_hash": subject}

    if address:
        pair = _row(ThrottleScope.PAIR, address, subject, now)
        if pair.last_failure_at < now - FORGET_AFTER:
            pair.locks = 0
        pair.failures += 1
        pair.last_failure_at = now
        if device and pair.failures >= config["LOGIN_LOCK_AFTER"]:
            _lock(pair, now)
            record("lock", "user", user.id if user else None, scope=str(ThrottleScope.PAIR),
                   address=address, minutes=_minutes(pair))
        client = _row(ThrottleScope.ADDRESS, address, "", now)
        window = timedelta(minutes=config["LOGIN_ADDRESS_WINDOW_MINUTES"])
        if client.last_failure_at < now - FORGET_AFTER:
            client.locks = 0
        if client.window_started_at < now - window:
            client.failures, client.window_started_at = 0, now
        client.failures += 1
        client.last_failure_at = now
        db.session.flush()
        names = db.session.scalar(
            select(func.count()).select_from(LoginThrottle).where(
                LoginThrottle.scope == ThrottleScope.PAIR, LoginThrottle.address == address,
                LoginThrottle.last_failure_at >= now - window)
        ) or 0
        if (names >= config["LOGIN_ADDRESS_ACCOUNTS"]
                or client.failures >= config["LOGIN_ADDRESS_CEILING"]):
            address_lock = _lock(client, now)
            record("lock", "client", None, scope=str(ThrottleScope.ADDRESS), address=address,
                   minutes=_minutes(client), names=names)
            if lock is None or address_lock.until > lock.until:
                lock = address_lock
    db.session.flush()
    if device:  # only its own pair's lock refuses a known browser
        pair_lock = current_lock(email, address, now, device=True)
        return pair_lock if pair_lock and pair_lock.until > now else None
    return lock


def record_success(email: str, address: str | None) -> None:
    """A login succeeded: the name's failures are forgotten, and so is this address's
    failure on it (so it no longer counts towards the address's limit). The address's own
    count is kept: logging in to one account must not wipe the trail of guessing others."""
    subject = name_hash(email)
    db.session.execute(delete(LoginThrottle).where(
        ((LoginThrottle.scope == ThrottleScope.ACCOUNT) & (LoginThrottle.subject == subject))
        | ((LoginThrottle.scope == ThrottleScope.PAIR) & (LoginThrottle.subject == subject)
           & (LoginThrottle.address == (address or "")))
    ))


def unlock(user: User) -> bool:
    """Lift the lock on ``user``'s account (an admin's decision; audited as ``unlock``).
    True if there was a lock or failures to forget."""
    result = db.session.execute(delete(LoginThrottle).where(
        LoginThrottle.scope == ThrottleScope.ACCOUNT,
        LoginThrottle.subject == name_hash(user.email)))
    record("unlock", "user", user.id)
    return bool(result.rowcount)  # type: ignore[attr-defined]


def unblock_address(address: str) -> bool:
    """Lift the lock on a client address (and forget its failures); audited."""
    result = db.session.execute(delete(LoginThrottle).where(
        LoginThrottle.scope.in_([ThrottleScope.ADDRESS, ThrottleScope.PAIR]),
        LoginThrottle.address == address))
    record("unlock", "client", None, address=address)
    return bool(result.rowcount)  # type: ignore[attr-defined]


def purge(now: datetime | None = None) -> int:
    """Delete rows that can no longer lock anything or raise a back-off (a daily job)."""
    now = now or utcnow()
    result = db.session.execute(delete(LoginThrottle).where(
        LoginThrottle.last_failure_at < now - FORGET_AFTER,
        (LoginThrottle.locked_until.is_(None)) | (LoginThrottle.locked_until < now)))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def _row(scope: ThrottleScope, address: str, subject: str, now: datetime) -> LoginThrottle:
    """The row for this key, created if need be and locked for update (PostgreSQL), so two
    workers counting failures at once both count."""
    values = {"scope": str(scope), "address": address, "subject": subject, "failures": 0,
              "locks": 0, "window_started_at": now, "last_failure_at": now}
    insert = pg_insert if db.session.get_bind().dialect.name == "postgresql" else sqlite_insert
    db.session.execute(insert(LoginThrottle).values(**values).on_conflict_do_nothing())
    row = db.session.scalars(
        select(LoginThrottle)
        .where(LoginThrottle.scope == scope, LoginThrottle.address == address,
               LoginThrottle.subject == subject)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    return row


def _lock(row: LoginThrottle, now: datetime) -> Lock:
    minutes = _next_minutes(row)
    row.locked_until = now + timedelta(minutes=minutes)
    row.locks += 1
    row.failures = 0
    row.window_started_at = now
    return Lock(row.locked_until, row.scope)


def _next_minutes(row: LoginThrottle) -> int:
    cap = int(current_app.config["LOGIN_LOCK_MAX_MINUTES"])
    return min(cap, 2 ** min(row.locks, 16))


def _minutes(row: LoginThrottle) -> int:
    """How long the lock just set lasts (after :func:`_lock` raised ``locks``)."""
    cap = int(current_app.config["LOGIN_LOCK_MAX_MINUTES"])
    return min(cap, 2 ** min(row.locks - 1, 16))
