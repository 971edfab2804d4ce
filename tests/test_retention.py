"""Retention periods applied by the job and `engage retention run`, and a person's rights:
`engage patients export` (everything held, with FHIR) and `engage patients erase`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from engage.alerts.models import Alert
from engage.audit.models import AuditEvent
from engage.audit.services import record
from engage.delivery.models import Message
from engage.feedback.models import FeedbackItem, Reply
from engage.survey.models import Answer, Invitation, InvitationToken, Response

NOW = datetime.now(UTC).replace(microsecond=0)
OLD = NOW - timedelta(days=400)
CONTACT_TEXT = "Ring me, Alice Hartley, on 07700 900123. The ward was too noisy at night."


@pytest.fixture
def periods(app: Any) -> Iterator[dict[str, int]]:
    """Retention periods for the test (restored afterwards)."""
    saved = app.config["RETENTION_DAYS"]
    app.config["RETENTION_DAYS"] = {"responses": 365, "comments": 365, "messages": 365,
                                    "audit": 2920}
    try:
        yield app.config["RETENTION_DAYS"]
    finally:
        app.config["RETENTION_DAYS"] = saved


@pytest.fixture
def answered(db: Any, make_invitation: Any) -> Any:
    """``answered(patient, service, instrument, values, at)``: a submitted response."""
    from engage.survey.services import save_answers, start_response, submit

    def make(patient: Any, service: Any, instrument: str, values: dict[str, Any],
             at: datetime = OLD, invitation: Any = None) -> Response:
        if invitation is None:
            invitation, _token = make_invitation(instrument, patient=patient, service=service,
                                                 now=at - timedelta(hours=1))
        response = start_response(invitation)
        response.started_at = at - timedelta(minutes=5)
        save_answers(response, values)
        submit(response, now=at)
        db.session.commit()
        return response

    return make


def _count(db: Any, model: Any, *where: Any) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def _retention_rows(db: Any) -> dict[str, AuditEvent]:
    rows = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "retention")
                              .order_by(AuditEvent.id))
    return {row.object_type: row for row in rows}


def _comment(db: Any, service: Any, patient: Any = None, *, at: datetime = OLD,
             status: str = "closed") -> FeedbackItem:
    from engage.feedback.services import Contact, intake

    item = intake(service=service, text=CONTACT_TEXT, source="staff", patient=patient,
                  contact=Contact(name="Alice Hartley", email="alice@example.org",
                                  phone="07700 900123", consent=True),
                  received_via="phone", received_at=at, notify=False)
    item.status = status
    db.session.add(Reply(item_id=item.id, channel="email", to_address="alice@example.org",
                         language="en", subject="Your comment", body="Dear Alice Hartley",
                         status="sent"))
    db.session.commit()
    return item


# --- retention -------------------------------------------------------------------------------

def test_old_responses_go_with_their_answers_and_young_ones_stay(db, periods, answered,
                                                                  make_patient, make_service):
    from engage.retention.services import run

    service = make_service()
    old = answered(make_patient(service=service), service, "gad-2",
                   {"gad2-1": "LA6569-3", "gad2-2": "LA6568-5"}, at=OLD)
    young = answered(make_patient(service=service), service, "gad-2",
                     {"gad2-1": "LA6569-3", "gad2-2": "LA6568-5"}, at=NOW - timedelta(days=30))
    old_id, young_id = old.id, young.id

    results = {r.kind: r.count for r in run(NOW, actor="cli")}

    assert results["responses"] == 1
    assert db.session.get(Response, old_id) is None
    assert _count(db, Answer, Answer.response_id == old_id) == 0
    assert db.session.get(Response, young_id) is not None
    assert _count(db, Answer, Answer.response_id == young_id) == 2
    # The invitation stays: response rates still count it as answered.
    assert db.session.scalar(select(Invitation.status).where(
        Invitation.id == young.invitation_id)) == "completed"


def test_a_response_with_an_open_alert_is_kept_until_it_is_acknowledged(
        db, periods, answered, make_patient, make_service):
    from engage.retention.services import run

    service = make_service()
    phq = {f"phq9-{n}": "LA6568-5" for n in range(1, 9)} | {"phq9-9": "LA6571-9"}
    response = answered(make_patient(service=service), service, "phq-9", phq, at=OLD)
    (alert,) = db.session.scalars(select(Alert).where(Alert.response_id == response.id))
    response_id = response.id

    run(NOW, actor="cli")
    assert db.session.get(Response, response_id) is not None

    alert.acknowledged_at = NOW
    db.session.commit()
    run(NOW, actor="cli")
    assert db.session.get(Response, response_id) is None
    assert _count(db, Alert, Alert.response_id == response_id) == 0


def test_responses_of_a_follow_up_still_running_are_kept(db, periods, answered, make_protocol,
                                                          enrol_patient):
    from engage.retention.services import run
    from engage.scheduling.services import withdraw

    protocol = make_protocol()
    enrolment = enrol_patient(protocol, NOW.strftime("%Y-%m-%dT%H:%M"))
    first = db.session.scalars(select(Invitation).where(
        Invitation.enrolment_id == enrolment.id, Invitation.instrument_id == "gad-7")
        .order_by(Invitation.due_at)).first()
    values = {f"gad7-{n}": "LA6568-5" for n in range(1, 8)}
    response = answered(enrolment.patient, protocol.service, "gad-7", values, at=OLD,
                        invitation=first)
    response_id = response.id

    run(NOW, actor="cli")
    assert db.session.get(Response, response_id) is not None  # baseline of a running plan

    withdraw(enrolment, "moved away")
    db.session.commit()
    run(NOW, actor="cli")
    assert db.session.get(Response, response_id) is None


def test_old_closed_comments_keep_their_redacted_text_and_lose_what_identifies(
        db, periods, make_patient, make_service):
    from engage.retention.services import run

    service = make_service()
    patient = make_patient(service=service)
    old = _comment(db, service, patient, at=OLD)
    still_open = _comment(db, service, patient, at=OLD, status="new")
    young = _comment(db, service, patient, at=NOW - timedelta(days=10))
    redacted = old.redacted_text
    assert "07700" not in redacted and "Alice" not in redacted

    assert {r.kind: r.count for r in run(NOW, actor="cli")}["comments"] == 1
    db.session.expire_all()

    assert old.text == redacted and old.redacted_text == redacted
    assert (old.contact_name, old.contact_email, old.contact_phone) == (None, None, None)
    assert old.patient_id is None and old.pii == []
    (reply,) = db.session.scalars(select(Reply).where(Reply.item_id == old.id))
    assert (reply.to_address, reply.body) == ("", "")
    for kept in (still_open, young):
        assert kept.text == CONTACT_TEXT and kept.contact_email == "alice@example.org"
    # Running again finds nothing more to do.
    assert {r.kind: r.count for r in run(NOW, actor="cli")}["comments"] == 0


def test_finished_outbox_messages_go_and_pending_ones_stay(db, periods, make_patient):
    from engage.retention.services import run

    patient = make_patient()

    def message(status: str, at: datetime) -> int:
        m = Message(patient_id=patient.id, kind="invitation", channel="email", status=status,
                    created_at=at, next_attempt_at=at,
                    sent_at=at if status == "sent" else None)
        db.session.add(m)
        db.session.flush()
        return m.id

    old_sent, old_failed = message("sent", OLD), message("failed", OLD)
    old_pending, young_sent = message("pending", OLD), message("sent", NOW)
    db.session.commit()

    assert {r.kind: r.count for r in run(NOW, actor="cli")}["messages"] == 2
    remaining = set(db.session.scalars(select(Message.id).where(Message.patient_id == patient.id)))
    assert remaining == {old_pending, young_sent}
    assert old_sent not in remaining and old_failed not in remaining


def test_old_audit_events_go_after_their_period_and_never_within_a_year(db, periods):
    from engage.retention.services import RetentionError, retention_days, run

    ancient = record("view", "thing", 1, actor="cli")
    ancient.at = NOW - timedelta(days=3000)
    recent = record("view", "thing", 2, actor="cli")
    recent.at = NOW - timedelta(days=400)
    db.session.commit()
    ancient_id, recent_id = ancient.id, recent.id

    assert {r.kind: r.count for r in run(NOW, actor="cli")}["audit"] == 1
    assert db.session.get(AuditEvent, ancient_id) is None
    assert db.session.get(AuditEvent, recent_id) is not None

    periods["audit"] = 30
    with pytest.raises(RetentionError, match="at least 365"):
        retention_days()


def test_each_run_is_audited_once_per_kind_with_its_counts(db, periods, make_patient):
    from engage.retention.services import run

    periods["responses"] = 0  # kept for ever: still recorded
    run(NOW, actor="cli")
    rows = _retention_rows(db)
    assert set(rows) == {"responses", "comments", "messages", "audit"}
    assert all(row.actor == "cli" and row.user_id is None for row in rows.values())
    assert rows["responses"].detail["days"] == 0
    assert rows["responses"].detail["cutoff"] is None
    assert rows["messages"].detail["days"] == 365
    assert rows["messages"].detail["count"] == 0 and rows["messages"].detail["dry_run"] is False


def test_a_dry_run_deletes_nothing_and_says_what_would_go(db, periods, runner, make_patient):
    patient = make_patient()
    db.session.add(Message(patient_id=patient.id, kind="invitation", channel="email",
                           status="sent", created_at=OLD, next_attempt_at=OLD, sent_at=OLD))
    db.session.commit()

    result = runner.invoke(args=["retention", "run", "--dry-run"])

    assert result.exit_code == 0, result.output
    assert "messages: 1 sent, failed or cancelled outbox messages would be deleted" in \
        result.output
    assert _count(db, Message, Message.patient_id == patient.id) == 1
    assert all(row.detail["dry_run"] for row in _retention_rows(db).values())


def test_the_command_deletes_and_reports(db, periods, runner, make_patient):
    patient = make_patient()
    db.session.add(Message(patient_id=patient.id, kind="invitation", channel="email",
                           status="sent", created_at=OLD, next_attempt_at=OLD, sent_at=OLD))
    db.session.commit()
    result = runner.invoke(args=["retention", "run"])
    assert result.exit_code == 0, result.output
    assert "messages: 1 sent, failed or cancelled outbox messages were deleted" in result.output
    assert _count(db, Message, Message.patient_id == patient.id) == 0


def test_the_job_runs_once_a_day_whichever_scheduler_comes_first(db, periods):
    from engage.jobs import JOBS
    from engage.retention.services import scheduled_run

    assert any(job.id == "retention.apply" for job in JOBS)
    assert scheduled_run(NOW) is not None
    assert {row.actor for row in _retention_rows(db).values()} == {"job"}
    assert scheduled_run(NOW + timedelta(hours=1)) is None
    assert scheduled_run(NOW + timedelta(hours=21)) is not None


def test_a_run_is_refused_while_another_holds_the_lease(db, periods):
    from engage.core.db import job_lease
    from engage.retention.services import LEASE, run_exclusive

    assert job_lease(LEASE, "other-host:1", 3600)
    assert run_exclusive(actor="cli") is None
    assert _retention_rows(db) == {}


# --- a person's rights -------------------------------------------------------------------------

@pytest.fixture
def person(db, answered, make_patient, make_service, make_invitation) -> dict[str, Any]:
    """One person known to two services under reference PAT-RIGHTS, with answers, a comment
    with contact details and a reply, an acknowledged alert, a message and an open link."""
    first, second = make_service(), make_service()
    one = make_patient("PAT-RIGHTS", service=first, email="pat@example.org", phone="07700900999")
    two = make_patient("PAT-RIGHTS", service=second, email="pat@example.org")
    bystander = make_patient("PAT-OTHER", service=first, email="other@example.org")
    fft = answered(one, first, "fft", {"fft-1": "poor",
                                       "fft-2": "Nurse Jones ignored me, call 07700900999"})
    phq = {f"phq9-{n}": "LA6569-3" for n in range(1, 9)} | {"phq9-9": "LA6571-9"}
    scored = answered(two, second, "phq-9", phq)
    for alert in db.session.scalars(select(Alert).where(Alert.patient_id == two.id)):
        alert.acknowledged_at = OLD
        alert.acknowledgement_note = "Phoned Pat at home, safe"
    comment = _comment(db, first, one)
    _invitation, token = make_invitation("gad-2", patient=one, service=first)
    db.session.add(Message(patient_id=one.id, kind="invitation", channel="email", status="sent",
                           created_at=OLD, next_attempt_at=OLD, sent_at=OLD))
    before = record("view", "patient", one.id, patient_id=one.id, actor="cli")
    db.session.commit()
    return {"records": (one, two), "bystander": bystander, "fft": fft, "scored": scored,
            "comment": comment, "token": token, "before": before}


def test_export_holds_everything_about_every_record_of_the_reference(
        db, runner, person, tmp_path):
    out = tmp_path / "sar.json"
    result = runner.invoke(args=["patients", "export", "PAT-RIGHTS", "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert out.stat().st_mode & 0o777 == 0o600
    text = out.read_text()
    document = json.loads(text)

    one, two = person["records"]
    records = {r["patient"]["id"]: r for r in document["records"]}
    assert set(records) == {one.id, two.id}
    first = records[one.id]
    assert first["patient"]["email"] == "pat@example.org"
    assert first["patient"]["phone"] == "07700900999"
    (fft,) = [r for r in first["responses"] if r["instrument"] == "fft"]
    assert {a["link_id"]: a["text"] for a in fft["answers"]}["fft-2"].startswith("Nurse Jones")
    assert fft["fhir"]["resourceType"] == "QuestionnaireResponse"
    assert fft["fhir"]["subject"] == {"reference": "Patient/PAT-RIGHTS"}
    assert fft["fhir"]["id"] == str(person["fft"].id)
    comments = {c["id"]: c for c in first["feedback"]}
    staff_comment = comments[person["comment"].id]
    assert staff_comment["text"] == CONTACT_TEXT
    assert staff_comment["contact"]["email"] == "alice@example.org"
    assert staff_comment["replies"][0]["body"] == "Dear Alice Hartley"
    assert any(c["text"].startswith("Nurse Jones") for c in comments.values())
    assert len(first["messages"]) == 1 and len(first["invitations"]) == 2
    second = records[two.id]
    assert second["responses"][0]["total"] == person["scored"].total
    assert second["alerts"][0]["acknowledgement_note"] == "Phoned Pat at home, safe"
    # Never the link itself, nor anything about the other patient.
    assert person["token"] not in text and "token" not in text
    assert "PAT-OTHER" not in text and "other@example.org" not in text

    exports = db.session.scalars(select(AuditEvent).where(
        AuditEvent.action == "export", AuditEvent.object_type == "patient"))
    assert {e.patient_id for e in exports} == {one.id, two.id}


def test_export_of_one_service_and_of_an_unknown_reference(db, runner, person):
    one, two = person["records"]
    result = runner.invoke(args=["patients", "export", "PAT-RIGHTS", "--service",
                                 two.service.slug])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert [r["patient"]["id"] for r in document["records"]] == [two.id]

    result = runner.invoke(args=["patients", "export", "NOBODY"])
    assert result.exit_code == 2
    assert "no patient record has the reference 'NOBODY'" in result.output


def test_erase_asks_first_and_a_no_changes_nothing(db, runner, person):
    result = runner.invoke(args=["patients", "erase", "PAT-RIGHTS"], input="n\n")
    assert result.exit_code == 1
    assert "This cannot be undone" in result.output
    one, _two = person["records"]
    db.session.expire_all()
    assert one.ref == "PAT-RIGHTS" and one.email == "pat@example.org"


def test_erase_removes_what_identifies_and_keeps_the_counts(db, runner, person):
    one, two = person["records"]
    responses_before = _count(db, Response, Response.patient_id.in_((one.id, two.id)))
    totals_before = sorted(db.session.scalars(select(Response.total).where(
        Response.patient_id.in_((one.id, two.id)))), key=str)
    audit_before = _count(db, AuditEvent, AuditEvent.patient_id == one.id)

    result = runner.invoke(args=["patients", "erase", "PAT-RIGHTS", "--yes"])

    assert result.exit_code == 0, result.output
    db.session.expire_all()
    for p in (one, two):
        assert p.ref == f"erased-{p.id}"
        assert (p.email, p.phone) == (None, None)
        assert p.opted_out_at is not None and p.opt_out_source == "erased"
    assert _count(db, Response, Response.patient_id.in_((one.id, two.id))) == responses_before
    assert sorted(db.session.scalars(select(Response.total).where(
        Response.patient_id.in_((one.id, two.id)))), key=str) == totals_before
    assert any(total for total in totals_before)
    fft = db.session.get(Response, person["fft"].id)
    assert fft.answer_map()["fft-1"] == "poor"
    assert all(a.value_text is None for a in fft.answers)
    comment = db.session.get(FeedbackItem, person["comment"].id)
    assert comment.text == comment.redacted_text and "Alice" not in comment.text
    assert comment.contact_email is None and comment.patient_id == one.id
    assert db.session.scalar(select(Reply.body).where(Reply.item_id == comment.id)) == ""
    survey_comments = db.session.scalars(select(FeedbackItem).where(
        FeedbackItem.response_id == fft.id)).all()
    assert survey_comments and all("07700900999" not in c.text for c in survey_comments)
    assert db.session.scalar(select(Alert.acknowledgement_note).where(
        Alert.patient_id == two.id)) is None
    assert _count(db, InvitationToken, InvitationToken.invitation_id.in_(
        select(Invitation.id).where(Invitation.patient_id == one.id))) == 0
    assert _count(db, Invitation, Invitation.patient_id == one.id,
                  Invitation.status.in_(("scheduled", "sent", "reminded"))) == 0
    assert _count(db, Message, Message.patient_id == one.id) == 1
    # The audit log is as it was, plus the erasure.
    assert db.session.get(AuditEvent, person["before"].id).patient_id == one.id
    assert _count(db, AuditEvent, AuditEvent.patient_id == one.id) > audit_before
    erasures = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "erase"))
    assert {e.patient_id for e in erasures} == {one.id, two.id}
    # The other patient is untouched, and the old reference finds nobody.
    assert person["bystander"].ref == "PAT-OTHER"
    assert person["bystander"].email == "other@example.org"
    assert runner.invoke(args=["patients", "export", "PAT-RIGHTS"]).exit_code == 2


def test_erase_is_refused_while_a_safety_alert_waits(db, runner, person):
    _one, two = person["records"]
    for alert in db.session.scalars(select(Alert).where(Alert.patient_id == two.id)):
        alert.acknowledged_at = None
    db.session.commit()
    result = runner.invoke(args=["patients", "erase", "PAT-RIGHTS", "--yes"])
    assert result.exit_code == 2
    assert "must acknowledge them before erasure" in result.output
    db.session.expire_all()
    assert two.ref == "PAT-RIGHTS"
