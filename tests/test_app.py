"""The app factory, configuration, security headers and the permission check."""

from __future__ import annotations

import pytest

import config
from engage import create_app
from engage.core.permissions import ROLE_PERMISSIONS, has_permission


def test_production_refuses_to_start_without_a_secret(monkeypatch, tmp_path):
    monkeypatch.setenv("ENGAGE_INSTANCE_PATH", str(tmp_path))

    class Prod(config.Config):
        SECRET_KEY = None
        BASE_URL = "https://engage.example.org"
        SQLALCHEMY_DATABASE_URI = f"sqlite:///{tmp_path}/x.db"

    with pytest.raises(config.ConfigError, match="ENGAGE_SECRET_KEY"):
        create_app(Prod)


def test_production_refuses_a_short_secret(monkeypatch, tmp_path):
    monkeypatch.setenv("ENGAGE_INSTANCE_PATH", str(tmp_path))

    class Prod(config.Config):
        SECRET_KEY = "short"
        BASE_URL = "https://engage.example.org"
        SQLALCHEMY_DATABASE_URI = f"sqlite:///{tmp_path}/x.db"

    with pytest.raises(config.ConfigError, match="at least 32"):
        create_app(Prod)


def test_production_config_comes_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("ENGAGE_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("ENGAGE_ENV", "production")
    monkeypatch.setenv("ENGAGE_SECRET_KEY", "x" * 40)
    monkeypatch.setenv("ENGAGE_BASE_URL", "https://engage.example.org/")
    monkeypatch.setenv("ENGAGE_DATABASE_URL", f"sqlite:///{tmp_path}/prod.db")
    import importlib

    importlib.reload(config)
    try:
        app = create_app()
        assert app.config["BASE_URL"] == "https://engage.example.org"
        assert app.config["SQLALCHEMY_DATABASE_URI"].endswith("prod.db")
        assert app.config["SESSION_COOKIE_SECURE"] is True
        assert app.config["SESSION_COOKIE_HTTPONLY"] is True
        assert app.config["REMEMBER_COOKIE_SECURE"] is True
    finally:
        monkeypatch.undo()
        importlib.reload(config)


def test_unknown_environment_name_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("ENGAGE_ENV", "staging")
    with pytest.raises(config.ConfigError, match="staging"):
        config.from_environment()


def test_development_generates_and_keeps_a_secret(monkeypatch, tmp_path):
    monkeypatch.setenv("ENGAGE_INSTANCE_PATH", str(tmp_path))

    class Dev(config.DevelopmentConfig):
        SECRET_KEY = None
        SQLALCHEMY_DATABASE_URI = f"sqlite:///{tmp_path}/dev.db"

    first = create_app(Dev).config["SECRET_KEY"]
    assert len(first) >= 32
    assert create_app(Dev).config["SECRET_KEY"] == first
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_every_endpoint_declares_a_permission(app):
    undeclared = [
        rule.endpoint for rule in app.url_map.iter_rules()
        if rule.endpoint != "static"
        and not hasattr(app.view_functions[rule.endpoint], "_engage_permission")
    ]
    assert undeclared == []


def test_an_endpoint_without_a_declaration_is_refused(app, client):
    from flask import Blueprint

    bp = Blueprint("undeclared_test", __name__)

    @bp.route("/undeclared-test")
    def undeclared() -> str:
        return "secret"

    app.register_blueprint(bp)
    try:
        response = client.get("/undeclared-test")
        assert response.status_code == 403
        assert b"secret" not in response.data
    finally:
        # Leave the session app as it was for the tests after this one.
        app.view_functions.pop("undeclared_test.undeclared")
        app.blueprints.pop("undeclared_test")
        for rule in list(app.url_map.iter_rules()):
            if rule.endpoint == "undeclared_test.undeclared":
                app.url_map._rules.remove(rule)
        app.url_map._remap = True


def test_roles_grant_only_what_the_table_says(make_user):
    council = make_user("council")
    staff = make_user("staff")
    admin = make_user("admin")
    assert not has_permission(council, "responses.view")
    assert has_permission(staff, "responses.view")
    assert not has_permission(staff, "alerts.acknowledge")
    assert has_permission(admin, "anything.at.all")
    assert set(ROLE_PERMISSIONS) == {"admin", "staff", "clinician", "council"}


def test_pages_carry_security_headers(client):
    response = client.get("/login")
    assert response.status_code == 200
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["Cache-Control"] == "no-store"


def test_api_errors_are_json_problems(client):
    response = client.get("/api/v1/nothing-here")
    assert response.status_code in (403, 404)
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["status"] == response.status_code
