"""Safety alerts: raised by PHQ-9 item 9, emailed over real SMTP until acknowledged."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from engage.alerts.models import Alert
from engage.alerts.services import notify_alerts, renotify_unacknowledged
from engage.audit.models import AuditEvent
from engage.core.db import run_after_commit, utcnow
from engage.survey.services import save_answers, start_response, submit
from tests.helpers import csrf_from, text_of

SAFE = {f"phq9-{n}": 1 for n in range(1, 10)} | {"phq9-9": 0}
RISK = SAFE | {"phq9-9": 1}


def submitted(make_invitation, values, **kw):
    invitation, _ = make_invitation("phq-9", **kw)
    response = start_response(invitation)
    save_answers(response, values)
    submit(response)
    return response


def test_item_9_above_zero_raises_an_alert_and_others_do_not(make_invitation, db):
    submitted(make_invitation, SAFE)
    assert db.session.scalar(select(func.count()).select_from(Alert)) == 0
    risky = submitted(make_invitation, RISK)
    alert = db.session.scalar(select(Alert))
    assert alert.kind == "self-harm" and alert.response_id == risky.id


def test_item_9_alert_fires_even_when_the_rest_is_unscoreable(make_invitation, db):
    response = submitted(make_invitation, {"phq9-9": 3})
    assert response.total is None
    assert db.session.scalar(select(Alert.kind)) == "self-harm"


def test_submitting_through_the_web_emails_the_service_clinicians_at_once(
    client, smtp, make_user, make_service, make_invitation, db
):
    service, other = make_service(), make_service()
    clinician = make_user("clinician", services=[service])
    make_user("clinician", services=[other])  # another service's clinician: not told
    make_user("staff", services=[service])     # not a clinician: not told
    invitation, token = make_invitation("phq-9", service=service)
    response = start_response(invitation)
    save_answers(response, RISK)
    db.session.commit()
    review = client.get(f"/s/{token}/review")
    from tests.helpers import form_token_from

    r = client.post(f"/s/{token}/review", data={"form_token": form_token_from(review)})
    assert r.status_code == 303
    assert smtp.messages == []  # the patient's page goes out first ...
    r.close()                   # ... and the email once the server has sent it
    assert len(smtp.messages) == 1
    msg = smtp.messages[0]
    assert msg["To"] == clinician.email
    body = msg.get_body(("plain",)).get_content()
    alert = db.session.scalar(select(Alert))
    assert f"http://engage.test/alerts/{alert.id}" in body
    # no clinical detail: no patient reference, score, band or questionnaire name
    for secret in (invitation.patient.ref, "PHQ", "self-harm", "Severe", str(response.total)):
        assert secret not in body and secret not in msg["Subject"]
    db.session.refresh(alert)
    assert alert.notify_count == 1 and alert.notify_error is None
    # the patient sees where to get urgent help
    assert "If you need help now" in text_of(client.get(f"/s/{token}/done"))


def test_alert_email_is_in_the_clinicians_language(
    smtp, make_user, make_service, make_invitation, db
):
    service = make_service()
    make_user("clinician", services=[service], language="es")
    submitted(make_invitation, RISK, service=service)
    db.session.commit()
    run_after_commit()
    assert len(smtp.messages) == 1
    # Spanish subject once the catalogue has it; never the English one left untranslated
    assert smtp.messages[0]["Subject"] != "Engage: a safety alert needs your review"


def test_a_service_without_clinicians_alerts_the_admins(
    smtp, make_user, make_service, make_invitation, db
):
    service = make_service()
    admin = make_user("admin")
    submitted(make_invitation, RISK, service=service)
    db.session.commit()
    run_after_commit()
    assert [m["To"] for m in smtp.messages] == [admin.email]


def test_unacknowledged_alert_is_emailed_again_until_acknowledged(
    app, smtp, make_user, make_service, make_invitation, db
):
    from engage.alerts.services import acknowledge

    service = make_service()
    clinician = make_user("clinician", services=[service])
    submitted(make_invitation, RISK, service=service)
    db.session.commit()
    run_after_commit()
    assert len(smtp.messages) == 1
    alert = db.session.scalar(select(Alert))
    later = alert.notified_at + timedelta(minutes=app.config["ALERT_RENOTIFY_MINUTES"] + 1)
    assert renotify_unacknowledged(now=alert.notified_at + timedelta(minutes=5)) == 0
    assert renotify_unacknowledged(now=later) == 1
    assert len(smtp.messages) == 2
    acknowledge(alert, clinician, "Called the patient; safe, seen tomorrow.")
    db.session.commit()
    assert renotify_unacknowledged(now=later + timedelta(days=1)) == 0
    assert len(smtp.messages) == 2


def test_smtp_failure_is_recorded_and_retried(
    app, make_user, make_service, make_invitation, db, smtp
):
    service = make_service()
    make_user("clinician", services=[service])
    submitted(make_invitation, RISK, service=service)
    db.session.commit()
    port = app.config["SMTP_PORT"]
    app.config["SMTP_PORT"] = 1  # nothing listens there
    try:
        run_after_commit()
    finally:
        app.config["SMTP_PORT"] = port
    alert = db.session.scalar(select(Alert))
    assert alert.notify_error
    assert smtp.messages == []
    retry_at = alert.notified_at + timedelta(minutes=app.config["ALERT_RENOTIFY_MINUTES"])
    assert renotify_unacknowledged(now=retry_at) == 1
    db.session.refresh(alert)
    assert alert.notify_error is None and len(smtp.messages) == 1


def test_clinician_acknowledges_and_who_and_when_are_recorded(
    client, auth, make_user, make_service, make_invitation, db
):
    service = make_service()
    clinician = make_user("clinician", services=[service])
    submitted(make_invitation, RISK, service=service)
    db.session.commit()
    alert = db.session.scalar(select(Alert))
    auth.login(clinician.email)
    assert "safety alert needs acknowledgement" in text_of(client.get("/services"))
    page = client.get(f"/alerts/{alert.id}")
    r = client.post(f"/alerts/{alert.id}/acknowledge",
                    data={"note": "Phoned; safety plan agreed.", "csrf_token": csrf_from(page)})
    assert r.status_code == 302
    db.session.refresh(alert)
    assert alert.acknowledged_by_id == clinician.id
    assert alert.acknowledged_at is not None
    assert alert.acknowledgement_note == "Phoned; safety plan agreed."
    assert "safety alert needs acknowledgement" not in text_of(client.get("/services"))
    assert db.session.scalar(select(AuditEvent).where(
        AuditEvent.action == "acknowledge", AuditEvent.object_id == alert.id)) is not None


def test_staff_who_are_not_clinicians_cannot_acknowledge(
    client, auth, make_user, make_service, make_invitation, db
):
    service = make_service()
    staff = make_user("staff", services=[service])
    submitted(make_invitation, RISK, service=service)
    db.session.commit()
    alert = db.session.scalar(select(Alert))
    auth.login(staff.email)
    page = client.get(f"/alerts/{alert.id}")
    assert page.status_code == 200
    assert "Acknowledge</button>" not in page.get_data(as_text=True)
    r = client.post(f"/alerts/{alert.id}/acknowledge", data={"csrf_token": csrf_from(page)})
    assert r.status_code == 403
    db.session.refresh(alert)
    assert alert.acknowledged_at is None


def test_second_acknowledgement_does_not_overwrite_the_first(
    make_user, make_service, make_invitation, db
):
    from engage.alerts.services import acknowledge

    service = make_service()
    first, second = (make_user("clinician", services=[service]) for _ in range(2))
    submitted(make_invitation, RISK, service=service)
    alert = db.session.scalar(select(Alert))
    assert acknowledge(alert, first, "mine") is True
    assert acknowledge(alert, second, "theirs") is False
    assert alert.acknowledged_by_id == first.id and alert.acknowledgement_note == "mine"


def test_notify_skips_acknowledged_alerts(smtp, make_user, make_service, make_invitation, db):
    from engage.alerts.services import acknowledge

    service = make_service()
    clinician = make_user("clinician", services=[service])
    submitted(make_invitation, RISK, service=service)
    alert = db.session.scalar(select(Alert))
    acknowledge(alert, clinician, None)
    db.session.commit()
    assert notify_alerts([alert.id], now=utcnow()) == 0
    assert smtp.messages == []


def test_a_hung_mail_server_costs_one_timeout_not_one_per_clinician(
    app, make_user, make_service, make_invitation, db
):
    import socket
    import time

    service = make_service()
    for _ in range(3):
        make_user("clinician", services=[service])
    submitted(make_invitation, RISK, service=service)
    db.session.commit()
    alert = db.session.scalar(select(Alert))
    hung = socket.socket()  # accepts connections and never says a word
    hung.bind(("127.0.0.1", 0))
    hung.listen(8)
    old = app.config["SMTP_HOST"], app.config["SMTP_PORT"], app.config["SMTP_TIMEOUT"]
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=hung.getsockname()[1], SMTP_TIMEOUT=1)
    try:
        started = time.monotonic()
        assert notify_alerts([alert.id]) == 0
        elapsed = time.monotonic() - started
    finally:
        app.config.update(SMTP_HOST=old[0], SMTP_PORT=old[1], SMTP_TIMEOUT=old[2])
        hung.close()
    assert elapsed < 2.5, elapsed
    db.session.refresh(alert)
    assert alert.notify_error.count("timed out") == 3
