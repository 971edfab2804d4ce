"""The Flask application factory, ``create_app`` (also importable as ``engage.create_app``)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from flask import Flask

import config as config_module

ROOT = Path(__file__).resolve().parent.parent


def create_app(config: type[config_module.Config] | None = None) -> Flask:
    """Build the app. ``config`` defaults to the class named by ``ENGAGE_ENV``.

    Binds the extensions, registers every blueprint and starts no threads: the
    scheduler runs in its own process (``engage scheduler``).
    """
    config = config or config_module.from_environment()
    app = Flask(
        "engage",  # the package: its folder is the root, its name the logger's
        instance_path=config_module.instance_path(),
        instance_relative_config=True,
        template_folder=str(ROOT / "templates"),
    )
    app.config.from_object(config)
    os.makedirs(app.instance_path, exist_ok=True)
    app.config["SQLALCHEMY_DATABASE_URI"] = config_module.database_url(app.config)
    if not app.config.get("SECRET_KEY") and config.ENV_NAME == "development":
        app.config["SECRET_KEY"] = _instance_secret(app)
    config.validate(app.config)
    app.config["BASE_URL"] = (app.config.get("BASE_URL") or "").rstrip("/")

    from engage.core import i18n, security, templating
    from engage.core.db import configure_engine_events
    from engage.core.permissions import enforce_permissions
    from engage.core.proxies import trust_proxies
    from engage.extensions import csrf, db, login_manager, migrate

    trust_proxies(app)  # request.remote_addr: the client's, never a spoofed header

    _import_models()
    db.init_app(app)
    with app.app_context():
        configure_engine_events(db.engine)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), compare_type=True,
                     render_as_batch=True)
    # The permission check runs before the CSRF check: a request that may not reach the view
    # at all is refused (or sent to log in) the same way whatever it carries.
    app.before_request(enforce_permissions)
    csrf.init_app(app)
    login_manager.init_app(app)
    i18n.init_app(app)
    security.init_app(app)
    templating.init_app(app)
    _register_request_transaction(app)
    _register_blueprints(app)
    from engage.api import cookieless

    cookieless.init_app(app)  # under /api/ only the key counts: no cookie in or out
    _register_error_pages(app)
    _register_abuse_guards(app)

    from engage.cli import register_commands

    register_commands(app)
    return app


def _import_models() -> None:
    """Every domain's models, so the metadata (and Alembic) knows every table."""
    import engage.accounts.login_models
    import engage.accounts.models
    import engage.alerts.models
    import engage.api.models
    import engage.audit.models
    import engage.core.models
    import engage.delivery.models
    import engage.feedback.models
    import engage.org.models
    import engage.patients.models
    import engage.scheduling.models
    import engage.survey.models
    import engage.teams.models  # noqa: F401


def _instance_secret(app: Flask) -> str:
    """A development secret kept in instance/, so sessions survive a restart."""
    path = Path(app.instance_path) / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


def _register_blueprints(app: Flask) -> None:
    from engage.accounts.account_views import bp as account_bp
    from engage.accounts.admin import bp as staff_bp
    from engage.accounts.two_factor_views import bp as two_factor_bp
    from engage.accounts.views import bp as accounts_bp
    from engage.alerts.admin import bp as crisis_bp
    from engage.alerts.views import bp as alerts_bp
    from engage.api.views import bp as api_bp
    from engage.audit.views import bp as audit_bp
    from engage.delivery.views import bp as delivery_bp
    from engage.feedback.admin import bp as feedback_admin_bp
    from engage.feedback.public import bp as tell_us_bp
    from engage.feedback.safety_views import bp as safety_bp
    from engage.feedback.views import bp as feedback_bp
    from engage.org.views import bp as org_bp
    from engage.patients.views import bp as patients_bp
    from engage.responses.views import bp as responses_bp
    from engage.scheduling.views import bp as scheduling_bp
    from engage.survey.views import bp as survey_bp
    from engage.teams.views import bp as teams_bp

    for bp in (accounts_bp, org_bp, survey_bp, responses_bp, patients_bp, alerts_bp,
               delivery_bp, api_bp, feedback_bp, feedback_admin_bp, tell_us_bp, teams_bp,
               crisis_bp, safety_bp, audit_bp):
        app.register_blueprint(bp)
    app.register_blueprint(scheduling_bp)
    app.register_blueprint(two_factor_bp)
    app.register_blueprint(account_bp)
    app.register_blueprint(staff_bp)


def _register_request_transaction(app: Flask) -> None:
    """One transaction per request: views and services only flush; this commits.

    A response of 400 or more rolls back, so a failed form never half-writes.
    Work registered with :func:`engage.core.db.after_commit` (e.g. an alert email)
    runs once the commit has succeeded and the response has been sent, in its own
    app context.
    """
    from engage.core.db import run_deferred, take_after_commit
    from engage.extensions import db

    @app.after_request
    def commit(response):  # type: ignore[no-untyped-def]
        if response.status_code >= 400:
            db.session.rollback()
            return response
        db.session.commit()
        pending = take_after_commit()
        if pending:
            # After the response has gone out: a patient never waits for a mail server.
            response.call_on_close(lambda: run_deferred(app, pending))
        return response

    @app.teardown_request
    def rollback(exc: BaseException | None) -> None:
        if exc is not None:
            db.session.rollback()


def _register_error_pages(app: Flask) -> None:
    from engage.core.errors import register

    register(app)


def _register_abuse_guards(app: Flask) -> None:
    """Rate limits and the refusal of undecodable requests: each puts itself before every
    other hook (docs/security.md, "Abuse and bad input")."""
    from engage.core import inputs, limits

    inputs.init_app(app)
    limits.init_app(app)
