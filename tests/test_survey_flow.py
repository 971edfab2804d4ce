"""The patient's survey behind an invitation link, through the real web pages."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from engage.alerts.models import Alert
from engage.audit.models import AuditEvent
from engage.core.db import utcnow
from engage.core.security import hash_token
from engage.survey.models import InvitationToken, Response
from tests.helpers import form_token_from, text_of

PHQ9_PAGES = (
    {"phq9-1": "LA6569-3", "phq9-2": "LA6570-1", "phq9-3": "LA6571-9"},   # 1, 2, 3
    {"phq9-4": "LA6568-5", "phq9-5": "LA6569-3", "phq9-6": "LA6570-1"},   # 0, 1, 2
    {"phq9-7": "LA6571-9", "phq9-8": "LA6568-5", "phq9-9": "LA6568-5"},   # 3, 0, 0
    {"phq9-10": "LA6572-7"},
)


def post(client, url, data, token_page=None):
    page = token_page or client.get(url)
    return client.post(url, data={"form_token": form_token_from(page), **data})


def complete(client, token, pages=PHQ9_PAGES, respondent="self", relationship=""):
    base = f"/s/{token}"
    r = post(client, base, {"respondent": respondent, "relationship": relationship})
    assert r.status_code == 303, text_of(r)
    for number, answers in enumerate(pages, start=1):
        r = post(client, f"{base}/q/{number}", {"action": "next", **answers})
        assert r.status_code == 303, text_of(r)
    assert r.headers["Location"].endswith("/review")
    r = post(client, f"{base}/review", {})
    assert r.status_code == 303
    assert r.headers["Location"].endswith("/done")
    return r


def test_link_token_has_256_random_bits_and_only_its_hash_is_stored(make_invitation, db):
    invitation, token = make_invitation("phq-9")
    assert len(token) >= 43  # 32 bytes, URL-safe base64
    stored = db.session.scalars(select(InvitationToken.token_hash)
                                .where(InvitationToken.invitation_id == invitation.id)).all()
    assert stored == [hash_token(token)]
    assert token not in stored[0]


def test_whole_phq9_flow_scores_and_shows_thanks(client, make_invitation, db):
    invitation, token = make_invitation("phq-9")
    complete(client, token)
    done = client.get(f"/s/{token}/done")
    assert done.status_code == 200
    assert "Thank you" in text_of(done)
    assert "What happens next" in text_of(done)
    response = db.session.scalar(select(Response).where(Response.invitation_id == invitation.id))
    assert response.submitted_at is not None
    assert response.total == 12
    assert response.band == "moderate"
    assert response.complete is True
    db.session.refresh(invitation)
    assert invitation.status == "completed"


def test_progress_says_question_n_of_total(client, make_invitation):
    _, token = make_invitation("phq-9")
    post(client, f"/s/{token}", {"respondent": "self"})
    page2 = text_of(client.get(f"/s/{token}/q/2"))
    assert "Question 4 of 10" in page2
    assert "Question 6 of 10" in page2


def test_answers_are_saved_at_every_step_and_resume_on_another_device(
    app, client, make_invitation, db
):
    _, token = make_invitation("phq-9")
    post(client, f"/s/{token}", {"respondent": "self"})
    post(client, f"/s/{token}/q/1", {"action": "next", **PHQ9_PAGES[0]})
    other_device = app.test_client()  # no cookies shared
    start = other_device.get(f"/s/{token}")
    assert "Welcome back" in text_of(start)
    r = post(other_device, f"/s/{token}", {"respondent": "self"}, token_page=start)
    # resumes at the first page with an unanswered question
    assert r.headers["Location"].endswith("/q/2")
    page1 = other_device.get(f"/s/{token}/q/1").get_data(as_text=True)
    assert 'value="LA6571-9" checked' in page1


def test_back_keeps_answers_and_needs_no_answer(client, make_invitation):
    _, token = make_invitation("phq-9")
    post(client, f"/s/{token}", {"respondent": "self"})
    post(client, f"/s/{token}/q/1", {"action": "next", **PHQ9_PAGES[0]})
    r = post(client, f"/s/{token}/q/2", {"action": "back", "phq9-4": "LA6570-1"})
    assert r.status_code == 303 and r.headers["Location"].endswith("/q/1")
    assert 'value="LA6570-1" checked' in client.get(f"/s/{token}/q/2").get_data(as_text=True)


def test_missing_answer_is_shown_in_place_and_keeps_what_was_chosen(client, make_invitation, db):
    invitation, token = make_invitation("phq-9")
    post(client, f"/s/{token}", {"respondent": "self"})
    r = post(client, f"/s/{token}/q/1",
             {"action": "next", "phq9-1": "LA6569-3", "phq9-3": "LA6571-9"})
    html = r.get_data(as_text=True)
    assert r.status_code == 200
    assert "There is a problem" in html
    assert 'href="#phq9-2-0"' in html  # the summary links to the question
    assert 'id="phq9-2-error"' in html
    assert 'value="LA6569-3" checked' in html and 'value="LA6571-9" checked' in html
    assert "<title>Error:" in html
    # the valid answers of that page were saved too
    saved = db.session.scalar(select(Response).where(Response.invitation_id == invitation.id))
    assert saved.answer_map() == {"phq9-1": "LA6569-3", "phq9-3": "LA6571-9"}


def test_a_value_that_is_not_an_option_is_refused_without_losing_others(client, make_invitation):
    _, token = make_invitation("phq-9")
    post(client, f"/s/{token}", {"respondent": "self"})
    r = post(client, f"/s/{token}/q/1",
             {"action": "next", "phq9-1": "7", "phq9-2": "LA6570-1", "phq9-3": "LA6568-5"})
    assert r.status_code == 200
    assert "Please choose one of the answers shown." in text_of(r)
    assert 'value="LA6570-1" checked' in r.get_data(as_text=True)


def test_free_text_that_is_too_long_is_kept_and_explained(client, make_invitation):
    _, token = make_invitation("fft")
    post(client, f"/s/{token}", {"respondent": "self"})
    long_text = "word " * 500
    r = post(client, f"/s/{token}/q/1", {"action": "next", "fft-1": "1", "fft-2": long_text})
    assert r.status_code == 200
    assert "Please shorten your answer to 2000 characters" in text_of(r)
    assert long_text.strip() in r.get_data(as_text=True)


def test_double_submit_creates_one_response_and_one_alert(client, make_invitation, db):
    invitation, token = make_invitation("phq-9")
    pages = list(PHQ9_PAGES)
    pages[2] = {**pages[2], "phq9-9": "LA6570-1"}  # item 9 above zero
    review = None
    base = f"/s/{token}"
    post(client, base, {"respondent": "self"})
    for number, answers in enumerate(pages, start=1):
        post(client, f"{base}/q/{number}", {"action": "next", **answers})
    review = client.get(f"{base}/review")
    first = post(client, f"{base}/review", {}, token_page=review)
    second = post(client, f"{base}/review", {}, token_page=review)  # the same form again
    assert first.status_code == second.status_code == 303
    assert second.headers["Location"].endswith("/done")
    assert db.session.scalar(select(func.count()).select_from(Response)
                             .where(Response.invitation_id == invitation.id)) == 1
    assert db.session.scalar(select(func.count()).select_from(Alert)) == 1


def test_back_button_resubmit_of_a_page_after_completion_changes_nothing(
    client, make_invitation, db
):
    invitation, token = make_invitation("phq-9")
    page1 = None
    base = f"/s/{token}"
    post(client, base, {"respondent": "self"})
    page1 = client.get(f"{base}/q/1")
    complete_pages = PHQ9_PAGES
    for number, answers in enumerate(complete_pages, start=1):
        post(client, f"{base}/q/{number}", {"action": "next", **answers})
    post(client, f"{base}/review", {})
    again = post(client, f"{base}/q/1", {"action": "next", "phq9-1": "LA6568-5",
                                         "phq9-2": "LA6568-5", "phq9-3": "LA6568-5"},
                 token_page=page1)
    assert again.status_code == 410
    assert "already sent your answers" in text_of(again)
    response = db.session.scalar(select(Response).where(Response.invitation_id == invitation.id))
    db.session.refresh(response)
    assert response.answer_map()["phq9-1"] == "LA6569-3"
    assert response.total == 12


def test_unknown_link_is_a_translated_404(client, db):
    r = client.get("/s/not-a-real-token", headers={"Accept-Language": "es"})
    assert r.status_code == 404
    assert "No reconocemos este enlace" in text_of(r) or "link" in text_of(r).lower()
    assert "Traceback" not in text_of(r)


def test_expired_link_is_410_and_takes_no_answers(client, make_invitation, db):
    invitation, token = make_invitation("phq-9")
    form_page = client.get(f"/s/{token}")
    invitation.closes_at = utcnow() - timedelta(minutes=1)
    db.session.commit()
    assert client.get(f"/s/{token}").status_code == 410
    assert "expired" in text_of(client.get(f"/s/{token}"))
    r = post(client, f"/s/{token}", {"respondent": "self"}, token_page=form_page)
    assert r.status_code == 410
    assert db.session.scalar(select(func.count()).select_from(Response)) == 0


def test_completed_link_is_410(client, make_invitation):
    _, token = make_invitation("phq-9")
    complete(client, token)
    r = client.get(f"/s/{token}")
    assert r.status_code == 410
    assert "already sent your answers" in text_of(r)
    assert client.get(f"/s/{token}/q/1").status_code == 410
    assert client.get(f"/s/{token}/review").status_code == 410
    assert client.get(f"/s/{token}/done").status_code == 200


def test_post_without_the_link_form_token_is_refused(client, make_invitation, db):
    _, token = make_invitation("phq-9")
    r = client.post(f"/s/{token}", data={"respondent": "self"})
    assert r.status_code == 400
    r = client.post(f"/s/{token}", data={"respondent": "self", "form_token": "0" * 64})
    assert r.status_code == 400
    assert db.session.scalar(select(func.count()).select_from(Response)) == 0


def test_form_token_of_one_link_does_not_work_on_another(client, make_invitation):
    _, token_a = make_invitation("phq-9")
    _, token_b = make_invitation("phq-9")
    page_a = client.get(f"/s/{token_a}")
    r = client.post(f"/s/{token_b}",
                    data={"respondent": "self", "form_token": form_token_from(page_a)})
    assert r.status_code == 400


def test_answers_survive_an_expired_session_because_forms_need_no_cookie(
    app, make_invitation, db
):
    _, token = make_invitation("phq-9")
    browser = app.test_client()
    page = browser.get(f"/s/{token}")
    browser._cookies.clear()  # the session is gone (or cookies are off)
    r = browser.post(f"/s/{token}",
                     data={"respondent": "self", "form_token": form_token_from(page)})
    assert r.status_code == 303


def test_proxy_respondent_and_relationship_are_recorded(client, make_invitation, db):
    invitation, token = make_invitation("phq-9")
    complete(client, token, respondent="proxy", relationship="parent")
    response = db.session.scalar(select(Response).where(Response.invitation_id == invitation.id))
    assert response.respondent == "proxy"
    assert response.proxy_relationship == "parent"


def test_proxy_without_relationship_asks_for_it(client, make_invitation):
    _, token = make_invitation("phq-9")
    r = post(client, f"/s/{token}", {"respondent": "proxy", "relationship": ""})
    assert r.status_code == 200
    assert "Tell us how you are related to the patient." in text_of(r)
    assert 'id="respondent-proxy" name="respondent" value="proxy" checked' in r.get_data(
        as_text=True)


def test_review_lists_unanswered_questions_and_refuses_to_send(client, make_invitation, db):
    invitation, token = make_invitation("phq-9")
    post(client, f"/s/{token}", {"respondent": "self"})
    post(client, f"/s/{token}/q/1", {"action": "next", **PHQ9_PAGES[0]})
    r = post(client, f"/s/{token}/review", {})
    assert r.status_code == 200
    assert "Some questions still need an answer" in text_of(r)
    assert db.session.scalar(select(Response.submitted_at)
                             .where(Response.invitation_id == invitation.id)) is None


@pytest.mark.parametrize(
    ("invitation_language", "accept", "expected_lang", "expected_text"),
    [
        ("es", "en", "es", "Empezar"),
        ("ar", "en", "ar", "ابدأ"),
        ("en", "es", "en", "Start"),
    ],
)
def test_locale_comes_from_the_invitation(
    client, make_invitation, invitation_language, accept, expected_lang, expected_text
):
    _, token = make_invitation("phq-9", language=invitation_language)
    html = client.get(f"/s/{token}", headers={"Accept-Language": accept}).get_data(as_text=True)
    assert f'lang="{expected_lang}"' in html
    assert ('dir="rtl"' in html) == (expected_lang == "ar")
    assert expected_text in html


def test_patient_language_choice_is_kept_on_the_invitation(app, client, make_invitation, db):
    invitation, token = make_invitation("phq-9", language="en")
    client.get(f"/s/{token}?lang=ar")
    db.session.refresh(invitation)
    assert invitation.language == "ar"
    html = app.test_client().get(f"/s/{token}").get_data(as_text=True)
    assert 'dir="rtl"' in html


def test_instrument_text_is_shown_in_the_patient_language(client, make_invitation):
    _, token = make_invitation("phq-9", language="es")
    post(client, f"/s/{token}", {"respondent": "self"})
    page = text_of(client.get(f"/s/{token}/q/1"))
    import surveys

    assert surveys.get("phq-9").item("phq9-1").text_in("es") in page


def test_patient_actions_are_audited(client, make_invitation, db):
    invitation, token = make_invitation("phq-9")
    complete(client, token)
    actions = db.session.execute(
        select(AuditEvent.action, AuditEvent.object_type, AuditEvent.actor)
        .where(AuditEvent.patient_id == invitation.patient_id)
    ).all()
    assert ("create", "response", "patient-link") in actions
    assert ("update", "answers", "patient-link") in actions


def test_reinviting_the_same_questionnaire_keeps_saved_answers(client, make_invitation, db):
    invitation, token = make_invitation("phq-9")
    post(client, f"/s/{token}", {"respondent": "self"})
    post(client, f"/s/{token}/q/1", {"action": "next", **PHQ9_PAGES[0]})
    again, new_token = make_invitation("phq-9", patient=invitation.patient,
                                       service=invitation.service)
    assert again.id == invitation.id
    assert new_token != token
    # both links open the same answers: an earlier email's link keeps working
    assert "Welcome back" in text_of(client.get(f"/s/{new_token}"))
    assert "Welcome back" in text_of(client.get(f"/s/{token}"))


def test_review_change_links_jump_to_the_right_field(client, make_invitation):
    _, token = make_invitation("fft")
    post(client, f"/s/{token}", {"respondent": "self"})
    post(client, f"/s/{token}/q/1", {"action": "next", "fft-1": "1", "fft-2": "Kind staff"})
    html = client.get(f"/s/{token}/review").get_data(as_text=True)
    assert f'/s/{token}/q/1#fft-1-0"' in html   # a choice: its first radio
    assert f'/s/{token}/q/1#fft-2"' in html     # a text: the textarea itself
