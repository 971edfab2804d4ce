"""Intake: every comment is analysed, themed, flagged, redacted and audited as it arrives."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from engage.alerts.models import Alert
from engage.audit.models import AuditEvent
from engage.feedback.models import FeedbackEvent, FeedbackItem
from engage.feedback.services import intake_pending, intake_response
from tests.helpers import form_token_from, text_of

SUICIDAL = "I'm not saying I want to end it all but some days I can't see the point."


def test_a_survey_comment_becomes_a_themed_item_when_the_response_is_sent(submit_fft, db):
    response = submit_fft("I waited four hours to be seen and nobody told me why.")
    item = db.session.scalar(select(FeedbackItem))
    assert item is not None
    assert (item.source, item.response_id, item.link_id) == ("survey", response.id, "fft-2")
    assert item.patient_id == response.patient_id and item.service_id == response.service_id
    assert item.question == "Please can you tell us why you gave your answer?"
    assert item.received_at == response.submitted_at
    assert item.status == "new" and item.themes_confirmed_at is None
    suggested = {t.theme.key for t in item.live_themes()}
    assert "Timeliness of care" in suggested
    assert item.suggested_sentiment in (4, 5) and item.sentiment is None
    assert item.model_version and item.safety_rules_version
    assert db.session.scalar(select(FeedbackEvent.action)
                             .where(FeedbackEvent.item_id == item.id)) == "received"


def test_taking_in_a_response_twice_changes_nothing(submit_fft, db):
    response = submit_fft("Lovely staff.")
    assert intake_response(response) == []
    assert db.session.scalar(select(func.count()).select_from(FeedbackItem)) == 1


def test_an_empty_comment_makes_no_item(submit_fft, db):
    submit_fft("")
    assert db.session.scalar(select(func.count()).select_from(FeedbackItem)) == 0


def test_an_urgent_comment_raises_an_alert_for_the_clinicians(
    client, smtp, make_user, make_service, make_invitation, db,
):
    from engage.survey.services import save_answers, start_response

    service = make_service()
    make_user("clinician", services=[service])
    invitation, token = make_invitation("fft", service=service)
    response = start_response(invitation)
    save_answers(response, {"fft-1": "1", "fft-2": SUICIDAL})
    db.session.commit()
    review = client.get(f"/s/{token}/review")
    done = client.post(f"/s/{token}/review", data={"form_token": form_token_from(review)})
    assert done.status_code == 303
    done.close()
    item = db.session.scalar(select(FeedbackItem))
    assert item.urgency == "urgent" and item.safety_category == "self-harm"
    assert item.safety_reason and item.safety_matches
    alert = db.session.scalar(select(Alert))
    assert alert.kind == "comment-self-harm"
    assert (alert.feedback_item_id, alert.response_id) == (item.id, response.id)
    assert len(smtp.messages) == 1  # the clinician, once the page had gone
    assert SUICIDAL not in smtp.messages[0].get_body(("plain",)).get_content()
    thanks = client.get(f"/s/{token}/done")
    assert "If you need help now" in text_of(thanks)


def test_the_response_target_follows_the_urgency(app, make_item, db):
    item = make_item(SUICIDAL)
    assert item.due_at - item.received_at == timedelta(
        hours=app.config["FEEDBACK_TARGET_HOURS"]["urgent"])
    calm = make_item("The ward was clean.")
    assert calm.urgency == "normal"
    assert calm.due_at - calm.received_at == timedelta(
        hours=app.config["FEEDBACK_TARGET_HOURS"]["normal"])


def test_personal_details_are_found_and_redacted_and_never_stored_in_the_findings(make_item):
    text = ("Nurse Sarah Jones was rude. Call me on 07700 900123 or email "
            "pat.smith@example.org, NHS number 943 476 5919.")
    item = make_item(text)
    assert item.text == text  # staff see the original
    for secret in ("Sarah", "Jones", "07700 900123", "pat.smith@example.org", "943 476 5919"):
        assert secret not in item.redacted_text
    kinds = {p["kind"] for p in item.pii}
    assert {"name", "phone", "email", "nhs_number"} <= kinds
    assert all(set(p) == {"kind", "start", "end"} for p in item.pii)


def test_the_name_a_person_leaves_with_their_contact_details_is_redacted_too(make_item):
    from engage.feedback.services import Contact

    item = make_item("Thanks from Wojciech for the help with my mum.",
                     contact=Contact(name="Wojciech Nowak", email="w@example.org", consent=True))
    assert "Wojciech" not in item.redacted_text
    assert item.has_contact


def test_creating_an_item_is_audited(make_item, db):
    item = make_item("Kind staff.")
    event = db.session.scalar(select(AuditEvent).where(
        AuditEvent.object_type == "feedback_item", AuditEvent.object_id == item.id))
    assert event.action == "create"


def test_a_failing_intake_never_loses_the_patients_submit_and_the_job_catches_up(
    submit_fft, monkeypatch, db,
):
    import engage.feedback.services as feedback_services

    def broken(*args, **kwargs):
        raise RuntimeError("model file unreadable")

    monkeypatch.setattr(feedback_services, "analyse", broken)
    response = submit_fft("The parking was impossible.")
    assert response.submitted_at is not None  # the patient's answers are in
    assert db.session.scalar(select(func.count()).select_from(FeedbackItem)) == 0
    monkeypatch.undo()
    assert intake_pending() == 1
    item = db.session.scalar(select(FeedbackItem))
    assert item.text == "The parking was impossible." and item.response_id == response.id
    assert intake_pending() == 0


def test_a_proxys_comment_says_who_wrote_it(make_invitation, db):
    from engage.survey.services import save_answers, start_response, submit

    invitation, _token = make_invitation("fft")
    response = start_response(invitation, respondent="proxy", relationship="carer")
    save_answers(response, {"fft-1": "1", "fft-2": "He was looked after well."})
    submit(response)
    assert db.session.scalar(select(FeedbackItem.respondent)) == "carer"


def test_staff_names_on_record_are_redacted_even_without_a_title(make_item, make_user):
    from engage.feedback import analysis

    make_user("staff", name="Zebedee Quornby")
    analysis._names.clear()  # names are kept a minute; this test must see the new one
    item = make_item("Zebedee on reception sorted everything out for us.")
    assert "Zebedee" not in item.redacted_text
    assert {p["kind"] for p in item.pii} == {"name"}
