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


def test_production_config_comes_from_environment(tmp_path):
    import json
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("ENGAGE_")}
    env.update({
        "ENGAGE_INSTANCE_PATH": str(tmp_path), "ENGAGE_ENV": "production",
        "ENGAGE_SECRET_KEY": "x" * 40, "ENGAGE_BASE_URL": "https://engage.example.org/",
        "ENGAGE_DATABASE_URL": f"sqlite:///{tmp_path}/prod.db",
    })
    script = (
        "import json; from engage import create_app; c = create_app().config; "
        "print(json.dumps({k: c[k] for k in ('BASE_URL', 'SQLALCHEMY_DATABASE_URI', "
        "'SESSION_COOKIE_SECURE', 'SESSION_COOKIE_HTTPONLY', 'REMEMBER_COOKIE_SECURE', "
        "'SESSION_COOKIE_NAME', 'DEBUG', 'TESTING')}))"
    )
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                         text=True, timeout=60, check=True)
    cfg = json.loads(out.stdout.strip().splitlines()[-1])
    assert cfg["BASE_URL"] == "https://engage.example.org"
    assert cfg["SQLALCHEMY_DATABASE_URI"].endswith("prod.db")
    assert cfg["SESSION_COOKIE_SECURE"] is True
    assert cfg["SESSION_COOKIE_HTTPONLY"] is True
    assert cfg["REMEMBER_COOKIE_SECURE"] is True
    assert cfg["SESSION_COOKIE_NAME"] == "__Host-engage_session"
    assert cfg["DEBUG"] is False and cfg["TESTING"] is False


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


def test_an_endpoint_without_a_declaration_is_refused(monkeypatch, tmp_path):
    from flask import Blueprint

    monkeypatch.setenv("ENGAGE_INSTANCE_PATH", str(tmp_path))

    class Cfg(config.TestConfig):
        SQLALCHEMY_DATABASE_URI = f"sqlite:///{tmp_path}/x.db"

    fresh = create_app(Cfg)
    bp = Blueprint("undeclared_test", __name__)

    @bp.route("/undeclared-test")
    def undeclared() -> str:
        return "secret"

    fresh.register_blueprint(bp)
    response = fresh.test_client().get("/undeclared-test")
    assert response.status_code == 403
    assert b"secret" not in response.data


def test_roles_grant_only_what_the_table_says(make_user):
    council = make_user("council")
    staff = make_user("staff")
    admin = make_user("admin")
    assert not has_permission(council, "responses.view")
    assert has_permission(staff, "responses.view")
    assert not has_permission(staff, "alerts.acknowledge")
    assert has_permission(admin, "anything.at.all")
    assert set(ROLE_PERMISSIONS) == {"admin", "staff", "clinician", "safeguarding",
                                     "safety_officer", "council", "integrator-read",
                                     "integrator-write"}
    lead, officer = make_user("safeguarding"), make_user("safety_officer")
    assert has_permission(lead, "alerts.acknowledge") and has_permission(lead, "feedback.triage")
    assert not has_permission(lead, "safety.manage")
    assert has_permission(officer, "safety.manage") and has_permission(officer, "crisis.manage")
    # The safety officer reads redacted wording only: no patient record, no original comment.
    assert not any(has_permission(officer, p) for p in
                   ("feedback.view", "patients.view", "responses.view", "alerts.view"))


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


def test_no_cross_origin_reads_are_allowed(client):
    """No CORS headers, on pages or the API: a page on another origin cannot read answers."""
    for url in ("/login", "/api/v1/protocols"):
        response = client.get(url, headers={"Origin": "https://evil.example"})
        assert "Access-Control-Allow-Origin" not in response.headers
        preflight = client.options(url, headers={
            "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
        assert "Access-Control-Allow-Origin" not in preflight.headers
