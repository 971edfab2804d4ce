"""Sending email over SMTP, as configured by ``ENGAGE_SMTP_*``."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from email.utils import make_msgid

from flask import current_app


class MailError(RuntimeError):
    """The SMTP server could not be reached or refused the message."""


def build_message(
    to: str, subject: str, text: str, html: str | None = None,
    headers: dict[str, str] | None = None,
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = current_app.config["MAIL_FROM"]
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = make_msgid(domain="engage")
    msg.set_content(text)
    if html:
        msg.add_alternative(html, subtype="html")
    # After the body: set_content() drops any Content-* header set before it.
    for name, value in (headers or {}).items():
        msg[name] = value
    return msg


def send(msg: EmailMessage) -> None:
    """Send one message; raise :class:`MailError` on any SMTP or network failure."""
    cfg = current_app.config
    try:
        with smtplib.SMTP(cfg["SMTP_HOST"], cfg["SMTP_PORT"], timeout=cfg["SMTP_TIMEOUT"]) as smtp:
            if cfg["SMTP_STARTTLS"]:
                smtp.starttls()
            if cfg.get("SMTP_USER"):
                smtp.login(cfg["SMTP_USER"], cfg["SMTP_PASSWORD"] or "")
            smtp.send_message(msg)
    except (OSError, smtplib.SMTPException) as exc:
        raise MailError(f"{type(exc).__name__}: {exc}") from exc
