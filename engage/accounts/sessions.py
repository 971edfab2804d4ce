"""Server-side staff sessions: starting, checking, ending and listing them.

Flask-Login keeps the user id in the signed session cookie; on its own that cookie stays
valid until it expires, even after logout. Here each login is also a :class:`UserSession`
row, and the cookie carries a random token whose hash names that row. A cookie is honoured
only while its row is open, the account active, the session younger than
``ENGAGE_SESSION_HOURS`` and idle for less than ``ENGAGE_SESSION_IDLE_MINUTES``; so logout,
a password change and deactivation end sessions on the server, at once.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from flask import current_app, g, has_request_context, request, session
from flask_login import AnonymousUserMixin, login_user, logout_user
from sqlalchemy import select, update

from engage.accounts.models import SessionEnd, User, UserSession
from engage.audit.services import record
from engage.core.db import utcnow
from engage.core.security import hash_token, new_token
from engage.extensions import db

#: The key of the session token in Flask's session.
SESSION_KEY = "_engage_sid"
#: ``last_seen_at`` is written at most this often, so a busy page does not write each time.
TOUCH_EVERY = timedelta(minutes=1)
USER_AGENT_LENGTH = 200
_CONTROL = re.compile("[\x00-\x1f\x7f\u202a-\u202e\u2066-\u2069]")


def start_session(user: User) -> UserSession:
    """Log ``user`` in (Flask-Login) and record the session; the login view calls this.

    Only the random token goes into the cookie; the database keeps its hash.
    """
    token = new_token()
    login_user(user)
    session[SESSION_KEY] = token
    row = UserSession(
        user_id=user.id, token_hash=hash_token(token),
        ip=request.remote_addr,
        # Shown back on the account page: no control characters (NUL breaks PostgreSQL).
        user_agent=_CONTROL.sub("", request.user_agent.string or "")[:USER_AGENT_LENGTH],
    )
    db.session.add(row)
    db.session.flush()
    g.engage_session = row
    return row


def current_session() -> UserSession | None:
    """The session row of this request's login, if any (set by :func:`load_session_user`)."""
    return g.get("engage_session") if has_request_context() else None


def load_session_user(user_id: str) -> User | None:
    """The user of this request's session cookie, or None when the session is not valid.

    Called by Flask-Login's user loader. Ends a session found idle or too old (and says so
    on the login page); touches ``last_seen_at`` at most once a minute.
    """
    token = session.get(SESSION_KEY)
    if not token or not user_id.isdigit():
        return None
    row = db.session.scalar(
        select(UserSession).where(UserSession.token_hash == hash_token(str(token)))
    )
    if row is None or row.user_id != int(user_id) or row.ended_at is not None:
        return None
    user = db.session.get(User, row.user_id)
    if user is None or not user.active:
        return None
    now = utcnow()
    config = current_app.config
    reason = None
    if now - row.created_at > config["PERMANENT_SESSION_LIFETIME"]:
        reason = SessionEnd.EXPIRED
    elif now - row.last_seen_at > timedelta(minutes=config["SESSION_IDLE_MINUTES"]):
        reason = SessionEnd.IDLE
    if reason is not None:
        # Audited as the system, not the user: no one is logged in on this request.
        g._login_user = AnonymousUserMixin()
        _end(row, reason, now)
        record("session-end", "user", user.id, actor="web", reason=str(reason))
        session.pop(SESSION_KEY, None)
        g.engage_session_ended = reason
        return None
    if now - row.last_seen_at >= TOUCH_EVERY:
        row.last_seen_at = now
    g.engage_session = row
    return user


def end_current_session(reason: SessionEnd = SessionEnd.LOGOUT) -> None:
    """End this request's session on the server and log out of Flask-Login."""
    row = current_session()
    if row is not None and row.ended_at is None:
        _end(row, reason, utcnow())
    session.pop(SESSION_KEY, None)
    logout_user()


def end_sessions(user: User, reason: SessionEnd, *, keep: UserSession | None = None) -> int:
    """End every open session of ``user`` (but ``keep``); how many were ended."""
    query = (
        update(UserSession)
        .where(UserSession.user_id == user.id, UserSession.ended_at.is_(None))
        .values(ended_at=utcnow(), ended_reason=str(reason))
        .execution_options(synchronize_session="fetch")
    )
    if keep is not None:
        query = query.where(UserSession.id != keep.id)
    result = db.session.execute(query)
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def end_session(user: User, session_id: int) -> bool:
    """End one of ``user``'s own sessions (the account page); False if it is not theirs."""
    row = db.session.get(UserSession, session_id)
    if row is None or row.user_id != user.id or row.ended_at is not None:
        return False
    _end(row, SessionEnd.ENDED, utcnow())
    record("session-end", "user", user.id, reason=str(SessionEnd.ENDED), session=row.id)
    return True


def open_sessions(user: User) -> list[UserSession]:
    """``user``'s sessions that have not ended and are not idle or too old, newest first."""
    now = utcnow()
    config = current_app.config
    rows = db.session.scalars(
        select(UserSession)
        .where(UserSession.user_id == user.id, UserSession.ended_at.is_(None),
               UserSession.created_at > now - config["PERMANENT_SESSION_LIFETIME"],
               UserSession.last_seen_at
               > now - timedelta(minutes=config["SESSION_IDLE_MINUTES"]))
        .order_by(UserSession.last_seen_at.desc(), UserSession.id.desc())
    )
    return list(rows)


def _end(row: UserSession, reason: SessionEnd, at: datetime) -> None:
    row.ended_at = at
    row.ended_reason = str(reason)


#: How long a session's row is kept after it started: long enough for an admin or the person
#: to look back at where an account was used; every session has long ended by then.
KEEP_SESSIONS = timedelta(days=90)


def purge_sessions(now: datetime | None = None) -> int:
    """Delete the rows of sessions that started more than :data:`KEEP_SESSIONS` ago.

    Their logins and logouts stay in the audit log. Safe to run twice at once.
    """
    cutoff = (now or utcnow()) - KEEP_SESSIONS
    result = db.session.execute(
        UserSession.__table__.delete().where(UserSession.created_at < cutoff))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
