"""The JSON API: keys, bearer authentication, enrolment endpoints, problem details."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text

from engage.api.models import ApiKey
from engage.api.services import authenticate_key, create_api_key, revoke_api_key
from engage.audit.models import AuditEvent
from engage.patients.models import Patient
from engage.scheduling.models import Enrolment

ANCHOR = "2031-03-03T10:00"  # Europe/London, GMT: 10:00 UTC
PROBLEM = "application/problem+json"


@pytest.fixture
def service(make_service):  # type: ignore[no-untyped-def]
    """The service the test key acts for; protocols made here belong to it."""
    return make_service()


@pytest.fixture
def make_protocol(make_protocol, service):  # type: ignore[no-untyped-def]
    """The factory's ``make_protocol``, in the key's service unless told otherwise."""
    def make(slug=None, timepoints=None, service_=None):  # type: ignore[no-untyped-def]
        return make_protocol(slug, timepoints, service_ or service)
    return make


@pytest.fixture
def api_key(db, service):  # type: ignore[no-untyped-def]
    """``(ApiKey, key)``: a write key for ``service``, made with the service and committed."""
    row, key = create_api_key("Test EHR", scope="write", services=[service])
    db.session.commit()
    return row, key


@pytest.fixture
def headers(api_key):  # type: ignore[no-untyped-def]
    return {"Authorization": f"Bearer {api_key[1]}"}


def body(protocol_, **fields):  # type: ignore[no-untyped-def]
    return {"patient_ref": "MRN-API-1", "protocol": protocol_.slug, "anchor": ANCHOR,
            "tz": "Europe/London", "email": "pat@example.org", **fields}


def count(db, model) -> int:  # type: ignore[no-untyped-def]
    return int(db.session.scalar(select(func.count()).select_from(model)))


# --- keys ------------------------------------------------------------------------------

def test_cli_creates_a_key_shown_once_that_works(runner, client, service, db):
    result = runner.invoke(args=["apikeys", "create", "Epic interface", "--scope", "read",
                                 "--service", service.slug])
    assert result.exit_code == 0, result.output
    key = result.output.strip().splitlines()[-1]
    assert key.startswith("eng_") and len(key) == 44
    assert "will not be shown again" in result.output
    response = client.get("/api/v1/protocols", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200
    listed = runner.invoke(args=["apikeys", "list"]).output
    assert key[:8] in listed and "Epic interface" in listed and key not in listed


def test_cli_revokes_a_key_by_its_prefix(runner, client, service, db):
    key = runner.invoke(args=["apikeys", "create", "Lab", "--scope", "read", "--service",
                              service.slug]).output.strip().splitlines()[-1]
    result = runner.invoke(args=["apikeys", "revoke", key[:8]])
    assert result.exit_code == 0 and "Revoked" in result.output
    assert "revoked" in runner.invoke(args=["apikeys", "list"]).output
    response = client.get("/api/v1/protocols", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 401
    assert runner.invoke(args=["apikeys", "revoke", "eng_none"]).exit_code == 2


def test_keys_are_stored_as_a_hash_only(api_key, db):
    row, key = api_key
    assert row.key_hash == hashlib.sha256(key.encode()).hexdigest()
    stored = db.session.execute(text("SELECT * FROM api_key")).all()
    assert len(stored) == 1
    for value in stored[0]:
        assert key not in str(value) and key[8:] not in str(value)


def test_last_used_is_written_at_most_once_a_minute(api_key, db):
    row, key = api_key
    start = datetime(2031, 1, 1, 12, 0, tzinfo=UTC)
    assert authenticate_key(key, now=start) is row
    assert row.last_used_at == start
    authenticate_key(key, now=start + timedelta(seconds=30))
    assert row.last_used_at == start
    authenticate_key(key, now=start + timedelta(seconds=61))
    assert row.last_used_at == start + timedelta(seconds=61)


def test_a_request_records_when_the_key_was_last_used(api_key, headers, client, db):
    assert client.get("/api/v1/protocols", headers=headers).status_code == 200
    db.session.expire_all()
    assert db.session.get(ApiKey, api_key[0].id).last_used_at is not None


# --- authentication --------------------------------------------------------------------

@pytest.mark.parametrize("authorization", [
    None, "Bearer", "Bearer wrong", "Bearer eng_" + "x" * 40, "Basic dXNlcjpwYXNz",
])
def test_without_a_valid_key_the_api_answers_401_not_the_login_page(
    authorization, api_key, client, make_protocol
):
    make_protocol()
    headers = {"Authorization": authorization} if authorization else {}
    for method, url in (("get", "/api/v1/protocols"), ("get", "/api/v1/enrolments/1"),
                        ("post", "/api/v1/enrolments")):
        response = getattr(client, method)(url, headers=headers, json={})
        assert response.status_code == 401
        assert response.mimetype == PROBLEM
        assert response.get_json()["status"] == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert "Location" not in response.headers


def test_a_revoked_key_stops_working_at_once(api_key, headers, client, db):
    assert client.get("/api/v1/protocols", headers=headers).status_code == 200
    revoke_api_key(api_key[0].prefix)
    db.session.commit()
    response = client.get("/api/v1/protocols", headers=headers)
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_a_staff_session_does_not_open_the_api(make_user, auth, client):
    make_user("admin", email="admin@hospital.test")
    auth.login("admin@hospital.test")
    assert client.get("/services").status_code == 200  # logged in
    assert client.get("/api/v1/protocols").status_code == 401


def test_a_key_does_not_open_staff_pages(headers, client):
    response = client.get("/services", headers=headers)
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_api_responses_set_no_cookies(headers, client, make_protocol):
    response = client.post("/api/v1/enrolments", headers=headers,
                           json=body(make_protocol()))
    assert response.status_code == 201
    assert "Set-Cookie" not in response.headers


# --- enrolments ------------------------------------------------------------------------

def test_post_enrols_and_plans_the_invitations(headers, client, make_protocol, db):
    protocol = make_protocol()
    response = client.post("/api/v1/enrolments", headers=headers, json=body(protocol))
    assert response.status_code == 201
    assert response.mimetype == "application/json"
    data = response.get_json()
    assert response.headers["Location"] == f"/api/v1/enrolments/{data['id']}"
    assert data["patient_ref"] == "MRN-API-1" and data["protocol"] == protocol.slug
    assert data["anchor"] == "2031-03-03T10:00:00Z" and data["tz"] == "Europe/London"
    assert data["status"] == "active"
    assert len(data["invitations"]) == 10  # 5 timepoints x 2 questionnaires
    assert {i["status"] for i in data["invitations"]} == {"scheduled"}
    assert data["invitations"][0]["due"] == "2031-03-03T10:00:00Z"
    assert db.session.get(Enrolment, data["id"]).source == "api"


def test_post_needs_no_csrf_token(headers, client, make_protocol, app):
    assert app.config["WTF_CSRF_ENABLED"]
    response = client.post("/api/v1/enrolments", headers=headers, json=body(make_protocol()))
    assert response.status_code == 201


@pytest.mark.parametrize(("field", "value"), [
    ("anchor", "next tuesday"),
    ("anchor", None),
    ("protocol", "no-such-protocol"),
    ("tz", "Mars/Olympus_Mons"),
    ("phone", "12345"),
    ("email", "not an email"),
    ("language", "fr"),
    ("patient_ref", 12345),
    ("timezone", "Europe/London"),  # a typo for tz: refused, not ignored
])
def test_an_invalid_enrolment_is_422_per_field_and_writes_nothing(
    field, value, headers, client, make_protocol, db
):
    response = client.post("/api/v1/enrolments", headers=headers,
                           json=body(make_protocol(), **{field: value}))
    assert response.status_code == 422
    assert response.mimetype == PROBLEM
    problem = response.get_json()
    assert problem["status"] == 422 and problem["title"] and problem["detail"]
    assert set(problem["errors"]) == {field}
    assert count(db, Patient) == 0 and count(db, Enrolment) == 0


def test_every_problem_is_reported_at_once(headers, client, db):
    response = client.post("/api/v1/enrolments", headers=headers,
                           json={"protocol": "nope", "anchor": "soon", "tz": "X/Y",
                                 "phone": "123"})
    assert response.status_code == 422
    assert {"patient_ref", "protocol", "anchor", "tz", "phone"} <= set(
        response.get_json()["errors"])


@pytest.mark.parametrize("data", ['{"patient_ref": ', "[1, 2]", '"text"'])
def test_a_body_that_is_not_a_json_object_is_400(data, headers, client, db):
    response = client.post("/api/v1/enrolments", headers=headers, data=data,
                           content_type="application/json")
    assert response.status_code == 400
    assert response.mimetype == PROBLEM
    assert count(db, Enrolment) == 0


def test_a_body_that_is_not_json_is_415(headers, client, make_protocol):
    response = client.post("/api/v1/enrolments", headers=headers,
                           data={"patient_ref": "MRN-1", "protocol": make_protocol().slug})
    assert response.status_code == 415
    assert response.mimetype == PROBLEM


def test_posting_again_moves_the_anchor_of_the_one_enrolment(headers, client,
                                                             make_protocol, db):
    protocol = make_protocol()
    first = client.post("/api/v1/enrolments", headers=headers, json=body(protocol))
    again = client.post("/api/v1/enrolments", headers=headers,
                        json=body(protocol, anchor="2031-04-07T10:00"))
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.get_json()["id"] == first.get_json()["id"]
    assert again.get_json()["anchor"] == "2031-04-07T09:00:00Z"  # BST
    assert "Location" not in again.headers
    assert count(db, Enrolment) == 1
    dues = {i["due"] for i in again.get_json()["invitations"] if i["status"] == "scheduled"}
    assert "2031-04-07T09:00:00Z" in dues and "2031-03-03T10:00:00Z" not in dues


def test_a_simultaneous_duplicate_is_409(headers, client, make_protocol, monkeypatch):
    from sqlalchemy.exc import IntegrityError

    def collide(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise IntegrityError("INSERT", {}, Exception("uq_enrolment_active"))

    monkeypatch.setattr("engage.api.views.enrol", collide)
    response = client.post("/api/v1/enrolments", headers=headers, json=body(make_protocol()))
    assert response.status_code == 409 and response.mimetype == PROBLEM


def test_get_shows_the_enrolment_and_its_invitations(headers, client, make_protocol):
    protocol = make_protocol()
    created = client.post("/api/v1/enrolments", headers=headers, json=body(protocol))
    response = client.get(created.headers["Location"], headers=headers)
    assert response.status_code == 200
    data = response.get_json()
    assert data == created.get_json()
    invitation = data["invitations"][0]
    assert set(invitation) >= {"instrument", "due", "opens", "closes", "status",
                               "messages_planned", "last_sent_at", "last_error"}
    assert invitation["instrument"] in ("phq-9", "gad-7")
    assert invitation["opens"] == "2031-03-03T10:00:00Z"
    assert invitation["closes"] == "2031-03-10T10:00:00Z"
    assert invitation["messages_planned"] == 0 and invitation["last_sent_at"] is None


def test_get_an_unknown_enrolment_is_404(headers, client):
    response = client.get("/api/v1/enrolments/999999", headers=headers)
    assert response.status_code == 404 and response.mimetype == PROBLEM


def test_withdraw_cancels_what_was_not_sent(headers, client, make_protocol, db):
    created = client.post("/api/v1/enrolments", headers=headers, json=body(make_protocol()))
    url = created.headers["Location"] + "/withdraw"
    response = client.post(url, headers=headers, json={"reason": "moved away"})
    assert response.status_code == 200
    data = response.get_json()
    assert data["status"] == "withdrawn" and data["withdrawal_reason"] == "moved away"
    assert data["withdrawn_at"].endswith("Z")
    assert {i["status"] for i in data["invitations"]} == {"cancelled"}
    again = client.post(url, headers=headers)  # no body: allowed; changes nothing
    assert again.status_code == 200 and again.get_json()["withdrawn_at"] == data["withdrawn_at"]


def test_withdraw_refuses_a_bad_reason(headers, client, make_protocol, db):
    created = client.post("/api/v1/enrolments", headers=headers, json=body(make_protocol()))
    url = created.headers["Location"] + "/withdraw"
    response = client.post(url, headers=headers, json={"reason": 42})
    assert response.status_code == 422 and set(response.get_json()["errors"]) == {"reason"}
    assert db.session.get(Enrolment, created.get_json()["id"]).status == "active"


def test_audit_events_name_the_key(api_key, headers, client, make_protocol, db):
    created = client.post("/api/v1/enrolments", headers=headers, json=body(make_protocol()))
    client.get(created.headers["Location"], headers=headers)
    events = db.session.scalars(select(AuditEvent).where(
        AuditEvent.object_type == "enrolment").order_by(AuditEvent.id)).all()
    assert [(e.action, e.actor, e.user_id) for e in events] == [
        ("create", f"api:{api_key[0].prefix}", None),
        ("view", f"api:{api_key[0].prefix}", None),
    ]
    assert events[0].detail["source"] == "api"


# --- protocols -------------------------------------------------------------------------

def test_protocols_lists_the_active_ones_with_their_timepoints(headers, client,
                                                                make_protocol, db):
    active = make_protocol()
    retired = make_protocol()
    retired.active = False
    db.session.commit()
    response = client.get("/api/v1/protocols", headers=headers)
    assert response.status_code == 200
    protocols = response.get_json()["protocols"]
    assert [p["slug"] for p in protocols] == [active.slug]
    first = protocols[0]["timepoints"][0]
    assert first == {"label": "Baseline", "offset": "0", "instruments": ["phq-9", "gad-7"],
                     "window": {"opens": "0", "closes": "+7d"}, "reminders": ["+3d", "+6d"],
                     "channel": "patient"}
    assert [t["offset"] for t in protocols[0]["timepoints"]] == [
        "0", "+2w", "+4w", "+8w", "+12w"]


# --- docs/openapi.yaml -----------------------------------------------------------------

def _openapi_operations(project_root) -> set[tuple[str, str]]:  # type: ignore[no-untyped-def]
    """(METHOD, path) pairs in docs/openapi.yaml, read without a YAML library."""
    import re

    operations, path = set(), None
    lines = (project_root / "docs" / "openapi.yaml").read_text().splitlines()
    in_paths = False
    for line in lines:
        if re.match(r"^\S", line):
            in_paths = line.startswith("paths:")
        elif in_paths and (m := re.match(r"^  (/\S*):$", line)):
            path = m.group(1)
        elif in_paths and path and (m := re.match(r"^    (get|post|put|patch|delete):", line)):
            operations.add((m.group(1).upper(), "/api/v1" + path))
    return operations


def test_openapi_describes_exactly_the_api_routes(app, project_root):
    import re

    routes = {
        (method, re.sub(r"<(?:\w+:)?\w+>", "{id}", rule.rule))
        for rule in app.url_map.iter_rules() if rule.rule.startswith("/api/")
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}
    }
    assert routes == _openapi_operations(project_root)


def test_responses_match_the_openapi_schemas(headers, client, make_protocol, project_root):
    yaml = pytest.importorskip("yaml")
    jsonschema = pytest.importorskip("jsonschema")
    spec = yaml.safe_load((project_root / "docs" / "openapi.yaml").read_text())

    def validator(schema: str):  # type: ignore[no-untyped-def]
        return jsonschema.Draft202012Validator(
            {"$ref": f"#/components/schemas/{schema}", "components": spec["components"]},
            format_checker=jsonschema.FormatChecker(),
        )

    def check(response, schema: str) -> None:  # type: ignore[no-untyped-def]
        validator(schema).validate(response.get_json())

    protocol = make_protocol()
    for listed in client.get("/api/v1/protocols", headers=headers).get_json()["protocols"]:
        validator("Protocol").validate(listed)
    created = client.post("/api/v1/enrolments", headers=headers, json=body(protocol))
    check(created, "Enrolment")
    check(client.get(created.headers["Location"], headers=headers), "Enrolment")
    check(client.post(created.headers["Location"] + "/withdraw", headers=headers),
          "Enrolment")
    check(client.post("/api/v1/enrolments", headers=headers, json={"anchor": "x"}),
          "ValidationProblem")
    check(client.get("/api/v1/protocols"), "Problem")
    validator("EnrolmentRequest").validate(body(protocol))
