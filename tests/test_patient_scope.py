"""Patients belong to one service: every takeover path of issue 9, shown closed.

The setting is the security tester's: orthopaedics knows patient DEMO-0019 (email
victim@example.org) and has them on a protocol; a member of the mental-health service
only, or a key bound to it, tries to take the record over by its reference.
"""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from engage.audit.models import AuditEvent
from engage.delivery.models import Message
from engage.delivery.services import dispatch, unsubscribe_token
from engage.feedback.models import FeedbackItem
from engage.patients.models import Patient
from engage.scheduling.models import Enrolment
from engage.survey.models import Invitation
from tests.helpers import csrf_from, text_of

REF = "DEMO-0019"
VICTIM = "victim@example.org"
ATTACKER = "attacker@evil.test"
NOW = "2031-03-03T10:00"  # the orthopaedics anchor: its first questionnaires are due then
LATER = "2031-09-01T10:00"  # mental health's anchor: nothing of theirs is due at NOW


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


class Scene:
    def __init__(self, **kw: Any) -> None:
        self.__dict__.update(kw)


@pytest.fixture
def scene(make_service, make_user, make_protocol, enrol_patient, db) -> Scene:  # type: ignore[no-untyped-def]
    ortho, mental = make_service("orthopaedics"), make_service("mental-health")
    hip = make_protocol("hip-followup", service=ortho)
    depression = make_protocol("depression-followup", service=mental)
    enrolment = enrol_patient(hip, NOW, patient_ref=REF, email=VICTIM, language="en")
    return Scene(
        ortho=ortho, mental=mental, hip=hip, depression=depression, enrolment=enrolment,
        victim=enrolment.patient,
        ortho_staff=make_user("staff", services=[ortho]),
        mental_staff=make_user("staff", services=[mental]),
    )


def records(db: Any) -> dict[str, Patient]:
    """Every record of REF, by its service's slug, as the database has them now."""
    db.session.expire_all()
    rows = db.session.scalars(select(Patient).where(Patient.ref == REF)).all()
    return {p.service.slug: p for p in rows}


def assert_victim_untouched(db: Any, scene: Scene) -> None:
    victim = records(db)["orthopaedics"]
    assert victim.id == scene.victim.id
    assert (victim.email, victim.phone, victim.language, victim.opted_out_at) == (
        VICTIM, None, "en", None)


def assert_own_record(db: Any, service_slug: str, **fields: Any) -> Patient:
    mine = records(db)[service_slug]
    for name, value in fields.items():
        assert getattr(mine, name) == value
    return mine


def only_victim_is_mailed(smtp: Any, db: Any, scene: Scene) -> None:
    """The dispatch that used to email the orthopaedics link to the attacker: now the one
    message due goes to the orthopaedics patient's own address, for their record."""
    report = dispatch(at(NOW))
    assert report.sent == 1
    assert [m["To"] for m in smtp.messages] == [VICTIM]
    assert [m.patient_id for m in db.session.scalars(select(Message))] == [scene.victim.id]


def login_as(app: Any, email: str) -> Any:
    """A client of its own, logged in as ``email`` (each user in their own browser)."""
    from tests.conftest import AuthActions

    client = app.test_client()
    assert AuthActions(client).login(email).status_code == 302
    return client


# --- the ways in -----------------------------------------------------------------------

def test_enrol_form_of_another_service_makes_its_own_record(client, auth, scene, smtp, db):
    auth.login(scene.mental_staff.email)
    page = client.get(f"/protocols/{scene.depression.slug}")
    r = client.post(f"/protocols/{scene.depression.slug}/enrol", data={
        "csrf_token": csrf_from(page), "patient_ref": REF, "anchor": LATER,
        "tz": "Europe/London", "email": ATTACKER, "phone": "", "language": "ar"},
        follow_redirects=True)
    assert f"{REF} is enrolled" in text_of(r)
    assert VICTIM not in r.get_data(as_text=True)
    assert_victim_untouched(db, scene)
    mine = assert_own_record(db, "mental-health", email=ATTACKER, language="ar")
    enrolment = db.session.scalar(select(Enrolment).where(
        Enrolment.protocol_id == scene.depression.id))
    assert enrolment.patient_id == mine.id != scene.victim.id
    only_victim_is_mailed(smtp, db, scene)


