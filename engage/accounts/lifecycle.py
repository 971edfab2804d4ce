"""A staff account's life: invitation, changes, deactivation, password links and changes.

Every change here is audited and only flushes; the request (or the CLI command) commits.
Emails carry only a link, and are sent after the commit (``core.db.after_commit``), so a
slow mail server never holds a transaction open and a rolled-back change sends nothing.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from flask import current_app, render_template
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import func, select, update

from engage.accounts.models import AccountToken, SessionEnd, TokenPurpose, User, UserSession
from engage.accounts.notices import Change, notify
from engage.accounts.passwords import password_problem
from engage.accounts.services import AccountError
from engage.accounts.sessions import end_sessions
from engage.audit.services import record
from engage.core import mail
from engage.core.db import after_commit, utcnow
from engage.core.permissions import ROLES
from engage.core.security import hash_token, new_token
from engage.extensions import db
from engage.org.models import Service

#: A "forgot password" request within this long of the last reset link sends nothing new,
#: so the page cannot be used to flood someone's mailbox.
FORGOT_QUIET = timedelta(minutes=5)


class FieldError(AccountError):
    """A change refused because of one field; ``field`` names the form field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def is_invited(user: User) -> bool:
    """Invited, has not set a password yet, and the invitation was not cancelled."""
    return (user.password_changed_at is None and not user.active
            and bool(open_invitations([user.id])))


def open_invitations(user_ids: list[int]) -> set[int]:
    """Which of these users have an invitation link that still works."""
    if not user_ids:
        return set()
    return set(db.session.scalars(
        select(AccountToken.user_id).where(
            AccountToken.user_id.in_(user_ids), AccountToken.purpose == TokenPurpose.INVITE,
            AccountToken.used_at.is_(None), AccountToken.expires_at > utcnow())
    ))


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise FieldError("role", _("Choose one of the roles."))


def _email_taken(email: str, other_than: int | None = None) -> bool:
    query = select(User.id).where(func.lower(User.email) == email)
    if other_than is not None:
        query = query.where(User.id != other_than)
    return db.session.scalar(query) is not None


def invite_user(
    email: str, role: str, *, name: str = "", services: list[Service] | None = None,
    language: str | None = None, by: User | None = None,
) -> User:
    """Create an account that stays inactive until its owner sets a password through the
    emailed link (valid ``ENGAGE_INVITE_HOURS``)."""
    email = email.strip().lower()
    _check_role(role)
    if _email_taken(email):
        raise FieldError("email", _("There is already an account with this email address."))
    user = User(email=email, role=role, name=name.strip(), language=language or None,
                services=list(services or []), active=False)
    # Nobody knows this password; the account opens only through the invitation link.
    user.set_password(secrets.token_urlsafe(32))
    db.session.add(user)
    db.session.flush()
    _send_link(user, TokenPurpose.INVITE, by)
    record("invite", "user", user.id, fields=["email", "name", "role", "services", "language"],
           role=role, services=[s.slug for s in user.services])
    return user


def resend_invitation(user: User, by: User | None = None) -> None:
    """A new invitation link for an account that has not been set up (the old one stops)."""
    if user.active or user.password_changed_at is not None:
        raise AccountError(_("This account is already set up."))
    _send_link(user, TokenPurpose.INVITE, by)
    record("invite", "user", user.id, fields=[], again=True)


def update_user(
    user: User, *, name: str, role: str, services: list[Service], language: str | None,
    by: User | None = None,
) -> list[str]:
    """Change what an admin may change; the names of the fields that changed (audited)."""
    _check_role(role)
    if role != user.role and user.role == "admin" and user.active and _last_active_admin(user):
        raise FieldError("role", _("This is the only active admin: make someone else an admin "
                                   "first."))
    changed = []
    if name.strip() != user.name:
        user.name = name.strip()
        changed.append("name")
    if role != user.role:
        changed.append("role")
        user.role = role
    if {s.id for s in services} != {s.id for s in user.services}:
        user.services = list(services)
        changed.append("services")
    if (language or None) != user.language:
        user.language = language or None
        changed.append("language")
    if changed:
        db.session.flush()
        record("update", "user", user.id, fields=changed, role=user.role,
               services=[s.slug for s in user.services])
    return changed


