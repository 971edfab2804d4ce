"""A failed request never breaks the error page that reports it (engage/core/errors.py):
the transaction is rolled back first, the staff header's alert count is left out, and
a page that still cannot render gives way to a plain one. SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from engage.extensions import db as _db
from tests.helpers import text_of


def break_view(app: Flask, monkeypatch: Any, endpoint: str, failure: Any) -> None:
    """Make ``endpoint`` fail with ``failure()`` inside its transaction (same permission)."""
    original = app.view_functions[endpoint]

    def broken(**_kwargs: Any) -> Any:
        failure()
        return "never"

    broken._engage_permission = original._engage_permission  # type: ignore[attr-defined,union-attr]
    monkeypatch.setitem(app.view_functions, endpoint, broken)


def duplicate_service(slug: str) -> Any:
    def fail() -> None:
        from engage.org.models import Service

        _db.session.add(Service(slug=slug, name="Twice"))
        _db.session.flush()  # IntegrityError: the session now refuses every query

    return fail


def failed_statement() -> None:
    # On PostgreSQL the transaction is aborted: every later statement fails until rollback.
    _db.session.execute(text("SELECT no_such_column FROM service"))


@pytest.mark.parametrize("failure", ["integrity", "statement"])
def test_a_database_error_gives_a_proper_500_page_and_the_next_request_works(
    app, client, auth, make_user, make_service, monkeypatch, failure,
):
    from engage.alerts.models import Alert

    service = make_service()
    admin = make_user("admin", services=[service])
    _db.session.add(Alert(service_id=service.id, kind="comment-staff"))
    _db.session.commit()
    auth.login(admin.email)
    assert "1 safety alert" in text_of(client.get("/services"))  # the header counts it
    break_view(app, monkeypatch, "org.services",
               duplicate_service(service.slug) if failure == "integrity"
               else failed_statement)
    r = client.get("/services")
    assert r.status_code == 500
    html = r.get_data(as_text=True)
    assert "Something went wrong on our side" in html
    assert "Traceback" not in html
    assert 'href="/static/staff.css' in html  # the real page, the staff header included
    assert admin.email in html
    monkeypatch.undo()
    assert client.get("/services").status_code == 200


def test_an_error_page_that_cannot_render_gives_way_to_a_plain_one(
    app, client, auth, make_user, monkeypatch,
):
    admin = make_user("admin")
    auth.login(admin.email)

    def database_gone(*_args: Any, **_kwargs: Any) -> Any:
        raise OperationalError("SELECT 1", {}, Exception("server closed the connection"))

    break_view(app, monkeypatch, "org.services", failed_statement)
    monkeypatch.setattr("engage.core.errors.render_template", database_gone)
    r = client.get("/services")
    assert r.status_code == 500
    assert r.mimetype == "text/html"
    assert "Something went wrong on our side" in r.get_data(as_text=True)


def test_an_api_failure_is_a_problem_not_a_page(app, client, make_service, monkeypatch):
    from engage.api.services import create_api_key

    service = make_service()
    _row, key = create_api_key("EHR", scope="read", services=[service])
    _db.session.commit()
    break_view(app, monkeypatch, "api.list_protocols", duplicate_service(service.slug))
    r = client.get("/api/v1/protocols", headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 500 and r.mimetype == "application/problem+json"
    monkeypatch.undo()
    assert client.get("/api/v1/protocols",
                      headers={"Authorization": f"Bearer {key}"}).status_code == 200


def test_a_patient_page_error_keeps_the_patient_layout(app, client, make_invitation,
                                                       monkeypatch):
    _invitation, token = make_invitation("phq-9")
    break_view(app, monkeypatch, "survey.start", failed_statement)
    r = client.get(f"/s/{token}")
    assert r.status_code == 500
    html = r.get_data(as_text=True)
    assert "patient.css" in html and "staff.css" not in html


def test_a_request_body_over_the_limit_is_refused_before_it_is_read(app, client, db,
                                                                    make_service):
    """MAX_CONTENT_LENGTH: a page gets the translated 413 page, the API a problem."""
    limit = app.config["MAX_CONTENT_LENGTH"]
    assert limit == 10 * 1024 * 1024
    body = b"x" * (limit + 1)
    page = client.post("/tell-us/anything", data=body,
                       content_type="application/x-www-form-urlencoded")
    assert page.status_code == 413
    assert "too much to send at once" in page.get_data(as_text=True)
    from engage.api.services import create_api_key

    _key, secret = create_api_key("EHR", scope="write", services=[make_service()])
    db.session.commit()
    api = client.post("/api/v1/enrolments", data=body, content_type="application/json",
                      headers={"Authorization": f"Bearer {secret}"})
    assert api.status_code == 413
    assert api.headers["Content-Type"].startswith("application/problem+json")