def test_invite_form_of_another_service_makes_its_own_record(client, auth, scene, db):
    auth.login(scene.mental_staff.email)
    page = client.get(f"/services/{scene.mental.slug}/invite")
    r = client.post(f"/services/{scene.mental.slug}/invite", data={
        "patient_ref": REF, "instrument": "gad-2", "language": "es",
        "csrf_token": csrf_from(page)})
    assert re.search(r'value="http://engage\.test/s/[^"]+"', r.get_data(as_text=True))
    assert_victim_untouched(db, scene)
    mine = assert_own_record(db, "mental-health", language="es", email=None)
    invitation = db.session.scalar(select(Invitation).where(
        Invitation.service_id == scene.mental.id))
    assert invitation.patient_id == mine.id
    # Inviting through the other service's page is refused as if it did not exist.
    page = client.get(f"/services/{scene.ortho.slug}/invite")
    assert page.status_code == 404


def test_csv_import_of_another_service_makes_its_own_record(client, auth, scene, smtp, db):
    auth.login(scene.mental_staff.email)
    content = (f"patient_ref,protocol,anchor,tz,email,phone,language\n"
               f"{REF},{scene.depression.slug},{LATER},Europe/London,{ATTACKER},,es\n").encode()
    page = client.get(f"/protocols/{scene.depression.slug}/import")
    preview = client.post(f"/protocols/{scene.depression.slug}/import", data={
        "csrf_token": csrf_from(page), "file": (io.BytesIO(content), "patients.csv")},
        content_type="multipart/form-data")
    assert VICTIM not in preview.get_data(as_text=True)
    packed = re.search(r'name="content" type="hidden" value="([^"]+)"',
                       preview.get_data(as_text=True)).group(1)
    r = client.post(f"/protocols/{scene.depression.slug}/import/confirm", data={
        "csrf_token": csrf_from(preview), "content": packed}, follow_redirects=True)
    assert "1 patient enrolled from the file." in text_of(r)
    assert_victim_untouched(db, scene)
    assert_own_record(db, "mental-health", email=ATTACKER, language="es")
    only_victim_is_mailed(smtp, db, scene)


def test_api_enrolment_by_another_services_key_makes_its_own_record(client, scene, smtp, db):
    from engage.api.services import create_api_key

    _row, key = create_api_key("Mental health EHR", scope="write", services=[scene.mental])
    db.session.commit()
    headers = {"Authorization": f"Bearer {key}"}
    body = {"patient_ref": REF, "anchor": LATER, "email": ATTACKER, "language": "es"}
    # On the orthopaedics protocol: refused, nothing written.
    refused = client.post("/api/v1/enrolments", headers=headers,
                          json={**body, "protocol": scene.hip.slug})
    assert refused.status_code == 403 and refused.mimetype == "application/problem+json"
    assert VICTIM not in refused.get_data(as_text=True)
    assert set(records(db)) == {"orthopaedics"}
    # The orthopaedics enrolment is not there for this key.
    assert client.get(f"/api/v1/enrolments/{scene.enrolment.id}",
                      headers=headers).status_code == 404
    assert client.post(f"/api/v1/enrolments/{scene.enrolment.id}/withdraw",
                       headers=headers).status_code == 404
    # On its own protocol: its own record.
    created = client.post("/api/v1/enrolments", headers=headers,
                          json={**body, "protocol": scene.depression.slug})
    assert created.status_code == 201
    assert_victim_untouched(db, scene)
    assert_own_record(db, "mental-health", email=ATTACKER, language="es")
    assert db.session.get(Enrolment, scene.enrolment.id).status == "active"
    only_victim_is_mailed(smtp, db, scene)


def test_staff_comment_for_a_patient_uses_the_chosen_services_record(client, auth, scene, db):
    auth.login(scene.mental_staff.email)
    page = client.get("/feedback/new")
    r = client.post("/feedback/new", data={
        "csrf_token": csrf_from(page), "service": str(scene.mental.id), "patient_ref": REF,
        "text": "The waiting room was calm.", "language": "en", "respondent": "patient",
        "received_via": "phone", "received_on": ""})
    assert r.status_code == 302, text_of(r)
    item = db.session.scalar(select(FeedbackItem).order_by(FeedbackItem.id.desc()))
    assert item.service_id == scene.mental.id
    assert item.patient_id == records(db)["mental-health"].id != scene.victim.id
    assert_victim_untouched(db, scene)


