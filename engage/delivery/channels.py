"""Channel backends: email over SMTP, SMS through an HTTP gateway, console and null.

A backend's ``send`` returns normally on success and raises
:class:`TransientError` (try again later) or :class:`PermanentError` (do not).
"""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Protocol

from flask import current_app

from engage.core import mail


class DeliveryError(RuntimeError):
    """A message could not be handed over."""


class TransientError(DeliveryError):
    """Worth another try later: the server was down, busy or timed out."""


class PermanentError(DeliveryError):
    """No point retrying: the address or number was refused."""


@dataclass
class Sms:
    to: str
    body: str


class EmailBackend(Protocol):
    def send(self, message: EmailMessage) -> None: ...


class SmsBackend(Protocol):
    def send(self, message: Sms) -> None: ...


class SmtpBackend:
    def send(self, message: EmailMessage) -> None:
        try:
            mail.send(message)
        except mail.MailError as exc:
            text = str(exc)
            # 5xx replies refuse the recipient for good; anything else may pass later.
            if "SMTPRecipientsRefused" in text or " 55" in text:
                raise PermanentError(text) from exc
            raise TransientError(text) from exc


class HttpGatewaySms:
    """POSTs ``{"to", "from", "body"}`` as JSON to ``ENGAGE_SMS_GATEWAY_URL``.

    A 2xx answer is success; 429 and 5xx are transient; other 4xx permanent.
    ``ENGAGE_SMS_GATEWAY_TOKEN``, when set, goes in ``Authorization: Bearer``.
    """

    def __init__(self, url: str, token: str | None = None, sender: str | None = None,
                 timeout: float = 10.0) -> None:
        self.url, self.token, self.sender, self.timeout = url, token, sender, timeout

    def send(self, message: Sms) -> None:
        body = json.dumps({"to": message.to, "from": self.sender, "body": message.body})
        request = urllib.request.Request(self.url, data=body.encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            detail = f"SMS gateway answered {exc.code}"
            if exc.code == 429 or exc.code >= 500:
                raise TransientError(detail) from exc
            raise PermanentError(detail) from exc
        except OSError as exc:
            raise TransientError(f"SMS gateway unreachable: {exc}") from exc


class ConsoleBackend:
    """Prints what would be sent: for development and the demo."""

    def send(self, message: EmailMessage | Sms) -> None:
        if isinstance(message, Sms):
            print(f"--- SMS to {message.to} ---\n{message.body}", file=sys.stdout, flush=True)
        else:
            print(f"--- email to {message['To']} ---\n{message}", file=sys.stdout, flush=True)


@dataclass
class NullBackend:
    """Keeps messages in memory (tests, benchmarks)."""

    sent: list[object] = field(default_factory=list)
    keep: bool = True

    def send(self, message: EmailMessage | Sms) -> None:
        if self.keep:
            self.sent.append(message)


def email_backend() -> EmailBackend:
    override = current_app.extensions.get("engage.email_backend")
    if override is not None:
        return override  # type: ignore[no-any-return]
    name = current_app.config["EMAIL_BACKEND"]
    backends: dict[str, type[EmailBackend]] = {
        "smtp": SmtpBackend, "console": ConsoleBackend, "null": NullBackend}
    return backends[name]()


def sms_backend() -> SmsBackend:
    override = current_app.extensions.get("engage.sms_backend")
    if override is not None:
        return override  # type: ignore[no-any-return]
    cfg = current_app.config
    if cfg["SMS_BACKEND"] == "http":
        if not cfg.get("SMS_GATEWAY_URL"):
            raise PermanentError("ENGAGE_SMS_GATEWAY_URL is not set")
        return HttpGatewaySms(cfg["SMS_GATEWAY_URL"], cfg.get("SMS_GATEWAY_TOKEN"),
                              cfg.get("SMS_SENDER"))
    return {"console": ConsoleBackend, "null": NullBackend}[cfg["SMS_BACKEND"]]()


# GSM 03.38: the basic set, and the extension set whose characters take two septets.
GSM7_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENDED = set("^{}\\[~]|€\f")


def sms_units(text: str) -> tuple[str, int]:
    """(encoding, length in that encoding's units): ``gsm7`` septets or ``ucs2`` characters."""
    if all(c in GSM7_BASIC or c in GSM7_EXTENDED for c in text):
        return "gsm7", sum(2 if c in GSM7_EXTENDED else 1 for c in text)
    return "ucs2", len(text.encode("utf-16-le")) // 2


def sms_segments(text: str) -> int:
    """How many SMS parts the text needs (160/153 septets, or 70/67 UCS-2 characters)."""
    encoding, units = sms_units(text)
    single, multi = (160, 153) if encoding == "gsm7" else (70, 67)
    return 1 if units <= single else -(-units // multi)
