"""Configuration read from ``ENGAGE_*`` environment variables.

``create_app`` picks a class from ``ENGAGE_ENV`` (``production`` unless told
otherwise) and then calls :meth:`Config.validate`, which refuses to start a
production app that is missing a secret.
"""

from __future__ import annotations

import os
from datetime import timedelta


class ConfigError(RuntimeError):
    """The configuration cannot run safely; the message says what to set."""


#: Regions with built-in crisis contacts (the emergency number and national helplines).
CRISIS_REGIONS = ("GB", "ES", "US")


def check_choices(config: dict) -> None:
    """Raise :class:`ConfigError` for a setting that is not one of its choices (every
    environment: a patient in crisis must never get a page without a number to call)."""
    region = config.get("CRISIS_REGION")
    if region not in CRISIS_REGIONS:
        raise ConfigError(
            f"ENGAGE_CRISIS_REGION={region!r} is not one of {', '.join(CRISIS_REGIONS)}: "
            "set it to the country whose emergency number and helplines patients should see."
        )


def env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(f"ENGAGE_{name}", default)


def env_bool(name: str, default: bool) -> bool:
    value = env(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = env(name)
    return default if value in (None, "") else int(value)


class Config:
    """Production settings. Every value can be overridden from the environment."""

    ENV_NAME = "production"
    TESTING = False
    DEBUG = False

    SECRET_KEY = env("SECRET_KEY")
    #: None means "a SQLite file under instance/", filled in by create_app.
    SQLALCHEMY_DATABASE_URI = env("DATABASE_URL")
    SQLALCHEMY_ENGINE_OPTIONS: dict = {"pool_pre_ping": True}
    #: Public address of the site; links in emails and CLI output start with it.
    BASE_URL = env("BASE_URL")

    SMTP_HOST = env("SMTP_HOST", "localhost")
    SMTP_PORT = env_int("SMTP_PORT", 25)
    SMTP_USER = env("SMTP_USER")
    SMTP_PASSWORD = env("SMTP_PASSWORD")
    SMTP_STARTTLS = env_bool("SMTP_STARTTLS", False)
    SMTP_TIMEOUT = env_int("SMTP_TIMEOUT", 10)
    MAIL_FROM = env("MAIL_FROM", "Engage <no-reply@localhost>")

    #: Minutes between repeated emails for an alert nobody has acknowledged.
    ALERT_RENOTIFY_MINUTES = env_int("ALERT_RENOTIFY_MINUTES", 60)
    #: Days an invitation made with ``engage invite`` stays open.
    INVITATION_DAYS = env_int("INVITATION_DAYS", 14)
    #: Questions shown on one page of a patient survey.
    SURVEY_PAGE_SIZE = env_int("SURVEY_PAGE_SIZE", 3)

    #: ``smtp``, ``console`` (print) or ``null`` (drop).
    EMAIL_BACKEND = env("EMAIL_BACKEND", "smtp")
    #: ``http`` (a JSON gateway), ``console`` or ``null``.
    SMS_BACKEND = env("SMS_BACKEND", "console")
    SMS_GATEWAY_URL = env("SMS_GATEWAY_URL")
    SMS_GATEWAY_TOKEN = env("SMS_GATEWAY_TOKEN")
    SMS_SENDER = env("SMS_SENDER", "Engage")
    #: No message to patients in this daily period, in each patient's own time zone.
    QUIET_HOURS = env("QUIET_HOURS", "21:00-08:00")
    #: Tries before a message is marked failed (exponential backoff between them).
    DELIVERY_MAX_ATTEMPTS = env_int("DELIVERY_MAX_ATTEMPTS", 5)
    #: Seconds before the first retry; doubled each time.
    DELIVERY_RETRY_SECONDS = env_int("DELIVERY_RETRY_SECONDS", 300)
    #: Seconds a dispatcher holds a claimed message before another may take it over.
    DELIVERY_LEASE_SECONDS = env_int("DELIVERY_LEASE_SECONDS", 300)
    #: Messages claimed at a time by one dispatcher.
    DELIVERY_BATCH = env_int("DELIVERY_BATCH", 200)

    #: Hours within which feedback should be responded to or closed, by urgency.
    FEEDBACK_TARGET_HOURS = {
        "urgent": env_int("FEEDBACK_TARGET_URGENT_HOURS", 24),
        # A possible safeguarding concern: a person must have read it within this.
        "review": env_int("FEEDBACK_TARGET_REVIEW_HOURS", 24),
        "high": env_int("FEEDBACK_TARGET_HIGH_HOURS", 72),
        "normal": env_int("FEEDBACK_TARGET_NORMAL_HOURS", 240),
    }
    #: The labelled comments a retrained theme model starts from (a CSV in the framework's
    #: format, or .csv.gz); None: the copy shipped with Engage.
    THEMES_BASE_DATA = env("THEMES_BASE_DATA")
    #: New staff confirmations needed before the scheduler trains a candidate theme model.
    THEMES_RETRAIN_MIN_NEW = env_int("THEMES_RETRAIN_MIN_NEW", 50)
    #: Time zone for people who are not patients on record (a reply to a public comment).
    DEFAULT_TIMEZONE = env("DEFAULT_TIMEZONE", "Europe/London")
    #: Weekday (0 Monday .. 6 Sunday) and hour (UTC) from which the weekly team digest goes.
    DIGEST_WEEKDAY = env_int("DIGEST_WEEKDAY", 0)
    DIGEST_HOUR = env_int("DIGEST_HOUR", 7)
    #: Hour (UTC) from which each service's safeguarding leads get the day's email of
    #: comments waiting for a safety review (sent once a day, when any are waiting).
    SAFETY_DIGEST_HOUR = env_int("SAFETY_DIGEST_HOUR", 8)
    #: Whose emergency number and helplines a patient is shown after a safety alert when an
    #: admin has set none (``engage/alerts/crisis.py``): ``GB``, ``ES`` or ``US``.
    CRISIS_REGION = (env("CRISIS_REGION") or "GB").strip().upper()

    #: Reverse proxies in front of Engage that set X-Forwarded-For and -Proto (0: none, so
    #: those headers are ignored and a client cannot choose the address it is audited under).
    TRUSTED_PROXIES = env_int("TRUSTED_PROXIES", 0)
    #: Days each kind of data is kept (engage/retention/; 0: for ever). Audit events at
    #: least 365 days (the database refuses to delete younger ones on PostgreSQL).
    RETENTION_DAYS = {
        "responses": env_int("RETENTION_RESPONSES_DAYS", 0),
        "comments": env_int("RETENTION_COMMENTS_DAYS", 0),
        "messages": env_int("RETENTION_MESSAGES_DAYS", 365),
        "audit": env_int("RETENTION_AUDIT_DAYS", 2920),
    }

    LANGUAGES = ("en", "es", "ar")
    BABEL_DEFAULT_LOCALE = "en"
    BABEL_DEFAULT_TIMEZONE = env("TIMEZONE", "UTC")

    SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", True)
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    #: ``__Host-`` (ASVS 3.4.4): the browser accepts the cookie only over HTTPS, for this host
    #: alone (no Domain) and the whole site, so a sibling subdomain cannot plant or read it.
    SESSION_COOKIE_NAME = "__Host-engage_session" if SESSION_COOKIE_SECURE else "engage_session"
    REMEMBER_COOKIE_SECURE = SESSION_COOKIE_SECURE
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_DURATION = timedelta(days=1)
    PERMANENT_SESSION_LIFETIME = timedelta(hours=env_int("SESSION_HOURS", 8))
    #: A staff session unused this long ends (checked on the server, engage/accounts/sessions.py).
    SESSION_IDLE_MINUTES = env_int("SESSION_IDLE_MINUTES", 30)
    #: Hours an emailed invitation link stays valid, and a password-reset link.
    INVITE_HOURS = env_int("INVITE_HOURS", 72)
    RESET_HOURS = env_int("RESET_HOURS", 2)
    #: Login throttling (engage/accounts/throttle.py): consecutive failures that lock a login
    #: name, and the longest lock (they double from 1 minute).
    LOGIN_LOCK_AFTER = env_int("LOGIN_LOCK_AFTER", 5)
    LOGIN_LOCK_MAX_MINUTES = env_int("LOGIN_LOCK_MAX_MINUTES", 60)
    #: A client address waits (same back-off) after failing on this many different login
    #: names, or this many times in all, within the window.
    LOGIN_ADDRESS_ACCOUNTS = env_int("LOGIN_ADDRESS_ACCOUNTS", 20)
    LOGIN_ADDRESS_CEILING = env_int("LOGIN_ADDRESS_CEILING", 100)
    LOGIN_ADDRESS_WINDOW_MINUTES = env_int("LOGIN_ADDRESS_WINDOW_MINUTES", 15)
    #: Roles that must log in with a second factor (TOTP), comma-separated.
    REQUIRE_2FA_ROLES = tuple(
        r.strip() for r in (env("REQUIRE_2FA_ROLES", "admin") or "").split(",") if r.strip())
    WTF_CSRF_TIME_LIMIT = None  # tied to the session's own lifetime instead
    #: The largest request body accepted (kB); a bigger one is refused with 413 before it is
    #: read. 10 MB holds a CSV import of tens of thousands of enrolments.
    MAX_CONTENT_LENGTH = env_int("MAX_REQUEST_KB", 10240) * 1024
    SEND_FILE_MAX_AGE_DEFAULT = timedelta(days=365)
    #: Rate limits (engage/core/limits.py, docs/operations.md): on unless set to false.
    RATELIMIT_ENABLED = env_bool("RATELIMIT_ENABLED", True)
    #: Where the counts live: ``memory://`` (each worker its own) or a Redis URL such as
    #: ``redis://127.0.0.1:6379/0``, which every gunicorn worker then shares.
    RATELIMIT_STORAGE_URI = env("RATELIMIT_STORAGE_URL", "memory://")
    #: Each limit, e.g. ``ENGAGE_RATELIMIT_PUBLIC_SEND="5/minute;30/hour"``; unset: the
    #: default in engage/core/limits.py.
    RATELIMITS = {name: env(f"RATELIMIT_{name.upper()}") for name in (
        "login", "forgot", "link", "link_failures", "unsubscribe", "public_page",
        "public_send", "api_key", "api_failures")}
    #: Comments the public page of one service takes in an hour; beyond, it asks people to
    #: come back later (a flood's ceiling; docs/security.md).
    PUBLIC_MAX_PER_HOUR = env_int("PUBLIC_MAX_PER_HOUR", 200)
    #: The same urgent text from the same address within this many minutes joins the open
    #: alert of the first instead of raising (and emailing) another.
    PUBLIC_REPEAT_MINUTES = env_int("PUBLIC_REPEAT_MINUTES", 10)

    @classmethod
    def validate(cls, config: dict) -> None:
        """Raise :class:`ConfigError` when the settings cannot run safely."""
        check_choices(config)
        missing = [
            f"ENGAGE_{key}" for key in ("SECRET_KEY", "BASE_URL") if not config.get(key)
        ]
        if missing:
            raise ConfigError(
                "Engage will not start in production without "
                + " and ".join(missing)
                + ". Set ENGAGE_SECRET_KEY to a long random value (for example the output of "
                "`python -c \"import secrets; print(secrets.token_hex(32))\"`) and "
                "ENGAGE_BASE_URL to the public https address of the site, "
                "or set ENGAGE_ENV=development to try Engage on this machine."
            )
        if len(config["SECRET_KEY"]) < 32:
            raise ConfigError("ENGAGE_SECRET_KEY must be at least 32 characters long.")


class DevelopmentConfig(Config):
    """A single machine: cookies over plain http, a generated secret under instance/."""

    ENV_NAME = "development"
    DEBUG = False
    BASE_URL = env("BASE_URL", "http://127.0.0.1:5000")
    SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", False)
    SESSION_COOKIE_NAME = "__Host-engage_session" if SESSION_COOKIE_SECURE else "engage_session"
    REMEMBER_COOKIE_SECURE = SESSION_COOKIE_SECURE
    SMTP_PORT = env_int("SMTP_PORT", 8025)
    REQUIRE_2FA_ROLES = tuple(
        r.strip() for r in (env("REQUIRE_2FA_ROLES", "") or "").split(",") if r.strip())

    @classmethod
    def validate(cls, config: dict) -> None:
        check_choices(config)


class TestConfig(DevelopmentConfig):
    ENV_NAME = "test"
    TESTING = True
    SECRET_KEY = "test-secret-key-that-is-long-enough-0123456789"
    SQLALCHEMY_DATABASE_URI = os.environ.get("ENGAGE_TEST_DATABASE_URL") or "sqlite://"
    BASE_URL = "http://engage.test"
    CRISIS_REGION = "GB"  # the tests expect 999, whatever the machine's environment says
    WTF_CSRF_ENABLED = True
    SMTP_HOST = "127.0.0.1"
    SMTP_PORT = 1  # tests that send mail start aiosmtpd and set the port
    # Hundreds of logins and public posts come from one address in a run; the tests of
    # the limits build an app with them on (tests/test_rate_limits.py).
    RATELIMIT_ENABLED = False


CONFIGS: dict[str, type[Config]] = {
    "production": Config,
    "development": DevelopmentConfig,
    "test": TestConfig,
}


def instance_path() -> str:
    """The instance folder (the SQLite database, the development secret):
    ``ENGAGE_INSTANCE_PATH``, or ``instance/`` beside this file."""
    return os.environ.get("ENGAGE_INSTANCE_PATH") or os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "instance")


def database_url(config: type[Config] | dict | None = None) -> str:
    """The SQLAlchemy URL of the database ``config`` (a class, or an app's config; by
    default the class ``ENGAGE_ENV`` names) uses: its ``SQLALCHEMY_DATABASE_URI``
    (``ENGAGE_DATABASE_URL``), else ``engage.db`` in :func:`instance_path`."""
    if config is None:
        config = from_environment()
    url = (config.get("SQLALCHEMY_DATABASE_URI") if isinstance(config, dict)
           else config.SQLALCHEMY_DATABASE_URI)
    return url or "sqlite:///" + os.path.join(instance_path(), "engage.db")


def from_environment() -> type[Config]:
    name = (env("ENV") or "production").strip().lower()
    try:
        return CONFIGS[name]
    except KeyError:
        raise ConfigError(
            f"ENGAGE_ENV={name!r} is not one of {', '.join(sorted(CONFIGS))}."
        ) from None