def test_cli_enrol_and_invite_use_the_services_own_record(runner, scene, db):
    result = runner.invoke(args=["enroll", REF, scene.depression.slug, "--anchor", LATER,
                                 "--email", ATTACKER])
    assert result.exit_code == 0, result.output
    result = runner.invoke(args=["invite", REF, "phq-9", "--service", scene.mental.slug,
                                 "--language", "es"])
    assert result.exit_code == 0, result.output
    assert "existing" in result.output  # the mental-health record the enrolment made
    assert_victim_untouched(db, scene)
    assert_own_record(db, "mental-health", email=ATTACKER)


# --- the patient's page and what changes a patient ------------------------------------

def test_patient_page_of_another_services_patient_is_404(app, client, auth, scene, make_user,
                                                         db):
    auth.login(scene.mental_staff.email)
    assert client.get(f"/patients/{scene.victim.id}").status_code == 404
    # Even once mental health has a record of the same reference.
    page = client.get(f"/protocols/{scene.depression.slug}")
    client.post(f"/protocols/{scene.depression.slug}/enrol", data={
        "csrf_token": csrf_from(page), "patient_ref": REF, "anchor": LATER,
        "tz": "Europe/London", "email": "", "phone": "", "language": ""})
    mine = records(db)["mental-health"]
    assert client.get(f"/patients/{scene.victim.id}").status_code == 404
    own = client.get(f"/patients/{mine.id}")
    assert own.status_code == 200 and VICTIM not in own.get_data(as_text=True)
    assert f"Record of {scene.mental.name}" in text_of(own)
    ortho = login_as(app, scene.ortho_staff.email)
    assert ortho.get(f"/patients/{scene.victim.id}").status_code == 200
    assert ortho.get(f"/patients/{mine.id}").status_code == 404
    admin = login_as(app, make_user("admin").email)
    assert admin.get(f"/patients/{mine.id}").status_code == 200
    assert admin.get(f"/patients/{scene.victim.id}").status_code == 200


def test_staff_opt_out_and_withdraw_of_another_services_patient_are_404(
    client, auth, scene, smtp, db
):
    auth.login(scene.mental_staff.email)
    token = csrf_from(client.get(f"/protocols/{scene.depression.slug}"))
    assert client.post(f"/patients/{scene.victim.id}/opt-out",
                       data={"csrf_token": token}).status_code == 404
    assert client.post(f"/patients/{scene.victim.id}/opt-in",
                       data={"csrf_token": token}).status_code == 404
    assert client.post(f"/enrolments/{scene.enrolment.id}/withdraw",
                       data={"csrf_token": token}).status_code == 404
    assert_victim_untouched(db, scene)
    assert db.session.get(Enrolment, scene.enrolment.id).status == "active"
    only_victim_is_mailed(smtp, db, scene)


def test_staff_opt_out_stops_only_their_services_record(client, auth, scene, smtp, db):
    auth.login(scene.mental_staff.email)
    page = client.get(f"/protocols/{scene.depression.slug}")
    client.post(f"/protocols/{scene.depression.slug}/enrol", data={
        "csrf_token": csrf_from(page), "patient_ref": REF, "anchor": NOW,
        "tz": "Europe/London", "email": "patient@example.org", "phone": "", "language": ""})
    mine = records(db)["mental-health"]
    patient_page = client.get(f"/patients/{mine.id}")
    r = client.post(f"/patients/{mine.id}/opt-out",
                    data={"csrf_token": csrf_from(patient_page)})
    assert r.status_code == 302
    assert records(db)["mental-health"].opted_out_at is not None
    assert_victim_untouched(db, scene)
    only_victim_is_mailed(smtp, db, scene)  # orthopaedics still reaches its patient


def test_the_patients_own_opt_out_stops_every_services_record(client, scene, db):
    from engage.patients.services import get_or_create_patient

    mine, _created = get_or_create_patient(scene.mental, REF, email="patient@example.org")
    db.session.commit()
    r = client.post(f"/u/{unsubscribe_token(mine.id)}")
    assert r.status_code == 200
    both = records(db)
    assert both["mental-health"].opted_out_at is not None
    assert both["orthopaedics"].opted_out_at is not None
    assert both["orthopaedics"].opt_out_source == "link"
    events = db.session.scalars(select(AuditEvent).where(
        AuditEvent.action == "opt-out")).all()
    assert {(e.patient_id, e.actor) for e in events} == {
        (mine.id, "patient-link"), (scene.victim.id, "patient-link")}


# --- the contact-change audit ----------------------------------------------------------

