"""Replies to people who left contact details: through the outbox, in their language, once."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from engage.delivery.channels import NullBackend
from engage.delivery.models import Message
from engage.delivery.services import dispatch, opt_out
from engage.feedback.models import FeedbackItem, Reply
from engage.feedback.replies import fill
from engage.feedback.services import Contact, FeedbackError, send_reply
from tests.helpers import csrf_from, text_of


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def contact_item(make_item):
    def make(language="en", **contact):
        contact.setdefault("email", "ana@example.org")
        return make_item("Please call me about the discharge letter.", language=language,
                         contact=Contact(name="Ana", consent=True, **contact))
    return make


def test_a_reply_goes_through_the_outbox_by_email_once(
    client, auth, make_user, contact_item, smtp, db,
):
    item = contact_item(language="es")
    user = make_user("staff", services=[item.service])
    auth.login(user.email)
    page = client.get(f"/feedback/items/{item.id}")
    r = client.post(f"/feedback/items/{item.id}/reply", data={
        "csrf_token": csrf_from(page), "channel": "email", "subject": "",
        "body": "Gracias, la llamaremos mañana.", "action": "send"})
    assert r.status_code == 302
    message = db.session.scalar(select(Message))
    assert (message.kind, message.channel, message.status) == ("reply", "email", "pending")
    db.session.expire_all()
    assert db.session.get(FeedbackItem, item.id).status == "responded"
    report = dispatch(at("2027-03-02T12:00"))
    assert report.sent == 1 and len(smtp.messages) == 1
    email = smtp.messages[0]
    assert email["To"] == "ana@example.org" and email["Content-Language"] == "es"
    assert "Gracias, la llamaremos mañana." in email.get_body(("plain",)).get_content()
    assert dispatch(at("2027-03-02T12:05")).sent == 0
    reply = db.session.scalar(select(Reply))
    assert reply.status == "sent" and reply.sent_at is not None
    assert "Gracias" in text_of(client.get(f"/feedback/items/{item.id}"))


def test_no_reply_without_consent(make_item, make_user):
    item = make_item("Bad experience.", contact=Contact(email="x@example.org", consent=False))
    with pytest.raises(FeedbackError):
        send_reply(item, make_user("staff"), channel="email", body="Hello")


def test_a_reply_waits_for_the_end_of_quiet_hours(contact_item, make_user, smtp, db):
    item = contact_item()
    send_reply(item, make_user("staff"), channel="email", body="Thank you",
               now=at("2027-03-02T22:30"))
    db.session.commit()
    assert dispatch(at("2027-03-02T22:31")).sent == 0
    assert dispatch(at("2027-03-03T08:01")).sent == 1


def test_a_reply_by_text_message(app, contact_item, make_user, db):
    backend = NullBackend()
    app.extensions["engage.sms_backend"] = backend
    try:
        item = contact_item(email=None, phone="+447700900123")
        send_reply(item, make_user("staff"), channel="sms", body="Thanks, we are on it.")
        db.session.commit()
        dispatch(at("2027-03-02T12:00"))
    finally:
        app.extensions.pop("engage.sms_backend")
    assert [(s.to, s.body) for s in backend.sent] == [("+447700900123", "Thanks, we are on it.")]


def test_an_opt_out_from_questionnaires_does_not_stop_a_requested_reply(
    contact_item, make_user, make_patient, smtp, db,
):
    item = contact_item()
    patient = make_patient(email="ana@example.org", service=item.service)
    item.patient_id = patient.id
    send_reply(item, make_user("staff"), channel="email", body="Thank you")
    opt_out(patient, "staff")
    db.session.commit()
    assert dispatch(at("2027-03-02T12:00")).sent == 1


def test_templates_fill_in_the_persons_language(make_service, db):
    english = fill("builtin:thanks", "en", "Riverside")
    spanish = fill("builtin:thanks", "es", "Riverside")
    assert english and spanish and english != spanish
    assert "Riverside" in spanish[1]
    assert fill("builtin:nope", "en", "x") is None


def test_using_a_template_fills_the_form_without_sending(
    client, auth, make_user, contact_item, db,
):
    item = contact_item()
    user = make_user("staff", services=[item.service])
    auth.login(user.email)
    page = client.get(f"/feedback/items/{item.id}")
    r = client.post(f"/feedback/items/{item.id}/reply", data={
        "csrf_token": csrf_from(page), "template": "builtin:thanks", "channel": "email",
        "body": "", "action": "load"})
    assert r.status_code == 200
    assert "Thank you for taking the time" in r.get_data(as_text=True)
    assert db.session.scalar(select(Reply)) is None


def test_an_empty_reply_is_refused_and_nothing_is_queued(
    client, auth, make_user, contact_item, db,
):
    item = contact_item()
    auth.login(make_user("staff", services=[item.service]).email)
    page = client.get(f"/feedback/items/{item.id}")
    r = client.post(f"/feedback/items/{item.id}/reply", data={
        "csrf_token": csrf_from(page), "channel": "email", "body": " ", "action": "send"})
    assert r.status_code == 400 and "Write the reply." in text_of(r)
    assert db.session.scalar(select(Message)) is None
