"""Rate limits: the limiter (Flask-Limiter and its storage) and the one table of limits by
endpoint, applied to every request before anything else reads it.

Why a table checked in one hook rather than ``@limiter.limit`` on each view: the patient
link pages answer an unknown token from their blueprint's URL preprocessor, which runs
before any ``before_request`` hook (where Flask-Limiter checks) and before the view (where
its decorators check), so token guessing would never be counted; and one table lets this
file hold every limit without touching other domains' views. Flask-Limiter still owns the
storage (memory, or Redis shared by every worker) and the counting strategy.

A rule may count every request, or only the answers that show a failure (an unknown link
token, a refused API key): a family answering surveys on one hospital Wi-Fi address is
never slowed by its own successful requests, while someone guessing tokens from that
address is stopped after a few misses.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Flask, Response, current_app, g, request
from flask_limiter import Limiter
from limits import RateLimitItem, parse_many
from werkzeug.exceptions import TooManyRequests

from engage.core.security import API_KEY_PREFIX_LENGTH


def client_address() -> str:
    """The client's address (correct behind the configured trusted proxies)."""
    return request.remote_addr or "unknown"


def api_key_prefix() -> str | None:
    """The prefix of the API key sent, which names the key without revealing it; None
    without one (the per-address rule then covers the call)."""
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or len(key) < API_KEY_PREFIX_LENGTH:
        return None
    return "key:" + key[:API_KEY_PREFIX_LENGTH]