def test_changing_a_patients_contact_details_is_audited_by_field_name(
    client, auth, scene, db
):
    auth.login(scene.ortho_staff.email)
    page = client.get(f"/protocols/{scene.hip.slug}")
    client.post(f"/protocols/{scene.hip.slug}/enrol", data={
        "csrf_token": csrf_from(page), "patient_ref": REF, "anchor": NOW,
        "tz": "Europe/London", "email": "new@example.org", "phone": "+447700900123",
        "language": "en"})
    victim = records(db)["orthopaedics"]
    assert (victim.email, victim.phone) == ("new@example.org", "+447700900123")
    (event,) = db.session.scalars(select(AuditEvent).where(
        AuditEvent.action == "update", AuditEvent.object_type == "patient")).all()
    assert event.object_id == event.patient_id == victim.id
    assert event.user_id == scene.ortho_staff.id
    assert event.detail == {"fields": ["email", "phone"]}
    assert "new@example.org" not in str(event.detail) and "+44" not in str(event.detail)


def test_enrolling_again_with_the_same_details_writes_no_change_event(scene, enrol_patient,
                                                                       db):
    enrol_patient(scene.hip, NOW, patient_ref=REF, email=VICTIM, language="en")
    assert db.session.scalar(select(AuditEvent).where(
        AuditEvent.action == "update", AuditEvent.object_type == "patient")) is None


# --- migration 0007: existing patients are split per service ---------------------------

OLD_ROWS = """
INSERT INTO service (id, slug, name, created_at) VALUES
  (1, 'ortho', 'Orthopaedics', '2027-01-01 00:00:00'),
  (2, 'mental', 'Mental health', '2027-01-01 00:00:00');
INSERT INTO patient (id, ref, language, email, timezone, created_at, channel) VALUES
  (1, 'MRN1', 'es', 'pat@example.org', 'Europe/London', '2027-01-01 00:00:00', 'email'),
  (2, 'MRN2', 'en', NULL, 'Europe/London', '2027-01-01 00:00:00', 'email');
INSERT INTO protocol (id, slug, name, description, service_id, anchor_label, active,
                      created_at, updated_at) VALUES
  (1, 'mood', 'Mood', '', 2, '', :yes, '2027-01-01 00:00:00', '2027-01-01 00:00:00');
INSERT INTO enrolment (id, patient_id, protocol_id, anchor_at, timezone, status, source,
                       created_at) VALUES
  (1, 1, 1, '2027-02-01 00:00:00', 'Europe/London', 'active', 'web', '2027-02-01 00:00:00');
INSERT INTO invitation (id, patient_id, service_id, instrument_id, language, status,
                        opens_at, closes_at, created_at, channel, messages_planned,
                        enrolment_id) VALUES
  (1, 1, 1, 'fft', 'es', 'sent', '2027-01-05 00:00:00', '2027-02-05 00:00:00',
   '2027-01-05 00:00:00', 'patient', 1, NULL),
  (2, 1, 2, 'phq-9', 'es', 'completed', '2027-02-01 00:00:00', '2027-03-01 00:00:00',
   '2027-02-01 00:00:00', 'patient', 1, 1);
INSERT INTO response (id, invitation_id, patient_id, service_id, instrument_id,
                      instrument_version, language, respondent, started_at, complete,
                      missing) VALUES
  (1, 2, 1, 2, 'phq-9', '1', 'es', 'self', '2027-02-02 00:00:00', :yes, '[]');
INSERT INTO message (id, patient_id, kind, channel, status, created_at, next_attempt_at,
                     attempts) VALUES
  (1, 1, 'invitation', 'email', 'sent', '2027-01-05 00:00:00', '2027-01-05 00:00:00', 1),
  (2, 1, 'invitation', 'email', 'sent', '2027-02-01 00:00:00', '2027-02-01 00:00:00', 1);
INSERT INTO message_invitation (message_id, invitation_id) VALUES (1, 1), (2, 2);
INSERT INTO feedback_item (id, service_id, source, patient_id, text, language, redacted_text,
                           pii, urgency, safety_matches, status, received_at, created_at,
                           status_changed_at, due_at, contact_consent, screen_level) VALUES
  (1, 2, 'staff', 1, 'Kind', 'en', 'Kind', '[]', 'normal', '[]', 'new',
   '2027-02-03 00:00:00', '2027-02-03 00:00:00', '2027-02-03 00:00:00',
   '2027-02-10 00:00:00', :no, 'none');
INSERT INTO alert (id, response_id, patient_id, service_id, kind, created_at,
                   notify_count) VALUES
  (1, 1, 1, 2, 'phq9-item9', '2027-02-02 00:00:00', 0);
INSERT INTO audit_event (id, at, actor, action, object_type, object_id, patient_id,
                         detail) VALUES
  (1, '2027-02-01 00:00:00', 'web', 'view', 'patient', 1, 1, '{}');
INSERT INTO api_key (id, name, prefix, key_hash, created_at) VALUES
  (1, 'Old EHR', 'eng_old1', 'hash', '2027-01-01 00:00:00');
"""


