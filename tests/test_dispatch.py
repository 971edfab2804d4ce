"""Dispatch: windows, reminders, quiet hours, opt-out, grouping, retries, exactly once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from engage.delivery.models import Message
from engage.delivery.services import dispatch
from engage.survey.models import Invitation
from engage.survey.services import find_invitation, save_answers, start_response, submit

ANCHOR = "2027-03-01T10:00"  # Europe/London, GMT: 10:00 UTC


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def links(msg) -> list[str]:  # type: ignore[no-untyped-def]
    import re

    body = msg.get_body(("plain",)).get_content()
    return re.findall(r"http://engage\.test/s/[A-Za-z0-9_-]+", body)


def test_nothing_is_sent_before_the_window_opens(smtp, make_protocol, enrol_patient, db):
    protocol = make_protocol()
    enrol_patient(protocol, ANCHOR)
    report = dispatch(at("2027-03-01T09:59"))
    assert report.sent == 0 and smtp.messages == []


def test_due_questionnaires_go_out_in_one_message_listing_them(
    smtp, make_protocol, enrol_patient, db
):
    protocol = make_protocol()
    enrolment = enrol_patient(protocol, ANCHOR)
    report = dispatch(at("2027-03-01T10:05"))
    assert report.sent == 1
    assert len(smtp.messages) == 1
    msg = smtp.messages[0]
    assert msg["To"] == "pat@example.org"
    urls = links(msg)
    assert len(urls) == 2  # PHQ-9 and GAD-7 in one message
    opened = {find_invitation(u.rsplit("/", 1)[1]).instrument_id for u in urls}
    assert opened == {"phq-9", "gad-7"}
    assert msg["List-Unsubscribe"].strip().startswith("<http://engage.test/u/")
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg.get_body(("html",)) is not None
    statuses = set(db.session.scalars(select(Invitation.status).where(
        Invitation.enrolment_id == enrolment.id, Invitation.due_at == at("2027-03-01T10:00"))))
    assert statuses == {"sent"}


def test_the_link_in_the_email_opens_the_questionnaire(smtp, make_protocol, enrol_patient,
                                                       db, client):
    from engage.core.db import utcnow

    started = utcnow() - timedelta(hours=1)
    enrolment = enrol_patient(make_protocol(), started.strftime("%Y-%m-%dT%H:%M+00:00"))
    enrolment.patient.quiet_hours = "00:00-00:00"  # real time: this must not wait for morning
    db.session.commit()
    dispatch()
    assert len(smtp.messages) == 1
    for url in links(smtp.messages[0]):
        assert client.get(url.removeprefix("http://engage.test")).status_code == 200


def test_a_second_pass_sends_nothing_more(smtp, make_protocol, enrol_patient, db):
    enrol_patient(make_protocol(), ANCHOR)
    dispatch(at("2027-03-01T10:05"))
    dispatch(at("2027-03-01T10:06"))
    assert len(smtp.messages) == 1


def test_reminders_follow_the_offsets_and_stop_once_complete(
    smtp, make_protocol, enrol_patient, db
):
    protocol = make_protocol()
    enrolment = enrol_patient(protocol, ANCHOR)
    dispatch(at("2027-03-01T10:05"))
    dispatch(at("2027-03-04T09:00"))  # before +3d
    assert len(smtp.messages) == 1
    dispatch(at("2027-03-04T10:01"))  # +3d: first reminder
    assert len(smtp.messages) == 2
    assert "Reminder" in smtp.messages[1]["Subject"]
    # the patient answers both questionnaires
    for invitation in db.session.scalars(select(Invitation).where(
            Invitation.enrolment_id == enrolment.id, Invitation.status == "reminded")):
        response = start_response(invitation)
        values = {i.link_id: 0 for i in __import__("surveys").get(
            invitation.instrument_id).items if i.type == "choice" and i.required}
        save_answers(response, values)
        submit(response)
    db.session.commit()
    dispatch(at("2027-03-07T10:01"))  # +6d: no reminder after completion
    assert len(smtp.messages) == 2


def test_reminder_only_for_what_is_still_unanswered(smtp, make_protocol, enrol_patient, db):
    enrolment = enrol_patient(make_protocol(), ANCHOR)
    dispatch(at("2027-03-01T10:05"))
    phq = db.session.scalar(select(Invitation).where(
        Invitation.enrolment_id == enrolment.id, Invitation.instrument_id == "phq-9",
        Invitation.status == "sent"))
    response = start_response(phq)
    save_answers(response, {f"phq9-{n}": 0 for n in range(1, 10)})
    submit(response)
    db.session.commit()
    dispatch(at("2027-03-04T10:01"))
    assert len(smtp.messages) == 2
    assert len(links(smtp.messages[1])) == 1


def test_quiet_hours_defer_to_the_next_morning_in_the_patients_zone(
    smtp, make_protocol, enrol_patient, db
):
    from engage.scheduling.services import TimepointSpec

    protocol = make_protocol(timepoints=[TimepointSpec("Evening", "0", ["phq-2"], "0", "+3d")])
    enrol_patient(protocol, "2027-03-01T22:30", tz="America/New_York")  # 03:30 UTC next day
    report = dispatch(at("2027-03-02T03:31"))  # 22:31 in New York: quiet
    assert report.sent == 0 and smtp.messages == []
    dispatch(at("2027-03-02T12:59"))  # 07:59 in New York
    assert smtp.messages == []
    dispatch(at("2027-03-02T13:00"))  # 08:00 in New York
    assert len(smtp.messages) == 1


def test_nothing_is_sent_after_the_window_closes_and_it_expires(
    smtp, make_protocol, enrol_patient, db
):
    enrolment = enrol_patient(make_protocol(), ANCHOR)
    report = dispatch(at("2027-03-08T10:00"))  # back after a week of downtime
    assert report.expired == 2
    baseline = db.session.scalars(select(Invitation.status).where(
        Invitation.enrolment_id == enrolment.id, Invitation.due_at == at("2027-03-01T10:00")))
    assert set(baseline) == {"expired"}
    assert smtp.messages == []


def test_after_downtime_what_is_still_open_goes_out(smtp, make_protocol, enrol_patient, db):
    enrol_patient(make_protocol(), ANCHOR)
    dispatch(at("2027-03-05T10:00"))  # 4 days late, window still open
    assert len(smtp.messages) == 1


def test_opt_out_link_stops_everything_and_is_recorded(
    smtp, make_protocol, enrol_patient, db, client
):
    from engage.audit.models import AuditEvent

    enrolment = enrol_patient(make_protocol(), ANCHOR)
    dispatch(at("2027-03-01T10:05"))
    url = smtp.messages[0]["List-Unsubscribe"].strip().strip("<>").removeprefix("http://engage.test")
    page = client.get(url)
    assert page.status_code == 200 and "Stop all messages" in page.get_data(as_text=True)
    # a mail client's one-click POST (RFC 8058), without any form token
    done = client.post(url, data={"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200
    patient = enrolment.patient
    db.session.refresh(patient)
    assert patient.opted_out_at is not None and patient.opt_out_source == "email-header"
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "opt-out")) is not None
    for day in ("2027-03-04T10:01", "2027-03-15T10:01", "2027-05-01T10:01"):
        dispatch(at(day))
    assert len(smtp.messages) == 1


def test_a_forged_unsubscribe_link_is_refused(client, db):
    assert client.get("/u/12.forged-tag").status_code == 404
    assert client.post("/u/12.forged-tag").status_code == 404


def test_withdrawal_cancels_what_has_not_been_sent(smtp, make_protocol, enrol_patient, db):
    from engage.scheduling.services import withdraw

    enrolment = enrol_patient(make_protocol(), ANCHOR)
    dispatch(at("2027-03-01T10:05"))
    withdraw(enrolment, "moved away", now=at("2027-03-02T10:00"))
    db.session.commit()
    statuses = dict(db.session.execute(
        select(Invitation.status, func.count()).where(Invitation.enrolment_id == enrolment.id)
        .group_by(Invitation.status)).all())
    assert statuses == {"sent": 2, "cancelled": 8}
    dispatch(at("2027-03-04T10:01"))  # no reminder either
    dispatch(at("2027-03-15T10:01"))
    assert len(smtp.messages) == 1


def test_editing_a_protocol_replans_unsent_invitations_only(
    smtp, make_protocol, enrol_patient, db
):
    from engage.scheduling.services import TimepointSpec, save_protocol

    protocol = make_protocol(timepoints=[
        TimepointSpec("Baseline", "0", ["phq-9"], "0", "+7d"),
        TimepointSpec("2 weeks", "+2w", ["phq-9"], "0", "+7d"),
    ])
    enrolment = enrol_patient(protocol, ANCHOR)
    dispatch(at("2027-03-01T10:05"))
    save_protocol(protocol.slug, protocol.name, protocol.service, [
        TimepointSpec("Baseline", "+1d", ["phq-9"], "0", "+7d"),
        TimepointSpec("3 weeks", "+3w", ["phq-9", "gad-7"], "0", "+7d"),
    ], protocol=protocol, now=at("2027-03-02T00:00"))
    db.session.commit()
    rows = db.session.execute(select(Invitation.instrument_id, Invitation.due_at,
                                     Invitation.status)
                              .where(Invitation.enrolment_id == enrolment.id)
                              .order_by(Invitation.due_at, Invitation.instrument_id)).all()
    assert ("phq-9", at("2027-03-01T10:00"), "sent") in rows       # history kept
    assert ("phq-9", at("2027-03-22T10:00"), "scheduled") in rows  # moved to +3w
    assert ("gad-7", at("2027-03-22T10:00"), "scheduled") in rows  # added


def test_transient_failures_retry_with_backoff_then_show_as_failed(
    app, make_protocol, enrol_patient, db
):
    from engage.delivery.channels import TransientError

    class Down:
        calls = 0

        def send(self, message):  # type: ignore[no-untyped-def]
            Down.calls += 1
            raise TransientError("connection refused")

    app.extensions["engage.email_backend"] = Down()
    try:
        enrolment = enrol_patient(make_protocol(), ANCHOR)
        now = at("2027-03-01T10:05")
        dispatch(now)
        message = db.session.scalar(select(Message))
        assert message.status == "pending" and message.attempts == 1
        first_retry = message.next_attempt_at
        assert first_retry - now == timedelta(seconds=app.config["DELIVERY_RETRY_SECONDS"])
        dispatch(now + timedelta(seconds=1))  # too early: not retried
        assert Down.calls == 1
        moment = now
        for _ in range(app.config["DELIVERY_MAX_ATTEMPTS"] - 1):
            db.session.refresh(message)
            moment = message.next_attempt_at
            dispatch(moment)
        db.session.refresh(message)
        assert message.status == "failed"
        assert Down.calls == app.config["DELIVERY_MAX_ATTEMPTS"]
        assert "connection refused" in message.last_error
        failed = db.session.scalars(select(Invitation.status).where(
            Invitation.enrolment_id == enrolment.id, Invitation.due_at == at(
                "2027-03-01T10:00")))
        assert set(failed) == {"failed"}
    finally:
        app.extensions.pop("engage.email_backend")


def test_a_claim_whose_lease_lapsed_is_taken_over(app, smtp, make_protocol, enrol_patient, db):
    from engage.delivery.services import claim_batch, plan_messages, send_due

    enrol_patient(make_protocol(), ANCHOR)
    now = at("2027-03-01T10:05")
    plan_messages(now)
    lease = timedelta(seconds=app.config["DELIVERY_LEASE_SECONDS"])
    # A dispatcher claims the message and dies before sending it.
    assert len(claim_batch(now, "dead-worker", 10, lease)) == 1
    send_due(now + timedelta(seconds=10))  # within the lease: left alone
    assert smtp.messages == []
    send_due(now + lease + timedelta(seconds=1))  # lease lapsed: retried
    assert len(smtp.messages) == 1


def test_claiming_twice_gives_each_message_to_one_claimer(make_protocol, enrol_patient, db):
    from engage.delivery.services import claim_batch, plan_messages

    protocol = make_protocol()
    for _ in range(5):
        enrol_patient(protocol, ANCHOR)
    now = at("2027-03-01T10:05")
    assert plan_messages(now) == 5
    first = claim_batch(now, "a", 3, timedelta(minutes=5))
    second = claim_batch(now, "b", 10, timedelta(minutes=5))
    assert len(first) == 3 and len(second) == 2
    assert not set(first) & set(second)


@pytest.mark.parametrize("language, expected", [("es", "Recordatorio"), ("ar", "تذكير")])
def test_messages_are_in_the_patients_language(
    smtp, make_protocol, enrol_patient, db, language, expected
):
    enrol_patient(make_protocol(), ANCHOR, language=language)
    dispatch(at("2027-03-01T10:05"))
    dispatch(at("2027-03-04T10:05"))
    assert len(smtp.messages) == 2
    assert expected in smtp.messages[1]["Subject"]
    assert smtp.messages[1]["Content-Language"] == language


def test_each_claim_counts_its_lease_from_when_it_is_made(
    app, smtp, make_protocol, enrol_patient, db, monkeypatch
):
    """A pass that outlasts a lease must not make claims that are already lapsed."""
    import engage.delivery.services as delivery

    for _ in range(3):
        enrol_patient(make_protocol(), ANCHOR)
    now = at("2027-03-01T10:05")
    delivery.plan_messages(now)
    leases = []
    real_claim = delivery.claim_batch

    def spy(claimed_at, worker, batch, lease):  # type: ignore[no-untyped-def]
        ids = real_claim(claimed_at, worker, batch, lease)
        leases.extend(db.session.scalars(select(Message.lease_until)
                                         .where(Message.id.in_(ids))))
        return ids

    ticks = iter(range(0, 100_000, 1000))  # every look at the clock: 1,000 s later
    monkeypatch.setattr(delivery, "elapsed_clock", lambda: float(next(ticks)))
    monkeypatch.setattr(delivery, "claim_batch", spy)
    monkeypatch.setitem(app.config, "DELIVERY_BATCH", 1)
    monkeypatch.setitem(app.config, "DELIVERY_LEASE_SECONDS", 5000)
    delivery.send_due(now)
    assert len(smtp.messages) == 3
    assert leases == sorted(leases) and leases[-1] > now + timedelta(seconds=5000 + 2000)


def test_no_transaction_stays_open_while_a_message_is_sent(
    app, committed_db, make_protocol_committed
):
    """On SQLite an open transaction holds the only write lock: a slow mail server must not
    keep other writers (web requests) waiting while a message is handed over."""
    from sqlalchemy import create_engine, text

    from engage.core.db import configure_engine_events
    from engage.delivery.services import dispatch

    make_protocol_committed()
    other = create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
    configure_engine_events(other)
    writes = []

    class Slow:
        def send(self, message):  # type: ignore[no-untyped-def]
            with other.connect() as conn:  # another process writing meanwhile
                if conn.dialect.name == "sqlite":
                    conn.exec_driver_sql("PRAGMA busy_timeout=500")
                conn.execute(text("UPDATE service SET name = name"))
                conn.commit()
            writes.append(1)

    app.extensions["engage.email_backend"] = Slow()
    try:
        report = dispatch(at("2027-03-01T10:05"))
    finally:
        app.extensions.pop("engage.email_backend")
        other.dispose()
    assert report.sent == 1 and writes == [1]
