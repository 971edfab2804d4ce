"""The public "Tell us about your care" page: anonymous, translated, no JavaScript, safe."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from engage.feedback.models import FeedbackItem
from tests.helpers import text_of


def form_fields(response) -> dict[str, str]:
    html = response.get_data(as_text=True)
    fields = {}
    for name in ("form_token", "nonce"):
        match = re.search(rf'name="{name}" value="([^"]*)"', html)
        assert match, name
        fields[name] = match.group(1)
    return fields


def count(db) -> int:
    return db.session.scalar(select(func.count()).select_from(FeedbackItem)) or 0


@pytest.mark.parametrize("lang, heading", [("en", "Tell us about your care"),
                                           ("es", None), ("ar", None)])
def test_the_page_is_served_in_every_shipped_language(client, make_service, lang, heading):
    service = make_service(name="Riverside Clinic")
    r = client.get(f"/tell-us/{service.slug}?lang={lang}")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert f'<html lang="{lang}" dir="{"rtl" if lang == "ar" else "ltr"}"' in html
    assert "Riverside Clinic" in html
    if heading:
        assert heading in html
    else:
        assert "Tell us about your care" not in html  # translated
    assert "<script" not in html


def test_a_comment_is_taken_in_anonymously_and_thanked(client, make_service, db):
    service = make_service()
    page = client.get(f"/tell-us/{service.slug}?lang=es")
    r = client.post(f"/tell-us/{service.slug}?lang=es", data={
        **form_fields(page), "text": "Esperé tres horas y nadie me explicó nada.",
        "respondent": "family", "lang": "es"})
    assert r.status_code == 303
    item = db.session.scalar(select(FeedbackItem))
    assert (item.source, item.language, item.respondent) == ("web", "es", "family")
    assert item.patient_id is None and not item.has_contact
    thanks = client.get(r.headers["Location"])
    assert thanks.status_code == 200
    assert '<html lang="es"' in thanks.get_data(as_text=True)


def test_pressing_send_twice_takes_the_comment_once(client, make_service, db):
    service = make_service()
    data = {**form_fields(client.get(f"/tell-us/{service.slug}")),
            "text": "The car park is far too small."}
    first = client.post(f"/tell-us/{service.slug}", data=data)
    second = client.post(f"/tell-us/{service.slug}", data=data)
    assert first.status_code == second.status_code == 303
    assert first.headers["Location"] == second.headers["Location"]
    assert count(db) == 1


def test_mistakes_are_explained_and_everything_typed_is_kept(client, make_service, db):
    service = make_service()
    data = {**form_fields(client.get(f"/tell-us/{service.slug}")),
            "text": "Please call me back about my mum's discharge.",
            "name": "Ana", "email": "ana@example", "phone": ""}
    r = client.post(f"/tell-us/{service.slug}", data=data)
    assert r.status_code == 400
    html = r.get_data(as_text=True)
    assert "Please call me back about my mum&#39;s discharge." in html
    assert 'value="Ana"' in html and 'value="ana@example"' in html
    assert 'class="error-summary"' in html and 'aria-invalid="true"' in html
    assert count(db) == 0
    data["email"] = "ana@example.org"  # but the consent box is still not ticked
    r = client.post(f"/tell-us/{service.slug}", data=data)
    assert r.status_code == 400 and "Tick the box" in text_of(r)
    data["consent"] = "1"
    assert client.post(f"/tell-us/{service.slug}", data=data).status_code == 303
    item = db.session.scalar(select(FeedbackItem))
    assert item.has_contact and item.contact_email == "ana@example.org"


def test_an_empty_comment_is_refused(client, make_service, db):
    service = make_service()
    r = client.post(f"/tell-us/{service.slug}",
                    data={**form_fields(client.get(f"/tell-us/{service.slug}")), "text": "  "})
    assert r.status_code == 400 and "Please tell us about your care." in text_of(r)
    assert count(db) == 0


def test_a_page_left_open_for_days_keeps_the_comment_and_asks_to_send_again(
    app, client, make_service, db,
):
    from engage.core.security import timed_form_token

    service = make_service()
    with app.test_request_context():
        old = timed_form_token("tell-us:n-1", service.id, now=1_000_000_000)
    data = {"form_token": old, "nonce": "n-1", "text": "The physio was brilliant."}
    r = client.post(f"/tell-us/{service.slug}", data=data)
    assert r.status_code == 200
    assert "The physio was brilliant." in r.get_data(as_text=True)
    assert "press Send again" in text_of(r)
    assert count(db) == 0
    r = client.post(f"/tell-us/{service.slug}", data={**data, **form_fields(r)})
    assert r.status_code == 303 and count(db) == 1


def test_a_forged_or_missing_form_token_is_refused(client, make_service, db):
    service = make_service()
    assert client.post(f"/tell-us/{service.slug}", data={"text": "x"}).status_code == 400
    other = make_service()
    stolen = form_fields(client.get(f"/tell-us/{other.slug}"))
    r = client.post(f"/tell-us/{service.slug}", data={**stolen, "text": "x"})
    assert r.status_code == 400 and count(db) == 0


def test_robots_filling_the_hidden_field_leave_nothing(client, make_service, db):
    service = make_service()
    data = {**form_fields(client.get(f"/tell-us/{service.slug}")), "text": "Buy pills",
            "website": "http://spam.example"}
    assert client.post(f"/tell-us/{service.slug}", data=data).status_code == 303
    assert count(db) == 0


def test_an_urgent_comment_shows_where_to_get_help_and_alerts_clinicians(
    client, make_service, make_user, db,
):
    from engage.alerts.models import Alert

    service = make_service()
    make_user("clinician", services=[service])
    data = {**form_fields(client.get(f"/tell-us/{service.slug}")),
            "text": "I want to kill myself, nobody listens."}
    r = client.post(f"/tell-us/{service.slug}", data=data)
    thanks = client.get(r.headers["Location"])
    assert "If you need help now" in text_of(thanks)
    alert = db.session.scalar(select(Alert))
    assert alert.kind == "comment-self-harm" and alert.patient_id is None


def test_an_unknown_service_is_a_translated_404(client):
    r = client.get("/tell-us/no-such-clinic?lang=es")
    assert r.status_code == 404 and '<html lang="es"' in r.get_data(as_text=True)


def test_the_page_stays_tiny(client, make_service):
    service = make_service()
    html = client.get(f"/tell-us/{service.slug}").get_data()
    with client.get("/static/patient.css") as static:
        css = static.get_data()
    assert len(html) < 9_000, len(html)
    assert len(css) < 6_000, len(css)


def test_the_empty_form_may_be_kept_for_back_but_nothing_typed_is(client, make_service):
    service = make_service()
    page = client.get(f"/tell-us/{service.slug}")
    assert page.headers["Cache-Control"] == "private, no-cache"
    errors = client.post(f"/tell-us/{service.slug}", data={**form_fields(page), "text": "",
                                                           "name": "Ana"})
    assert errors.headers["Cache-Control"] == "no-store"


def test_a_comment_changed_after_back_is_a_new_comment(client, make_service, db):
    service = make_service()
    fields = form_fields(client.get(f"/tell-us/{service.slug}"))
    first = client.post(f"/tell-us/{service.slug}", data={**fields, "text": "Kind nurses."})
    again = client.post(f"/tell-us/{service.slug}", data={**fields, "text": "Kind nurses."})
    assert first.headers["Location"] == again.headers["Location"]
    # A form is sent once: the edited comment comes back, kept, on a new form to send.
    edited = client.post(f"/tell-us/{service.slug}",
                         data={**fields, "text": "Kind nurses, but a long wait."})
    assert edited.status_code == 409 and "already sent" in text_of(edited)
    assert "Kind nurses, but a long wait." in edited.get_data(as_text=True)
    assert count(db) == 1
    sent = client.post(f"/tell-us/{service.slug}",
                       data={**form_fields(edited), "text": "Kind nurses, but a long wait."})
    assert sent.status_code == 303
    assert sent.headers["Location"] != first.headers["Location"]
    assert sorted(db.session.scalars(select(FeedbackItem.text))) == sorted([
        "Kind nurses.", "Kind nurses, but a long wait."])