@pytest.fixture
def scratch_database_url(tmp_path):  # type: ignore[no-untyped-def]
    """An empty database of the suite's kind: a SQLite file, or a PostgreSQL database of
    its own beside the suite's (created and dropped here)."""
    import os

    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    url = os.environ.get("ENGAGE_TEST_DATABASE_URL", "")
    if not url.startswith("postgresql"):
        yield f"sqlite:///{tmp_path}/old.db"
        return
    base = make_url(url)
    name = f"{base.database}_m0007"
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
        admin.dispose()


def test_migration_splits_a_patient_shared_by_two_services(scratch_database_url):
    from flask_migrate import downgrade, upgrade
    from sqlalchemy import text

    import config
    from engage import create_app
    from engage.extensions import db as sa

    class Cfg(config.TestConfig):
        SQLALCHEMY_DATABASE_URI = scratch_database_url

    app = create_app(Cfg)
    with app.app_context():
        upgrade(revision="0006")
        with sa.engine.begin() as conn:
            for statement in OLD_ROWS.split(";"):
                if statement.strip():
                    conn.execute(text(statement), {"yes": True, "no": False})
            if conn.dialect.name == "postgresql":  # ids were given: move the sequences on
                for table in ("service", "patient", "api_key"):
                    conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', "
                                      f"'id'), (SELECT max(id) FROM {table}))"))
        upgrade()
        with sa.engine.connect() as conn:
            def one(sql: str) -> Any:
                return conn.execute(text(sql)).scalar()

            patients = conn.execute(text(
                "SELECT id, service_id, ref, language, email FROM patient ORDER BY id")).all()
            copy = patients[2][0]
            # The first service to use MRN1 keeps the record; the other gets a copy.
            assert [tuple(p) for p in patients] == [
                (1, 1, "MRN1", "es", "pat@example.org"), (2, 1, "MRN2", "en", None),
                (copy, 2, "MRN1", "es", "pat@example.org")]
            assert one("SELECT patient_id FROM invitation WHERE id = 1") == 1
            assert one("SELECT patient_id FROM message WHERE id = 1") == 1
            for table in ("invitation", "message"):
                assert one(f"SELECT patient_id FROM {table} WHERE id = 2") == copy
            for table in ("enrolment", "response", "feedback_item", "alert"):
                assert one(f"SELECT patient_id FROM {table}") == copy
            assert one("SELECT patient_id FROM audit_event") == 1  # as it was written
            assert one("SELECT count(*) FROM message_invitation") == 2
            # The key made before scopes keeps what it could do.
            assert one("SELECT scope FROM api_key") == "write"
            assert one("SELECT count(*) FROM api_key_service") == 2
        downgrade(revision="0006")
        with sa.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM patient")).scalar() == 2
            assert conn.execute(text(
                "SELECT count(*) FROM invitation WHERE patient_id = 1")).scalar() == 2
        sa.engine.dispose()


def test_two_requests_creating_the_same_record_at_once_share_it(db, make_service, monkeypatch):
    """The second of two simultaneous enrolments of a new reference gets the first's record.

    Simulated by hiding the first record from the second call's lookup, as a concurrent
    transaction's uncommitted insert would be hidden: the unique reference then refuses
    the second insert, which must fall back to the record rather than fail the request.
    """
    from engage.patients import services

    service = make_service()
    first, created = services.get_or_create_patient(service, "RACE-1", email="a@example.test")
    assert created
    real_find = services.find_patient
    calls = []

    def find_once_blind(svc, ref):
        calls.append(ref)
        return None if len(calls) == 1 else real_find(svc, ref)

    monkeypatch.setattr(services, "find_patient", find_once_blind)
    second, created = services.get_or_create_patient(service, "RACE-1", phone="+447700900123")
    assert (second.id, created) == (first.id, False)
    assert second.phone == "+447700900123"
    assert db.session.scalar(db.select(db.func.count()).select_from(type(first))) == 1