def link_token() -> str | None:
    """The patient link in the URL, hashed: counts never hold a usable token."""
    token = (request.view_args or {}).get("token")
    if not token:
        return None
    return "link:" + hashlib.sha256(str(token).encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Rule:
    """One limit on an endpoint.

    ``setting`` names the limit in ``RATELIMITS`` (config), e.g. ``"5/minute;30/hour"``;
    endpoints sharing a setting share its counts. ``key`` says whom it counts (None: the
    rule does not apply to this request). ``methods``: only these (empty: all).
    ``failures``: count only answers with one of these status codes, refusing once the
    count is reached (empty: count every request).
    """

    setting: str
    key: Callable[[], str | None] = client_address
    methods: tuple[str, ...] = ()
    failures: tuple[int, ...] = ()


#: Every rate limit, by endpoint (``blueprint.*``: each endpoint of the blueprint, including
#: ones added later). ``tests/test_rate_limits.py`` fails when an endpoint named here no
#: longer exists.
LIMITS: dict[str, tuple[Rule, ...]] = {
    # Per-account lock-out lives with the accounts; this is only a coarse ceiling per
    # address, high enough for a whole hospital behind one Wi-Fi address.
    "accounts.login": (Rule("login", methods=("POST",)),),
    # The second step of a login (the per-account count of wrong codes is the accounts').
    "two_factor.verify": (Rule("login", methods=("POST",)),),
    # "Forgot password" sends an email: a few per address.
    "account.forgot": (Rule("forgot", methods=("POST",)),),
    # Password links (invitations and resets): unknown links are token guessing.
    "account.set_password": (Rule("link_failures", failures=(404,)),),
    # Patient links: a ceiling per link, and misses (unknown or closed links, forged form
    # values) per address, which is what token guessing produces.
    "survey.*": (Rule("link", key=link_token),
                 Rule("link_failures", failures=(400, 403, 404, 410))),
    "delivery.unsubscribe": (Rule("unsubscribe"),
                             Rule("link_failures", failures=(400, 404))),
    # The public feedback page: reading it, and sending it, separately.
    "tell_us.form": (Rule("public_page", methods=("GET", "HEAD")),
                     Rule("public_send", methods=("POST",))),
    "tell_us.thanks": (Rule("public_page"),),
    # The API: per key, and refused keys per address.
    "api.*": (Rule("api_key", key=api_key_prefix),
              Rule("api_failures", failures=(401,))),
}

#: The default of each limit (``ENGAGE_RATELIMIT_<NAME>`` overrides one; see
#: docs/operations.md).
DEFAULTS = {
    "login": "60/minute",
    "forgot": "5/minute;20/hour",
    "link": "60/minute",
    "link_failures": "20/minute;100/hour",
    "unsubscribe": "30/minute",
    "public_page": "60/minute",
    "public_send": "5/minute;30/hour",
    "api_key": "600/minute",
    "api_failures": "30/minute",
}

limiter = Limiter(key_func=client_address, default_limits=[], headers_enabled=False)
#: Before every count's key, so a Redis shared with other software keeps them apart.
KEY_PREFIX = "engage-limits"


class RateLimited(TooManyRequests):
    """A request over one of :data:`LIMITS`; ``retry_after`` in seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__()
        self.retry_after = retry_after


def init_app(app: Flask) -> None:
    """Bind the limiter and install the check (before every other request hook)."""
    enabled = bool(app.config.get("RATELIMIT_ENABLED", True))
    # Flask-Limiter reads RATELIMIT_STORAGE_URI (and _ENABLED); its own per-request
    # middleware has no limits to apply: the check below does the work.
    app.config.setdefault("RATELIMIT_STORAGE_URI", "memory://")
    limiter.init_app(app)
    app.extensions["engage_limits"] = {
        name: parse_many(app.config.get("RATELIMITS", {}).get(name) or default)
        for name, default in DEFAULTS.items()
    }
    if not enabled:
        return
    # App-level URL preprocessors run before the blueprints' (which may already answer,
    # like the survey pages for an unknown token) and before every before_request hook.
    app.url_value_preprocessors.setdefault(None, []).insert(0, check)
    app.after_request(count_failures)


def rules_for(endpoint: str | None) -> tuple[Rule, ...]:
    if not endpoint:
        return ()
    exact = LIMITS.get(endpoint, ())
    blueprint = LIMITS.get(endpoint.rsplit(".", 1)[0] + ".*", ()) if "." in endpoint else ()
    return exact + blueprint


def check(endpoint: str | None, values: dict[str, Any] | None) -> None:
    """Refuse the request (429) when it is over a limit; count it where it counts."""
    rules = [rule for rule in rules_for(endpoint)
             if not rule.methods or request.method in rule.methods]
    if not rules:
        return
    keyed = [(rule, who) for rule in rules if (who := rule.key()) is not None]
    try:
        _apply(keyed)
    except RateLimited:
        raise
    except Exception:
        # The store (Redis) is down: let the request through rather than refuse patients.
        # Limits are a second line; the accounts keep their own lock-out in the database.
        current_app.logger.warning("rate limit store unavailable; %s not limited",
                                   endpoint, exc_info=True)
        g.pop("rate_limit_failures", None)


def _apply(keyed: list[tuple[Rule, str]]) -> None:
    items: dict[str, list[RateLimitItem]] = current_app.extensions["engage_limits"]
    strategy = limiter.limiter
    # Every limit is tested before any is counted, so a refused request uses up nothing.
    for rule, who in keyed:
        for item in items[rule.setting]:
            ids = (KEY_PREFIX, rule.setting, who)
            if not strategy.test(item, *ids):
                reset_at, _remaining = strategy.get_window_stats(item, *ids)
                raise RateLimited(max(1, int(reset_at - time.time()) + 1))
    for rule, who in keyed:
        if not rule.failures:
            for item in items[rule.setting]:
                strategy.hit(item, KEY_PREFIX, rule.setting, who)
    g.rate_limit_failures = [(rule, who) for rule, who in keyed if rule.failures]


def count_failures(response: Response) -> Response:
    """Count the answers that rules with ``failures`` count (after the view: only now is
    it known whether the token or key was good)."""
    pending: list[tuple[Rule, str]] = g.pop("rate_limit_failures", [])
    if not pending:
        return response
    items: dict[str, list[RateLimitItem]] = current_app.extensions["engage_limits"]
    try:
        for rule, who in pending:
            if response.status_code in rule.failures:
                for item in items[rule.setting]:
                    limiter.limiter.hit(item, KEY_PREFIX, rule.setting, who)
    except Exception:
        current_app.logger.warning("rate limit store unavailable; a miss was not counted",
                                   exc_info=True)
    return response
