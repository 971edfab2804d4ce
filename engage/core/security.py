"""Response headers, patient link tokens and the form token bound to a patient link."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time

from flask import Flask, Response, current_app, request

#: 32 random bytes = 256 bits for links in emails and on screen.
TOKEN_BYTES = 32
#: 16 random bytes = 128 bits (the minimum) for links in text messages, which must be short.
SHORT_TOKEN_BYTES = 16
#: An API key's first characters, which name it in lists, audit events and rate-limit
#: counts without revealing it (``engage.api`` makes the keys).
API_KEY_PREFIX_LENGTH = 8

CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)


def init_app(app: Flask) -> None:
    app.after_request(_security_headers)


def _security_headers(response: Response) -> Response:
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CSP)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    # Patient links carry their token in the path; never leak it to another site.
    headers.setdefault("Referrer-Policy", "no-referrer")
    if request.endpoint != "static":
        # Pages show health data: never keep them in a shared or back-button cache. A view
        # that serves nothing personal (the empty public feedback form) may say otherwise.
        headers.setdefault("Cache-Control", "no-store")
    if current_app.config.get("SESSION_COOKIE_SECURE"):
        headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    return response


def new_token(short: bool = False) -> str:
    """A fresh patient link token: URL-safe, 256 random bits (128 when ``short``)."""
    return secrets.token_urlsafe(SHORT_TOKEN_BYTES if short else TOKEN_BYTES)


def signed_id(purpose: str, value: int) -> str:
    """``value`` with a 96-bit HMAC tag: short enough for a text message link."""
    tag = hmac.new(current_app.config["SECRET_KEY"].encode(),
                   f"{purpose}:{value}".encode(), hashlib.sha256).digest()[:12]
    return f"{value}.{base64.urlsafe_b64encode(tag).decode().rstrip('=')}"


def read_signed_id(purpose: str, text: str) -> int | None:
    """The value of a :func:`signed_id`, or None if it was not made with our secret."""
    number, _, _tag = text.partition(".")
    if not number.isdigit() or len(number) > 12:
        return None
    return int(number) if hmac.compare_digest(signed_id(purpose, int(number)), text) else None


def hash_token(token: str) -> str:
    """What the database keeps instead of the token: its SHA-256, hex."""
    return hashlib.sha256(token.encode()).hexdigest()


def link_form_token(token_hash: str) -> str:
    """The anti-forgery value for the forms behind one patient link.

    It is derived from the link rather than kept in a session, so a patient
    whose session cookie expired (or who has cookies off) loses nothing: only a
    page that knows the link can post to it.
    """
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, b"survey-form:" + token_hash.encode(), hashlib.sha256).hexdigest()


def check_link_form_token(token_hash: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(link_form_token(token_hash), given or "")


def timed_form_token(purpose: str, value: int, now: float | None = None) -> str:
    """An anti-forgery value for a public form that has no session: ``issued.tag``.

    It proves the post comes from a page this site served for ``value`` (e.g. a
    service), without a cookie, so a patient with cookies off can still send.
    """
    issued = int(now if now is not None else time.time())
    key = current_app.config["SECRET_KEY"].encode()
    tag = hmac.new(key, f"{purpose}:{value}:{issued}".encode(), hashlib.sha256).hexdigest()
    return f"{issued}.{tag[:32]}"


def check_timed_form_token(purpose: str, value: int, given: str | None, max_age: int,
                           now: float | None = None) -> str:
    """``ok``, ``expired`` (genuine but older than ``max_age`` seconds) or ``bad``."""
    issued, _sep, _tag = (given or "").partition(".")
    if not issued.isdigit() or len(issued) > 12:
        return "bad"
    if not hmac.compare_digest(timed_form_token(purpose, value, int(issued)), given or ""):
        return "bad"
    age = (now if now is not None else time.time()) - int(issued)
    return "expired" if age > max_age or age < -300 else "ok"
