"""API keys: scopes, the services they act for, expiry, and no cookies either way."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from engage.api.models import ApiKey
from engage.api.services import ApiKeyError, authenticate_key, create_api_key
from engage.audit.models import AuditEvent
from engage.core.db import utcnow
from engage.scheduling.models import Enrolment

ANCHOR = "2031-03-03T10:00"
PROBLEM = "application/problem+json"


@pytest.fixture
def mine(make_service):  # type: ignore[no-untyped-def]
    return make_service("cardiology")


@pytest.fixture
def theirs(make_service):  # type: ignore[no-untyped-def]
    return make_service("dermatology")


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def new_key(scope: str, *services: Any, **kw: Any) -> str:
    from engage.extensions import db

    _row, key = create_api_key(f"{scope} EHR", scope=scope, services=list(services), **kw)
    db.session.commit()
    return key


def enrolment_body(protocol: Any, ref: str = "MRN-K1") -> dict[str, str]:
    return {"patient_ref": ref, "protocol": protocol.slug, "anchor": ANCHOR,
            "email": "pat@example.org"}


def enrolments(db: Any) -> int:
    return int(db.session.scalar(select(func.count()).select_from(Enrolment)))


# --- creating and listing --------------------------------------------------------------

def test_cli_creates_a_key_with_scope_services_and_expiry(runner, client, mine, theirs, db):
    result = runner.invoke(args=["apikeys", "create", "Epic", "--scope", "write",
                                 "--service", mine.slug, "--service", theirs.slug,
                                 "--expires", "30"])
    assert result.exit_code == 0, result.output
    assert "scope write" in result.output and "cardiology, dermatology" in result.output
    key = result.output.strip().splitlines()[-1]
    row = db.session.scalar(select(ApiKey).where(ApiKey.prefix == key[:8]))
    assert row.scope == "write" and [s.slug for s in row.services] == [
        "cardiology", "dermatology"]
    assert abs(row.expires_at - (utcnow() + timedelta(days=30))) < timedelta(minutes=1)
    assert client.get("/api/v1/protocols", headers=bearer(key)).status_code == 200
    db.session.expire_all()  # the request wrote last_used_at in its own transaction
    listed = runner.invoke(args=["apikeys", "list"]).output
    line = next(x for x in listed.splitlines() if x.startswith(key[:8]))
    assert "active" in line and "scope write" in line
    assert "services cardiology,dermatology" in line
    assert f"expires {row.expires_at:%Y-%m-%d}" in line and "last used 20" in line


@pytest.mark.parametrize(("args", "message"), [
    (["--scope", "read"], "--service"),
    (["--service", "cardiology"], "--scope"),
    (["--scope", "admin", "--service", "cardiology"], "'admin' is not one of"),
    (["--scope", "read", "--service", "nowhere"], "no service 'nowhere'"),
    (["--scope", "read", "--service", "cardiology", "--expires", "0"], "between 1 and"),
])
def test_cli_refuses_a_key_without_a_scope_or_a_real_service(args, message, runner, mine, db):
    result = runner.invoke(args=["apikeys", "create", "Lab", *args])
    assert result.exit_code == 2
    assert message in result.output
    assert db.session.scalar(select(func.count()).select_from(ApiKey)) == 0


def test_a_key_needs_a_service_and_a_known_scope(db, mine):
    with pytest.raises(ApiKeyError, match="at least one service"):
        create_api_key("Lab", scope="read", services=[])
    with pytest.raises(ApiKeyError, match="scope"):
        create_api_key("Lab", scope="everything", services=[mine])


def test_creating_a_key_is_audited_with_its_scope_services_and_expiry(db, mine, theirs):
    row, _key = create_api_key("Lab", scope="read", services=[theirs, mine],
                               expires_in_days=7)
    event = db.session.scalar(select(AuditEvent).where(
        AuditEvent.object_type == "api_key", AuditEvent.action == "create"))
    assert event.object_id == row.id
    assert event.detail["scope"] == "read"
    assert event.detail["services"] == ["cardiology", "dermatology"]
    assert event.detail["expires_at"] == row.expires_at.isoformat()


def test_cli_list_shows_scope_services_expiry_and_last_use(runner, client, mine, db):
    key = new_key("read", mine)
    client.get("/api/v1/protocols", headers=bearer(key))
    db.session.expire_all()
    listed = runner.invoke(args=["apikeys", "list"]).output
    line = next(x for x in listed.splitlines() if x.startswith(key[:8]))
    assert "scope read" in line and "services cardiology" in line
    assert "expires never" in line and "last used never" not in line


# --- scopes ----------------------------------------------------------------------------

def test_a_read_key_reads_but_may_not_enrol_or_withdraw(client, mine, make_protocol,
                                                        enrol_patient, db):
    protocol = make_protocol(service=mine)
    enrolment = enrol_patient(protocol, ANCHOR)
    key = new_key("read", mine)
    assert client.get("/api/v1/protocols", headers=bearer(key)).get_json()["protocols"]
    got = client.get(f"/api/v1/enrolments/{enrolment.id}", headers=bearer(key))
    assert got.status_code == 200 and got.get_json()["id"] == enrolment.id
    before = enrolments(db)
    for url, body in (("/api/v1/enrolments", enrolment_body(protocol)),
                      (f"/api/v1/enrolments/{enrolment.id}/withdraw", {})):
        response = client.post(url, headers=bearer(key), json=body)
        assert response.status_code == 403 and response.mimetype == PROBLEM
        assert "scope" in response.get_json()["detail"]
    assert enrolments(db) == before
    db.session.expire_all()
    assert db.session.get(Enrolment, enrolment.id).status == "active"


def test_a_write_key_enrols_and_withdraws(client, mine, make_protocol, db):
    key = new_key("write", mine)
    created = client.post("/api/v1/enrolments", headers=bearer(key),
                          json=enrolment_body(make_protocol(service=mine)))
    assert created.status_code == 201
    withdrawn = client.post(created.headers["Location"] + "/withdraw", headers=bearer(key))
    assert withdrawn.status_code == 200 and withdrawn.get_json()["status"] == "withdrawn"


# --- services --------------------------------------------------------------------------

def test_a_key_sees_and_acts_on_its_services_only(client, mine, theirs, make_protocol,
                                                  enrol_patient, db):
    own, other = make_protocol(service=mine), make_protocol(service=theirs)
    elsewhere = enrol_patient(other, ANCHOR)
    key = new_key("write", mine)
    listed = client.get("/api/v1/protocols", headers=bearer(key)).get_json()["protocols"]
    assert [p["slug"] for p in listed] == [own.slug]
    refused = client.post("/api/v1/enrolments", headers=bearer(key),
                          json=enrolment_body(other))
    assert refused.status_code == 403 and refused.mimetype == PROBLEM
    assert "not bound" in refused.get_json()["detail"]
    for method, url in (("get", f"/api/v1/enrolments/{elsewhere.id}"),
                        ("post", f"/api/v1/enrolments/{elsewhere.id}/withdraw")):
        response = getattr(client, method)(url, headers=bearer(key))
        assert response.status_code == 404 and response.mimetype == PROBLEM
    db.session.expire_all()
    assert enrolments(db) == 1 and db.session.get(Enrolment, elsewhere.id).status == "active"


# --- expiry ----------------------------------------------------------------------------

def test_an_expired_key_is_refused_saying_so(client, mine, db):
    key = new_key("write", mine, expires_in_days=1)
    assert client.get("/api/v1/protocols", headers=bearer(key)).status_code == 200
    row = db.session.scalar(select(ApiKey).where(ApiKey.prefix == key[:8]))
    row.expires_at = utcnow() - timedelta(seconds=1)
    row.last_used_at = None
    db.session.commit()
    response = client.get("/api/v1/protocols", headers=bearer(key))
    assert response.status_code == 401 and response.mimetype == PROBLEM
    assert "expired" in response.get_json()["detail"]
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    db.session.expire_all()
    assert db.session.get(ApiKey, row.id).last_used_at is None  # refused: not a use


def test_a_key_works_until_the_moment_it_expires(db, mine):
    row, key = create_api_key("Lab", scope="read", services=[mine], expires_in_days=2)
    assert not row.expired(utcnow() + timedelta(days=1))
    assert row.expired(row.expires_at)
    assert authenticate_key(key) is row


# --- cookies: never needed, never read, never set --------------------------------------

def _logged_in_staff(client: Any, auth: Any, make_user: Any, service: Any) -> None:
    user = make_user("staff", services=[service])
    assert auth.login(user.email).status_code == 302
    assert client.get("/services").status_code == 200


@pytest.mark.parametrize("user_agent", [None, "Another browser/1.0"])
def test_a_key_with_a_staff_session_cookie_is_accepted_and_sets_no_cookie(
    user_agent, client, auth, make_user, mine, make_protocol, db
):
    """The cookie of a logged-in browser (from that browser, or replayed from another:
    Flask-Login's strong protection used to empty the session and refuse the key)."""
    _logged_in_staff(client, auth, make_user, mine)
    key = new_key("write", mine)
    headers = {**bearer(key), **({"User-Agent": user_agent} if user_agent else {})}
    listed = client.get("/api/v1/protocols", headers=headers)
    created = client.post("/api/v1/enrolments", headers=headers,
                          json=enrolment_body(make_protocol(service=mine)))
    assert (listed.status_code, created.status_code) == (200, 201)
    for response in (listed, created):
        assert "Set-Cookie" not in response.headers
    assert client.get("/services").status_code == 200  # the staff session is untouched


@pytest.mark.parametrize("cookie", ["engage_session", "remember_token", "session", "x"])
def test_a_key_with_a_garbage_cookie_is_accepted_and_sets_no_cookie(
    cookie, client, mine, db
):
    key = new_key("read", mine)
    client.set_cookie(cookie, "garbage.that-is.not-signed")
    response = client.get("/api/v1/protocols", headers=bearer(key))
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers


def test_api_errors_set_no_cookies_either(client, auth, make_user, mine, db):
    _logged_in_staff(client, auth, make_user, mine)
    for response in (client.get("/api/v1/protocols"),
                     client.get("/api/v1/enrolments/999", headers=bearer(new_key("read",
                                                                                 mine)))):
        assert response.status_code in (401, 404)
        assert "Set-Cookie" not in response.headers


def test_staff_pages_still_set_their_session_cookie(client, auth, make_user, mine):
    user = make_user("staff", services=[mine])
    response = auth.login(user.email)
    assert any(c.startswith("engage_session=") for c in response.headers.getlist("Set-Cookie"))
