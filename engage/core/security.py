"""Response headers, patient link tokens and the form token bound to a patient link."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from flask import Flask, Response, current_app, request

#: 32 random bytes = 256 bits, well above the 128 the product requires.
TOKEN_BYTES = 32

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
        # Pages show health data: never keep them in a shared or back-button cache.
        headers["Cache-Control"] = "no-store"
    if current_app.config.get("SESSION_COOKIE_SECURE"):
        headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    return response


def new_token() -> str:
    """A fresh patient link token (URL-safe, 256 random bits)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


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
