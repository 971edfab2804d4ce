"""Crisis contacts: which a patient sees after a safety alert, the thank-you pages that show
them, and the admin's pages that set them."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from engage.alerts.crisis import REGIONS, sms_uri, tel_uri
from engage.alerts.models import CrisisContact
from engage.alerts.services import (
    CrisisContactError,
    crisis_contacts_for,
    save_crisis_contact,
)
from engage.audit.models import AuditEvent
from engage.survey.services import save_answers, start_response
from tests.helpers import csrf_from, form_token_from, text_of

RISK = {f"phq9-{n}": 1 for n in range(1, 10)} | {"phq9-9": 2}


def contact(service: Any = None, language: str | None = None, name: str = "Line",
            **kw: Any) -> CrisisContact:
    kw.setdefault("phone", "0113 496 0000")
    kw.setdefault("text", None)
    kw.setdefault("hours", "24 hours")
    return save_crisis_contact(None, service_id=service.id if service else None,
                               language=language, name=name, **kw)


def names(crisis: Any) -> list[str]:
    return [line.name for line in crisis.lines]


@pytest.fixture
def region(app: Flask) -> Iterator[Any]:
    """``region("US")`` sets ENGAGE_CRISIS_REGION for the test."""
    old = app.config["CRISIS_REGION"]

    def set_region(code: str) -> None:
        app.config["CRISIS_REGION"] = code

    yield set_region
    app.config["CRISIS_REGION"] = old


# --- which contacts a patient sees -------------------------------------------------------------

def test_a_service_shows_its_contacts_in_the_page_language_and_for_every_language(
        make_service, db):
    service, other = make_service(), make_service()
    contact(service, "es", "Línea de crisis", position=2)
    contact(service, None, "Every language line", position=1)
    contact(service, "ar", "Arabic line")
    contact(other, "es", "Another service's line")
    contact(None, "es", "Organisation line")
    crisis = crisis_contacts_for(service, "es")
    assert names(crisis) == ["Every language line", "Línea de crisis"]
    assert crisis.source == "service"
    assert names(crisis_contacts_for(service, "en")) == ["Every language line"]


def test_a_service_without_contacts_for_the_language_shows_the_organisation_wide_list(
        make_service, db):
    service = make_service()
    contact(service, "en", "Service line")
    contact(None, "es", "Organisation Spanish line", position=1)
    contact(None, None, "Organisation line", position=2)
    contact(None, "ar", "Organisation Arabic line")
    crisis = crisis_contacts_for(service, "es")
    assert names(crisis) == ["Organisation Spanish line", "Organisation line"]
    assert crisis.source == "organisation"
    assert names(crisis_contacts_for(service, "en")) == ["Service line"]
    assert names(crisis_contacts_for(make_service(), "ar")) == [
        "Organisation line", "Organisation Arabic line"]


@pytest.mark.parametrize(("code", "emergency", "lines"), [
    ("GB", "999", ["NHS 111", "Samaritans", "Shout"]),
    ("ES", "112", ["Línea 024", "Teléfono de la Esperanza"]),
    ("US", "911", ["988 Suicide & Crisis Lifeline", "Crisis Text Line"]),
])
def test_with_nothing_configured_the_region_defaults_are_shown(
        make_service, db, region, code, emergency, lines):
    region(code)
    service = make_service()
    contact(make_service(), None, "Another service's line")
    crisis = crisis_contacts_for(service, "en")
    assert crisis.source == "region" and crisis.region == code
    assert crisis.emergency == emergency and crisis.emergency_tel == f"tel:{emergency}"
    assert names(crisis) == lines
    assert all(line.tel or line.sms for line in crisis.lines)
    assert all(line.hours for line in crisis.lines)


def test_built_in_words_follow_the_page_language(make_service, db):
    english = crisis_contacts_for(make_service(), "en")
    spanish = crisis_contacts_for(make_service(), "es")
    assert english.lines[0].hours == "24 hours, every day"
    assert [line.phone for line in english.lines] == [line.phone for line in spanish.lines]
    shout = english.lines[2]
    assert shout.text == "Text SHOUT to 85258" and shout.sms == "sms:85258"


def test_the_emergency_number_is_there_even_when_only_a_helpline_is_configured(
        make_service, db, region):
    service = make_service()
    contact(service, None, "Only a text line", phone=None, text="Text HELLO to 85258")
    for code, expected in (("GB", "999"), ("ES", "112"), ("US", "911")):
        region(code)
        crisis = crisis_contacts_for(service, "en")
        assert crisis.emergency == expected and names(crisis) == ["Only a text line"]


def test_every_region_has_an_emergency_number_and_config_knows_them_all():
    import config

    assert sorted(REGIONS) == sorted(config.CRISIS_REGIONS)
    assert all(region.emergency.isdigit() for region in REGIONS.values())


def test_an_unknown_region_stops_the_app_from_starting():
    import config
    from engage import create_app

    class Cfg(config.TestConfig):
        CRISIS_REGION = "FR"

    with pytest.raises(config.ConfigError, match="ENGAGE_CRISIS_REGION"):
        create_app(Cfg)


@pytest.mark.parametrize(("line", "link"), [
    ("Text SHOUT to 85258", "sms:85258"),
    ("Call or text 988", "sms:988"),
    ("Text 07700 900123, 24/7", "sms:07700900123"),
    ("Text HOME to 741741 or 686868", None),
    ("Use the chat on our website", None),
])
def test_a_text_line_naming_one_number_becomes_an_sms_link(line, link):
    assert sms_uri(line) == link


def test_phone_links_dial_only_digits():
    assert tel_uri("116 123") == "tel:116123"
    assert tel_uri("+44 (0)113 496-0000") == "tel:+4401134960000"


# --- saving ------------------------------------------------------------------------------------

def test_a_contact_needs_a_phone_or_a_text_line(make_service, db):
    with pytest.raises(CrisisContactError) as caught:
        contact(make_service(), phone=None, text="  ")
    assert set(caught.value.errors) == {"phone"}
    assert db.session.scalar(select(func.count()).select_from(CrisisContact)) == 0


@pytest.mark.parametrize(("field", "values"), [
    ("phone", {"phone": "call us"}),
    ("phone", {"phone": "12"}),
    ("language", {"language": "fr"}),
    ("name", {"name": " "}),
    ("hours", {"hours": ""}),
    ("position", {"position": "first"}),
])
def test_what_is_wrong_is_named_by_field(make_service, db, field, values):
    with pytest.raises(CrisisContactError) as caught:
        contact(make_service(), **values)
    assert field in caught.value.errors


def test_a_new_contact_goes_last_in_its_list(make_service, db):
    service = make_service()
    first, second = contact(service, name="First"), contact(service, name="Second")
    assert (first.position, second.position) == (1, 2)
    assert contact(None, name="Organisation").position == 1


# --- the patient's thank-you pages -------------------------------------------------------------

def finish_risky_survey(client: Any, db: Any, make_invitation: Any, **kw: Any) -> tuple[Any, str]:
    """A PHQ-9 answered with question 9 above zero and sent through the web; the done page."""
    invitation, token = make_invitation("phq-9", **kw)
    save_answers(start_response(invitation), RISK)
    db.session.commit()
    review = client.get(f"/s/{token}/review")
    r = client.post(f"/s/{token}/review", data={"form_token": form_token_from(review)})
    assert r.status_code == 303
    done = client.get(f"/s/{token}/done")
    assert done.status_code == 200
    return done, token


def test_the_done_page_after_an_item_9_alert_shows_the_services_contacts(
        client, make_invitation, make_service, db):
    service = make_service()
    contact(service, None, "Riverside crisis line", phone="0113 496 0000",
            hours="24 hours, every day", note="For patients of the Riverside team")
    contact(service, None, "Riverside text line", phone=None, text="Text RIVER to 85258")
    done, _token = finish_risky_survey(client, db, make_invitation, service=service)
    page = done.get_data(as_text=True)
    words = html.unescape(text_of(done))
    assert "If you need help now" in words
    assert "If a life is in danger now, call 999" in words
    assert 'href="tel:999"' in page and 'href="tel:01134960000"' in page
    assert 'href="sms:85258"' in page
    assert "Riverside crisis line" in words and "For patients of the Riverside team" in words
    assert "Samaritans" not in words  # the service's own list replaces the built-in one
    assert "<script" not in page


def test_a_done_page_without_an_alert_shows_no_crisis_box(client, make_invitation, db):
    from tests.test_survey_flow import complete

    _invitation, token = make_invitation("phq-9")
    complete(client, token)
    page = client.get(f"/s/{token}/done").get_data(as_text=True)
    assert "tel:" not in page and 'role="alert"' not in page


def test_the_done_page_shows_the_built_in_contacts_in_arabic_with_numbers_left_to_right(
        client, make_invitation, db):
    done, _token = finish_risky_survey(client, db, make_invitation, language="ar")
    page = done.get_data(as_text=True)
    assert '<html lang="ar" dir="rtl"' in page
    assert 'href="tel:116123"' in page and 'href="tel:111"' in page
    assert '<span dir="ltr">116 123</span>' in page
    assert re.search(r'<a class="call" href="tel:999" dir="ltr">999</a>', page)


def test_the_done_page_with_contacts_stays_within_the_page_budget(
        client, make_invitation, make_service, db):
    from tests.test_page_size import BUDGET, weight

    service = make_service()
    for n in range(4):
        contact(service, None, f"Crisis line number {n}", note="For adults and young people",
                text=f"Text HELP{n} to 85258")
    done, _token = finish_risky_survey(client, db, make_invitation, service=service,
                                       language="ar")
    assert weight(client, done.get_data(as_text=True)) <= BUDGET


def tell_us(client: Any, service: Any, text: str, lang: str = "en") -> Any:
    page = client.get(f"/tell-us/{service.slug}?lang={lang}")
    fields = {name: re.search(rf'name="{name}" value="([^"]*)"',
                              page.get_data(as_text=True)).group(1)
              for name in ("form_token", "nonce")}
    r = client.post(f"/tell-us/{service.slug}?lang={lang}",
                    data={**fields, "text": text, "lang": lang})
    assert r.status_code == 303
    return client.get(r.headers["Location"])


def test_the_tell_us_thanks_page_after_an_urgent_comment_shows_the_contacts(
        client, make_service, db):
    service = make_service()
    contact(None, "es", "Línea de la organización", phone="900 000 000",
            hours="24 horas")
    thanks = tell_us(client, service, "Quiero suicidarme, ya no puedo más.", lang="es")
    page = thanks.get_data(as_text=True)
    assert 'role="alert"' in page
    assert 'href="tel:999"' in page and 'href="tel:900000000"' in page
    assert "Línea de la organización" in html.unescape(text_of(thanks))


def test_the_tell_us_thanks_page_for_an_ordinary_comment_has_no_numbers(
        client, make_service, db):
    thanks = tell_us(client, make_service(), "The nurses were kind and the ward was clean.")
    assert "tel:" not in thanks.get_data(as_text=True)


# --- the admin's pages -------------------------------------------------------------------------

@pytest.fixture
def admin(make_user: Any, auth: Any) -> Any:
    user = make_user("admin")
    auth.login(user.email)
    return user


def form_data(**values: Any) -> dict[str, Any]:
    return {"service": "", "language": "", "name": "Samaritans", "phone": "116 123",
            "text": "", "hours": "24 hours, every day", "note": "", "position": "", **values}


def audited(db: Any, action: str) -> list[AuditEvent]:
    return list(db.session.scalars(select(AuditEvent).where(
        AuditEvent.object_type == "crisis_contact", AuditEvent.action == action)))


@pytest.mark.parametrize("role", ["staff", "clinician", "council"])
def test_only_those_who_manage_crisis_contacts_reach_the_pages(
        client, auth, make_user, make_service, db, role):
    service = make_service()
    existing = contact(service)
    db.session.commit()
    auth.login(make_user(role, services=[service]).email)
    for path in ("/crisis-contacts", "/crisis-contacts/new", f"/crisis-contacts/{existing.id}/edit",
                 f"/crisis-contacts/{existing.id}/delete", "/crisis-contacts/preview"):
        assert client.get(path).status_code == 403, path
    token = csrf_from(client.get("/", follow_redirects=True))
    assert client.post("/crisis-contacts/new",
                       data={"csrf_token": token, **form_data()}).status_code == 403
    assert client.post(f"/crisis-contacts/{existing.id}/delete",
                       data={"csrf_token": token, "confirm": "yes"}).status_code == 403
    assert db.session.get(CrisisContact, existing.id) is not None
    assert "/crisis-contacts" not in client.get("/services").get_data(as_text=True)


def test_an_admin_adds_a_contact_for_a_service_and_it_is_audited(
        client, admin, make_service, db):
    service = make_service(name="Riverside Clinic")
    page = client.get(f"/crisis-contacts/new?service={service.id}")
    assert page.status_code == 200
    assert f'<option selected value="{service.id}">' in page.get_data(as_text=True)
    r = client.post("/crisis-contacts/new", data={
        "csrf_token": csrf_from(page), **form_data(service=str(service.id), language="es",
                                                   text="Envía HOLA al 85258")})
    assert r.status_code == 302
    saved = db.session.scalar(select(CrisisContact))
    assert (saved.service_id, saved.language, saved.phone, saved.text) == (
        service.id, "es", "116 123", "Envía HOLA al 85258")
    [event] = audited(db, "create")
    assert event.object_id == saved.id and event.user_id == admin.id
    listing = html.unescape(text_of(client.get("/crisis-contacts")))
    assert "Riverside Clinic" in listing and "Envía HOLA al 85258" in listing


def test_a_contact_with_neither_phone_nor_text_is_refused_keeping_what_was_typed(
        client, admin, make_service, db):
    service = make_service()
    page = client.get("/crisis-contacts/new")
    r = client.post("/crisis-contacts/new", data={
        "csrf_token": csrf_from(page),
        **form_data(service=str(service.id), name="Riverside <crisis> line", phone="",
                    hours="Weekdays 9 to 5", note="For adults", position="3")})
    assert r.status_code == 400
    body = r.get_data(as_text=True)
    assert "Enter a phone number or a text line" in html.unescape(text_of(r))
    # the message sits beside the phone field, linked from the summary
    assert re.search(r'id="phone-error"', body)
    assert 'aria-describedby="phone-hint phone-error"' in body
    assert '<a href="#phone">' in body
    for typed in ('value="Riverside &lt;crisis&gt; line"', 'value="Weekdays 9 to 5"',
                  'value="For adults"', 'value="3"', f'<option selected value="{service.id}">'):
        assert typed in body, typed
    assert db.session.scalar(select(func.count()).select_from(CrisisContact)) == 0
    assert audited(db, "create") == []


def test_an_admin_edits_and_reorders_contacts(client, admin, make_service, db):
    first = contact(None, name="First")
    second = contact(None, name="Second")
    db.session.commit()
    page = client.get(f"/crisis-contacts/{second.id}/edit")
    assert 'value="Second"' in page.get_data(as_text=True)
    r = client.post(f"/crisis-contacts/{second.id}/edit", data={
        "csrf_token": csrf_from(page), **form_data(name="Second, now first", position="0")})
    assert r.status_code == 302
    db.session.expire_all()
    assert names(crisis_contacts_for(make_service(), "en")) == ["Second, now first", "First"]
    assert [e.object_id for e in audited(db, "update")] == [second.id]
    assert first.position == 1


def test_deleting_needs_a_confirmation_and_is_audited(client, admin, db):
    doomed = contact(None, name="Old helpline", phone="0113 496 0999")
    db.session.commit()
    doomed_id = doomed.id
    listing = client.get("/crisis-contacts").get_data(as_text=True)
    assert f'href="/crisis-contacts/{doomed.id}/delete"' in listing
    confirm = client.get(f"/crisis-contacts/{doomed.id}/delete")
    assert confirm.status_code == 200
    assert "Delete Old helpline?" in html.unescape(text_of(confirm))
    assert db.session.get(CrisisContact, doomed.id) is not None  # asking deletes nothing
    token = csrf_from(confirm)
    # a post that did not press "Yes, delete it" shows the question again
    again = client.post(f"/crisis-contacts/{doomed.id}/delete", data={"csrf_token": token})
    assert again.status_code == 200 and db.session.get(CrisisContact, doomed.id) is not None
    r = client.post(f"/crisis-contacts/{doomed.id}/delete",
                    data={"csrf_token": token, "confirm": "yes"})
    assert r.status_code == 302
    db.session.expire_all()
    assert db.session.get(CrisisContact, doomed_id) is None
    [event] = audited(db, "delete")
    assert event.object_id == doomed_id
    assert event.detail["name"] == "Old helpline" and event.detail["phone"] == "0113 496 0999"


def test_a_form_without_its_csrf_token_is_refused(client, admin, db):
    assert client.post("/crisis-contacts/new", data=form_data()).status_code == 400
    assert db.session.scalar(select(func.count()).select_from(CrisisContact)) == 0


def test_the_preview_shows_what_patients_see_in_every_language(
        client, admin, make_service, db):
    service = make_service(name="Riverside Clinic")
    contact(service, "en", "Riverside crisis line")
    contact(None, None, "Organisation line", phone="0113 496 0001")
    db.session.commit()
    r = client.get(f"/crisis-contacts/preview?service={service.id}")
    assert r.status_code == 200
    page = r.get_data(as_text=True)
    sections = dict(re.findall(
        r'<div class="crisis-preview" lang="(\w+)" dir="\w+">(.*?)</div>', page, re.S))
    assert set(sections) == {"en", "es", "ar"}
    assert "Riverside crisis line" in sections["en"] and "Organisation line" not in sections["en"]
    for lang in ("es", "ar"):
        assert "Organisation line" in sections[lang] and 'href="tel:999"' in sections[lang]
    assert 'lang="ar" dir="rtl"' in page
    assert "From the organisation-wide list" in html.unescape(text_of(r))


def test_the_services_page_links_to_the_crisis_contacts(client, admin, make_service, db):
    service = make_service()
    page = client.get("/services").get_data(as_text=True)
    assert f'href="/crisis-contacts#service-{service.id}"' in page


def test_the_public_form_names_the_regions_emergency_number_before_anything_is_sent(
    app, client, make_service, db,
):
    service = make_service()
    page = client.get(f"/tell-us/{service.slug}").get_data(as_text=True)
    assert '<a href="tel:999" dir="ltr">999</a>' in page
    app.config["CRISIS_REGION"] = "ES"
    try:
        page = client.get(f"/tell-us/{service.slug}?lang=es").get_data(as_text=True)
        assert '<a href="tel:112" dir="ltr">112</a>' in page and "llame al" in page
    finally:
        app.config["CRISIS_REGION"] = "GB"