def set_role(user: User, role: str) -> bool:
    """Only the role (the CLI's ``set-role``); whether it changed."""
    return bool(update_user(user, name=user.name, role=role, services=list(user.services),
                            language=user.language))


def _last_active_admin(user: User) -> bool:
    others = db.session.scalar(
        select(func.count(User.id))
        .where(User.role == "admin", User.active.is_(True), User.id != user.id)
    )
    return not others


def deactivate(user: User, by: User | None = None) -> int:
    """Close the account: its sessions end at once and its links stop working.

    Returns how many sessions were ended. Refused for oneself and for the last active
    admin, so a hospital can never lock every admin out.
    """
    if by is not None and by.id == user.id:
        raise AccountError(_("You cannot deactivate your own account."))
    if not user.active and not is_invited(user):
        raise AccountError(_("This account is already deactivated."))
    if user.role == "admin" and user.active and _last_active_admin(user):
        raise AccountError(_("This is the only active admin: make someone else an admin "
                             "first."))
    invited = is_invited(user)
    user.active = False
    ended = end_sessions(user, SessionEnd.DEACTIVATED)
    # An invitation not yet used is cancelled with it.
    _retire_tokens(user)
    db.session.flush()
    record("deactivate", "user", user.id, fields=["active"], sessions_ended=ended,
           invitation=invited)
    return ended


def reactivate(user: User, by: User | None = None) -> None:
    """Open a deactivated account again. One that never set a password gets a new
    invitation instead of opening without one."""
    if user.active:
        raise AccountError(_("This account is already active."))
    if user.password_changed_at is None:
        _send_link(user, TokenPurpose.INVITE, by)
        record("reactivate", "user", user.id, fields=[], invitation=True)
        return
    user.active = True
    db.session.flush()
    record("reactivate", "user", user.id, fields=["active"])


def send_password_reset(user: User, by: User | None = None) -> str:
    """Email ``user`` a single-use link to set a new password (``ENGAGE_RESET_HOURS``);
    the token, for the CLI to print instead."""
    if not user.active:
        raise AccountError(_("This account is not active: reactivate it first."))
    token = _send_link(user, TokenPurpose.RESET, by)
    record("reset-password", "user", user.id, fields=[])
    return token


def issue_reset_token(user: User) -> str:
    """A reset link's token without emailing it (``engage users reset-password``)."""
    if not user.active:
        raise AccountError(_("This account is not active: reactivate it first."))
    token = _new_token(user, TokenPurpose.RESET, None)
    record("reset-password", "user", user.id, fields=[], emailed=False)
    return token


def forgot_password(email: str) -> None:
    """The "forgot password" page: email a reset link if ``email`` is an active account.

    The caller answers the same whatever happens here, so the page reveals no account.
    """
    user = db.session.scalar(
        select(User).where(func.lower(User.email) == email.strip().lower())
    )
    if user is None or not user.active:
        return
    recent = db.session.scalar(
        select(AccountToken.id).where(
            AccountToken.user_id == user.id, AccountToken.purpose == TokenPurpose.RESET,
            AccountToken.used_at.is_(None), AccountToken.created_at > utcnow() - FORGOT_QUIET)
    )
    if recent is not None:
        return
    _send_link(user, TokenPurpose.RESET, None)
    record("reset-password", "user", user.id, fields=[], forgot=True)


def find_token(token: str) -> AccountToken | None:
    """The open link for ``token``: not used, not replaced, not expired, and its account
    still in the state the link is for; None otherwise."""
    if not token or len(token) > 100:
        return None
    row = db.session.scalar(
        select(AccountToken).where(AccountToken.token_hash == hash_token(token))
    )
    if row is None or row.used_at is not None or row.expires_at <= utcnow():
        return None
    user = db.session.get(User, row.user_id)
    if user is None:
        return None
    if row.purpose == TokenPurpose.INVITE and (user.active
                                               or user.password_changed_at is not None):
        return None
    if row.purpose == TokenPurpose.RESET and not user.active:
        return None
    return row


