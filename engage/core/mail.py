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
    error = send_many([msg])[0]
    if error is not None:
        raise error


def send_many(messages: list[EmailMessage]) -> list[MailError | None]:
    """Send messages over one SMTP connection; the error (or None) for each, in order.

    One connection means a server that is down costs one timeout, not one per message.
    """
    cfg = current_app.config
    results: list[MailError | None] = []
    try:
        with smtplib.SMTP(cfg["SMTP_HOST"], cfg["SMTP_PORT"], timeout=cfg["SMTP_TIMEOUT"]) as smtp:
            if cfg["SMTP_STARTTLS"]:
                smtp.starttls()
            if cfg.get("SMTP_USER"):
                smtp.login(cfg["SMTP_USER"], cfg["SMTP_PASSWORD"] or "")
            for msg in messages:
                try:
                    smtp.send_message(msg)
                    results.append(None)
                except smtplib.SMTPRecipientsRefused as exc:
                    results.append(MailError(f"{type(exc).__name__}: {exc}"))
    except (OSError, smtplib.SMTPException) as exc:
        error = MailError(f"{type(exc).__name__}: {exc}")
        results.extend(error for _ in range(len(messages) - len(results)))
    return results
