"""API keys (create, find, revoke) and the principal a valid key authenticates as.

A key is ``eng_`` followed by 40 URL-safe random characters (240 bits). Only its
SHA-256 is stored, so a key that is lost cannot be shown again: create a new one.
A key has a scope (``read`` or ``write``), the services it acts for (at least one) and
may expire; ``docs/api.md`` and ``docs/security.md`` say what each allows.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from engage.api.models import ApiKey, ApiScope
from engage.audit.services import record
from engage.core.db import utcnow
from engage.core.security import API_KEY_PREFIX_LENGTH, hash_token
from engage.extensions import db
from engage.org.models import Service

#: Every key starts with this, so a leaked one is easy to recognise (and to scan for).
KEY_START = "eng_"
#: Random bytes after ``eng_``: 30 bytes are 40 URL-safe characters.
KEY_BYTES = 30
PREFIX_LENGTH = API_KEY_PREFIX_LENGTH
#: ``last_used_at`` is written at most this often, so busy integrations don't write per call.
LAST_USED_RESOLUTION = timedelta(minutes=1)
#: The role a key acts with, by scope (see ``engage.core.permissions.ROLE_PERMISSIONS``).
API_ROLES = {ApiScope.READ: "integrator-read", ApiScope.WRITE: "integrator-write"}
#: The longest a key may be made to last, in days (``--expires``); ten years.
MAX_EXPIRY_DAYS = 3650


class ApiKeyError(ValueError):
    """A key cannot be created or revoked as asked; the message says why."""


def create_api_key(
    name: str, *, scope: str, services: Sequence[Service], expires_in_days: int | None = None,
    created_by: Any = None, now: datetime | None = None,
) -> tuple[ApiKey, str]:
    """Create a key called ``name``; return it and the key text, which is shown only once.

    ``scope`` is ``read`` or ``write``; ``services`` (at least one) are the services whose
    protocols and patients the key may act on; ``expires_in_days`` (None: until revoked)
    ends it. ``created_by`` is the admin creating it (None on the command line). The audit
    event records the scope, services and expiry. Flushes; raises :class:`ApiKeyError`.
    """
    name = name.strip()
    if not name:
        raise ApiKeyError("a name is required, e.g. the system that will use the key")
    if len(name) > 100:
        raise ApiKeyError("the name must be at most 100 characters")
    if scope not in {s.value for s in ApiScope}:
        raise ApiKeyError(f"the scope must be one of {', '.join(s.value for s in ApiScope)}")
    if not services:
        raise ApiKeyError("bind the key to at least one service (--service SLUG): a key acts "
                          "only on its services' protocols and patients")
    if expires_in_days is not None and not 1 <= expires_in_days <= MAX_EXPIRY_DAYS:
        raise ApiKeyError(f"the expiry must be between 1 and {MAX_EXPIRY_DAYS} days")
    now = now or utcnow()
    while True:  # the prefix names the key in lists and to revoke it: keep it unique
        key = KEY_START + secrets.token_urlsafe(KEY_BYTES)
        if find_api_key(key[:PREFIX_LENGTH]) is None:
            break
    api_key = ApiKey(
        name=name, prefix=key[:PREFIX_LENGTH], key_hash=hash_token(key), scope=scope,
        services=list(dict.fromkeys(services)), created_at=now,
        expires_at=now + timedelta(days=expires_in_days) if expires_in_days else None,
        created_by_id=created_by.id if created_by is not None else None)
    db.session.add(api_key)
    db.session.flush()
    record("create", "api_key", api_key.id, name=name, prefix=api_key.prefix, scope=scope,
           services=sorted(s.slug for s in api_key.services),
           expires_at=api_key.expires_at.isoformat() if api_key.expires_at else None)
    return api_key, key


def find_api_key(prefix: str) -> ApiKey | None:
    """The key whose first characters are ``prefix``, revoked or not."""
    return db.session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))


def list_api_keys() -> list[ApiKey]:
    return list(db.session.scalars(select(ApiKey).order_by(ApiKey.created_at, ApiKey.id)))


def revoke_api_key(prefix: str, now: datetime | None = None) -> ApiKey:
    """Revoke the key with ``prefix``; it stops working at once. Revoking twice is harmless."""
    api_key = find_api_key(prefix.strip())
    if api_key is None:
        raise ApiKeyError(f"no API key starts with {prefix!r} (see `engage apikeys list`)")
    if api_key.revoked_at is None:
        api_key.revoked_at = now or utcnow()
        db.session.flush()
        record("revoke", "api_key", api_key.id, prefix=api_key.prefix)
    return api_key


def authenticate_key(key: str, now: datetime | None = None) -> ApiKey | None:
    """The key matching ``key`` if it is not revoked, its ``last_used_at`` brought up to date.

    An expired key is returned too (without touching ``last_used_at``), so the caller can
    say it expired; check :meth:`ApiKey.expired`. None for anything else.
    """
    if not key.startswith(KEY_START) or len(key) > 200:
        return None
    api_key = db.session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_token(key)))
    if api_key is None or api_key.revoked_at is not None:
        return None
    now = now or utcnow()
    if api_key.expired(now):
        return api_key
    if api_key.last_used_at is None or now - api_key.last_used_at >= LAST_USED_RESOLUTION:
        api_key.last_used_at = now
    return api_key


class ApiPrincipal:
    """Who ``current_user`` is on an API request: the integration holding a key.

    It looks enough like a :class:`~engage.accounts.models.User` for the one
    permission check (``enforce_permissions`` and ``@require``: its role follows the
    key's scope), for ``can_see_service`` (its services are the key's) and for audit
    events, which name it ``api:<prefix>``.
    """

    is_authenticated = True
    is_active = True
    active = True
    is_anonymous = False
    id = None
    language = None

    def __init__(self, api_key: ApiKey) -> None:
        self.api_key_id = api_key.id
        self.prefix = api_key.prefix
        self.name = api_key.name
        self.scope = ApiScope(api_key.scope)
        self.role = API_ROLES[self.scope]
        #: Only the key's services: it sees and acts on nothing else.
        self.services: list[Service] = list(api_key.services)

    @property
    def audit_actor(self) -> str:
        return f"api:{self.prefix}"

    def get_id(self) -> None:
        return None  # never stored in a session

    def __repr__(self) -> str:
        return f"<ApiPrincipal {self.prefix} {self.scope}>"
