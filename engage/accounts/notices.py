"""Telling a person by email that their sign-in details changed (ASVS 2.2.3).

The email names what changed and when, and tells them to contact an administrator if it was
not them. It carries no link, so it cannot be copied into a convincing phishing email, and
it is sent after the commit, so a change that is rolled back sends nothing.
"""

from __future__ import annotations

from enum import StrEnum

from flask import current_app, render_template
from flask_babel import force_locale
from flask_babel import gettext as _

from engage.accounts.models import User
from engage.core import mail
from engage.core.db import after_commit, utcnow
from engage.extensions import db


class Change(StrEnum):
    PASSWORD = "password"
    FACTOR_ADDED = "factor-added"
    FACTOR_REMOVED = "factor-removed"
    RECOVERY_CODES = "recovery-codes"


def notify(user: User, change: Change) -> None:
    """Email ``user`` about ``change`` once the current transaction commits."""
    after_commit(send_notice, user.id, str(change))


def send_notice(user_id: int, change: str) -> None:
    """Send the notice (the deferred half of :func:`notify`); a mail failure is logged."""
    user = db.session.get(User, user_id)
    if user is None or not user.email:
        return
    with force_locale(user.language or current_app.config["BABEL_DEFAULT_LOCALE"]):
        subject = _("Engage: your sign-in details changed")
        body = render_template("accounts/email_notice.txt", change=change, at=utcnow())
    try:
        mail.send(mail.build_message(user.email, subject, body))
    except mail.MailError:
        current_app.logger.exception("the %s notice to user %s was not sent", change, user.id)