def use_token(row: AccountToken, password: str) -> User:
    """Set the password through an invitation or reset link; the link is then spent and
    every session of the account ends (a reset is what someone does after a theft)."""
    user = db.session.get(User, row.user_id)
    assert user is not None
    _set_password(user, password)
    row.used_at = utcnow()
    if row.purpose == TokenPurpose.INVITE:
        user.active = True
    _retire_tokens(user)
    ended = end_sessions(user, SessionEnd.PASSWORD)
    db.session.flush()
    record("set-password", "user", user.id, fields=["password"], link=row.purpose,
           sessions_ended=ended)
    if row.purpose != TokenPurpose.INVITE:
        notify(user, Change.PASSWORD)
    return user


def change_password(user: User, current: str, new: str, *,
                    keep: UserSession | None = None) -> int:
    """The user's own change: needs the current password; ends their other sessions.

    Returns how many sessions were ended.
    """
    if not user.check_password(current):
        raise FieldError("current_password", _("That is not your current password."))
    if current == new:
        raise FieldError("password", _("Choose a password different from the current one."))
    _set_password(user, new)
    _retire_tokens(user)
    ended = end_sessions(user, SessionEnd.PASSWORD, keep=keep)
    db.session.flush()
    record("set-password", "user", user.id, fields=["password"], sessions_ended=ended)
    notify(user, Change.PASSWORD)
    return ended


def set_language(user: User, language: str | None) -> None:
    if (language or None) != user.language:
        user.language = language or None
        db.session.flush()
        record("update", "user", user.id, fields=["language"])


def _set_password(user: User, password: str) -> None:
    problem = password_problem(password, email=user.email, name=user.name)
    if problem:
        raise FieldError("password", problem)
    user.set_password(password)
    user.password_changed_at = utcnow()


def _retire_tokens(user: User) -> None:
    db.session.execute(
        update(AccountToken)
        .where(AccountToken.user_id == user.id, AccountToken.used_at.is_(None))
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def _new_token(user: User, purpose: TokenPurpose, by: User | None) -> str:
    """A fresh link for ``user``; any earlier unused link stops working."""
    _retire_tokens(user)
    hours = current_app.config[
        "INVITE_HOURS" if purpose == TokenPurpose.INVITE else "RESET_HOURS"]
    token = new_token()
    db.session.add(AccountToken(
        user_id=user.id, purpose=str(purpose), token_hash=hash_token(token),
        expires_at=utcnow() + timedelta(hours=hours),
        created_by_id=by.id if by is not None else None,
    ))
    db.session.flush()
    return token


def _send_link(user: User, purpose: TokenPurpose, by: User | None) -> str:
    token = _new_token(user, purpose, by)
    after_commit(send_link_email, user.id, str(purpose), token)
    return token


def link_url(token: str) -> str:
    return f"{current_app.config['BASE_URL']}/password/{token}"


def send_link_email(user_id: int, purpose: str, token: str) -> None:
    """Email the invitation or reset link, in the user's language. Only the link: the
    email names no patient, service or role. Raises :class:`engage.core.mail.MailError`."""
    user = db.session.get(User, user_id)
    if user is None:
        return
    hours = current_app.config[
        "INVITE_HOURS" if purpose == TokenPurpose.INVITE else "RESET_HOURS"]
    with force_locale(user.language or current_app.config["BABEL_DEFAULT_LOCALE"]):
        if purpose == TokenPurpose.INVITE:
            subject = _("Engage: set up your account")
        else:
            subject = _("Engage: reset your password")
        body = render_template("accounts/email_link.txt", purpose=purpose,
                               link=link_url(token), hours=hours)
    try:
        mail.send(mail.build_message(user.email, subject, body))
    except mail.MailError:
        current_app.logger.exception("the %s email to user %s was not sent", purpose, user.id)
        raise
