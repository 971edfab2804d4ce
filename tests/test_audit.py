"""The audit log: the admins' viewer and its export, rows that nothing may change, and the
client address behind trusted proxies."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from engage.audit.models import AuditEvent
from tests.helpers import text_of


def _event(db: Any, **kw: Any) -> AuditEvent:
    values: dict[str, Any] = {"actor": "user", "action": "view", "object_type": "thing",
                              "detail": {}, **kw}
    event = AuditEvent(**values)
    db.session.add(event)
    db.session.flush()
    return event


def _audit_rows(db: Any, object_type: str, action: str) -> list[AuditEvent]:
    return list(db.session.scalars(
        select(AuditEvent).where(AuditEvent.object_type == object_type,
                                 AuditEvent.action == action).order_by(AuditEvent.id)))


@pytest.fixture
def admin(make_user: Any, auth: Any) -> Any:
    user = make_user("admin")
    auth.login(user.email)
    return user


@pytest.mark.parametrize("role", ["staff", "clinician", "safeguarding", "safety_officer",
                                  "council"])
def test_only_admins_may_read_or_export_the_audit_log(client, auth, make_user, role):
    user = make_user(role)
    auth.login(user.email)
    assert client.get("/audit").status_code == 403
    assert client.get("/audit/export.csv").status_code == 403


def test_visitors_are_sent_to_log_in(client):
    response = client.get("/audit")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_admin_navigation_links_to_the_audit_log(client, admin):
    assert 'href="/audit"' in client.get("/audit").get_data(as_text=True)


def test_filter_by_patient_reference_shows_every_record_with_that_reference(
        client, db, admin, make_patient, make_service):
    first = make_patient("REF-SHARED", service=make_service())
    second = make_patient("REF-SHARED", service=make_service())
    other = make_patient("REF-OTHER", service=make_service())
    _event(db, object_type="alpha", object_id=1, patient_id=first.id)
    _event(db, object_type="bravo", object_id=2, patient_id=second.id)
    _event(db, object_type="charlie", object_id=3, patient_id=other.id)
    db.session.commit()

    page = text_of(client.get("/audit?patient=REF-SHARED"))
    assert "alpha #1" in page and "bravo #2" in page and "charlie" not in page

    page = text_of(client.get(f"/audit?patient_id={second.id}"))
    assert "bravo #2" in page and "alpha" not in page


def test_filter_by_user_email_or_actor_action_object_and_address(client, db, admin, make_user):
    nurse = make_user("staff")
    _event(db, user_id=nurse.id, object_type="delta", object_id=7, ip="192.0.2.7")
    _event(db, user_id=admin.id, action="update", object_type="delta", object_id=8,
           ip="192.0.2.8")
    _event(db, actor="cli", action="erase", object_type="patient", object_id=9)
    db.session.commit()

    page = text_of(client.get(f"/audit?who={nurse.email.upper()}"))
    assert "delta #7" in page and "delta #8" not in page
    page = text_of(client.get("/audit?who=cli"))
    assert "patient #9" in page and "delta" not in page
    page = text_of(client.get("/audit?action=update&object_type=delta"))
    assert "delta #8" in page and "delta #7" not in page
    page = text_of(client.get("/audit?object_type=delta&object_id=7"))
    assert "delta #7" in page and "delta #8" not in page
    page = text_of(client.get("/audit?ip=192.0.2.8"))
    assert "delta #8" in page and "delta #7" not in page


def test_filter_by_dates_includes_the_whole_last_day(client, db, admin):
    _event(db, object_type="early", at=datetime(2027, 1, 1, 12, tzinfo=UTC))
    _event(db, object_type="middle", at=datetime(2027, 1, 20, 23, 59, tzinfo=UTC))
    _event(db, object_type="late", at=datetime(2027, 2, 1, 12, tzinfo=UTC))
    db.session.commit()
    page = text_of(client.get("/audit?from=2027-01-15&to=2027-01-20"))
    assert "middle" in page and "early" not in page and "late" not in page


def test_a_value_that_cannot_be_read_is_explained_and_kept(client, db, admin):
    response = client.get("/audit?ip=not-an-address&from=2027-13-01&object_id=12x")
    assert response.status_code == 400
    page = text_of(response)
    assert "Enter an address like 192.0.2.10" in page
    assert "Enter a date like 2027-03-01." in page
    assert "An object number is digits only" in page
    html = response.get_data(as_text=True)
    assert 'value="not-an-address"' in html and 'value="12x"' in html
    # Nothing was shown, so nothing was recorded as seen.
    assert _audit_rows(db, "audit_event", "view") == []


def test_huge_numbers_and_dates_out_of_range_are_refused_not_a_server_error(client, admin):
    for query in ("object_id=99999999999999999999", "patient_id=4294967296",
                  "from=0001-01-01", "to=9999-12-31", "before=99999999999999999999"):
        assert client.get(f"/audit?{query}").status_code in (200, 400), query


def test_pages_go_from_newest_to_oldest(client, db, admin):
    start = datetime(2027, 3, 1, tzinfo=UTC)
    for n in range(60):
        _event(db, object_type="paged", object_id=n, at=start + timedelta(minutes=n))
    db.session.commit()
    first = client.get("/audit?object_type=paged").get_data(as_text=True)
    assert "paged #59" in first and "paged #10" in first and "paged #9<" not in first
    older = first.split('href="')[-1]  # the last link on the page: "Older"
    link = [part.split('"')[0] for part in first.split('href="')
            if "before=" in part.split('"')[0]]
    assert link, older
    second = text_of(client.get(link[0].replace("&amp;", "&")))
    assert "paged #9" in second and "paged #0" in second and "paged #10" not in second


def test_each_page_view_is_audited_with_its_filter(client, db, admin):
    client.get("/audit?action=export&who=cli")
    (row,) = _audit_rows(db, "audit_event", "view")
    assert row.user_id == admin.id
    assert row.detail["filters"] == {"action": "export", "who": "cli"}


def test_export_has_the_filtered_rows_formulas_defused_and_is_audited(client, db, admin):
    _event(db, actor="=HYPERLINK(\"http://evil\")", object_type="echo", object_id=1,
           ip="192.0.2.1", detail={"note": "x"})
    _event(db, object_type="echo", object_id=2)
    _event(db, object_type="foxtrot", object_id=3)
    db.session.commit()

    response = client.get("/audit/export.csv?object_type=echo")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [r["object_id"] for r in rows] == ["2", "1"]  # newest first
    assert rows[1]["actor"] == "'=HYPERLINK(\"http://evil\")"
    assert rows[1]["ip"] == "192.0.2.1" and rows[1]["detail"] == '{"note": "x"}'

    (export,) = _audit_rows(db, "audit_event", "export")
    assert export.user_id == admin.id
    assert export.detail["filters"] == {"object_type": "echo"}
    assert export.detail["count"] == 2


def test_deleting_a_user_or_patient_leaves_their_audit_rows_as_they_were(
        db, make_user, make_patient):
    from engage.accounts.models import User
    from engage.patients.models import Patient

    user = make_user("staff")
    patient = make_patient()
    event = _event(db, user_id=user.id, patient_id=patient.id)
    db.session.commit()
    user_id, patient_id, event_id = user.id, patient.id, event.id
    db.session.execute(text("DELETE FROM patient WHERE id = :id"), {"id": patient_id})
    db.session.delete(db.session.get(User, user_id))
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(Patient, patient_id) is None
    kept = db.session.get(AuditEvent, event_id)
    assert (kept.user_id, kept.patient_id) == (user_id, patient_id)


def test_the_database_refuses_to_change_an_audit_row(db):
    event = _event(db, object_type="golf")
    db.session.commit()
    with pytest.raises(DBAPIError, match="append-only"), db.session.begin_nested():
        db.session.execute(text("UPDATE audit_event SET action = 'nothing' WHERE id = :id"),
                           {"id": event.id})
    db.session.expire_all()
    assert db.session.get(AuditEvent, event.id).action == "view"


def test_postgresql_refuses_to_delete_an_audit_row_except_old_ones_by_retention(db):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite protects against UPDATE only (docs/security.md)")
    now = datetime.now(UTC)
    young = _event(db, object_type="hotel", at=now - timedelta(days=400))
    old = _event(db, object_type="hotel", at=now - timedelta(days=3000))
    db.session.commit()
    young_id, old_id = young.id, old.id
    with pytest.raises(DBAPIError, match="append-only"), db.session.begin_nested():
        db.session.execute(text("DELETE FROM audit_event WHERE id = :id"), {"id": old.id})
    # A cut-off younger than a year is refused, whatever it says.
    with pytest.raises(DBAPIError, match="append-only"), db.session.begin_nested():
        db.session.execute(text("SELECT set_config('engage.audit_retention_before', :c, true)"),
                           {"c": now.isoformat()})
        db.session.execute(text("DELETE FROM audit_event WHERE id = :id"), {"id": young.id})
    with db.session.begin_nested():
        db.session.execute(text("SELECT set_config('engage.audit_retention_before', :c, true)"),
                           {"c": (now - timedelta(days=2920)).isoformat()})
        with pytest.raises(DBAPIError, match="append-only"), db.session.begin_nested():
            db.session.execute(text("DELETE FROM audit_event WHERE id = :id"),
                               {"id": young.id})
        db.session.execute(text("DELETE FROM audit_event WHERE id = :id"), {"id": old.id})
    db.session.expire_all()
    assert db.session.get(AuditEvent, young_id) is not None
    assert db.session.get(AuditEvent, old_id) is None


# --- the client's address --------------------------------------------------------------------

def test_without_trusted_proxies_x_forwarded_for_is_ignored(client, db, auth, make_user):
    client.environ_base["REMOTE_ADDR"] = "198.51.100.1"
    auth.login(make_user("admin").email)
    # Still logged in: the header is gone before Flask-Login's session protection reads it.
    assert client.get("/audit", headers={"X-Forwarded-For": "203.0.113.66"}).status_code == 200
    (row,) = _audit_rows(db, "audit_event", "view")
    assert row.ip == "198.51.100.1"


def _app_behind(proxies: int) -> Any:
    from flask import request

    import config
    from engage import create_app
    from engage.core.permissions import public

    class Cfg(config.TestConfig):
        SQLALCHEMY_DATABASE_URI = "sqlite://"
        TRUSTED_PROXIES = proxies

    app = create_app(Cfg)

    @app.route("/_whoami")
    @public
    def whoami() -> str:
        forwarded = request.headers.get("X-Forwarded-For", "-")
        return f"{request.remote_addr} {request.scheme} {forwarded}"

    return app


def test_behind_trusted_proxies_the_client_address_comes_from_x_forwarded_for():
    app = _app_behind(2)
    # The client wrote a value of its own; each of the two proxies appended what it saw.
    headers = {"X-Forwarded-For": "10.6.6.6, 203.0.113.9, 10.0.0.2",
               "X-Forwarded-Proto": "https, https"}
    answer = app.test_client().get("/_whoami", headers=headers,
                                   environ_base={"REMOTE_ADDR": "10.0.0.1"})
    assert answer.get_data(as_text=True) == "203.0.113.9 https -"


def test_with_no_trusted_proxy_the_headers_change_nothing():
    app = _app_behind(0)
    answer = app.test_client().get(
        "/_whoami", headers={"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"},
        environ_base={"REMOTE_ADDR": "10.0.0.1"})
    assert answer.get_data(as_text=True) == "10.0.0.1 http -"
