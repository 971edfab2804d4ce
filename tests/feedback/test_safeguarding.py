"""Safety levels in the app: review items, raising and lowering, misses, the officer's page,
the safeguarding leads' daily digest, the new roles, and classifying a CSV."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from engage.alerts.models import Alert
from engage.core.db import utcnow
from engage.feedback.models import FeedbackEvent, FeedbackItem, SafetyChange, SafetyDigest
from engage.feedback.safeguarding import monthly_counts, set_safety_level
from engage.feedback.safety_digest import leads, send_safety_digests
from engage.feedback.services import FeedbackError, set_urgency
from tests.helpers import csrf_from, text_of

REVIEW_TEXT = "She was left soiled for hours"
URGENT_TEXT = "I want to end my life"
PLAIN_TEXT = "The appointment letter came late."


def login_as(auth, make_user, role="staff", services=()):
    user = make_user(role, services=list(services))
    auth.login(user.email)
    return user


# --- intake and the inbox -----------------------------------------------------------------


def test_a_possible_safeguarding_concern_is_taken_in_for_review_without_an_alert(
    make_item, db,
):
    item = make_item(REVIEW_TEXT, contact=None)
    assert item.urgency == "review" and item.safety_level == "review"
    assert item.screen_level == "review" and item.safety_reason == "review-neglect-hygiene"
    assert item.safety_category == "neglect"
    assert item.due_at - item.received_at == timedelta(hours=24)
    assert item.safety_matches and item.safety_matches[0]["level"] == "review"
    assert db.session.scalar(select(Alert).where(Alert.feedback_item_id == item.id)) is None
    received = db.session.scalar(select(FeedbackEvent).where(FeedbackEvent.item_id == item.id))
    assert received.detail["level"] == "review"


def test_the_review_target_is_a_setting(app, make_item):
    app.config["FEEDBACK_TARGET_HOURS"]["review"] = 8
    try:
        item = make_item(REVIEW_TEXT)
        assert item.due_at - item.received_at == timedelta(hours=8)
    finally:
        app.config["FEEDBACK_TARGET_HOURS"]["review"] = 24


def test_review_items_sit_under_urgent_ones_and_above_the_rest(
    client, auth, make_user, make_service, make_item,
):
    service = make_service()
    now = utcnow()
    plain = make_item(PLAIN_TEXT, service=service, received_at=now - timedelta(days=5))
    review = make_item(REVIEW_TEXT, service=service, received_at=now - timedelta(hours=1))
    urgent = make_item(URGENT_TEXT, service=service, received_at=now, notify=False)
    login_as(auth, make_user, services=[service])
    page = client.get("/feedback").get_data(as_text=True)
    order = [page.index(f'data-id="{i.id}"') for i in (urgent, review, plain)]
    assert order == sorted(order)
    assert "1 comment is waiting for a safety review" in text_of(client.get("/feedback"))
    only = client.get("/feedback?safety=1").get_data(as_text=True)
    assert f'data-id="{review.id}"' in only and f'data-id="{urgent.id}"' in only
    assert f'data-id="{plain.id}"' not in only


def test_an_overdue_review_item_is_highlighted(client, auth, make_user, make_service,
                                               make_item):
    service = make_service()
    item = make_item(REVIEW_TEXT, service=service, received_at=utcnow() - timedelta(hours=30))
    login_as(auth, make_user, services=[service])
    assert "Past its response target" in text_of(client.get(f"/feedback/items/{item.id}"))
    assert f'data-id="{item.id}"' in client.get("/feedback?overdue=1").get_data(as_text=True)


def test_council_members_never_see_a_comment_waiting_for_a_safety_review(
    client, auth, make_user, make_service, make_item,
):
    service = make_service()
    make_item("The physio was brilliant.", service=service)
    make_item(REVIEW_TEXT, service=service)
    login_as(auth, make_user, "council")
    page = text_of(client.get("/council/feedback"))
    assert "The physio was brilliant." in page and "soiled" not in page


# --- raising and lowering ---------------------------------------------------------------------


def test_raising_a_comment_the_screen_missed_records_a_miss_with_its_redacted_wording(
    client, auth, make_user, make_service, make_item, db,
):
    service = make_service()
    item = make_item("My dad has gone very quiet since the new carer started.",
                     service=service)
    assert item.safety_level == "none"
    user = login_as(auth, make_user, services=[service])
    token = csrf_from(client.get(f"/feedback/items/{item.id}"))
    r = client.post(f"/feedback/items/{item.id}/safety",
                    data={"csrf_token": token, "level": "review",
                          "reason": "Withdrawn since a new carer: possible abuse"})
    assert r.status_code == 302
    db.session.expire_all()
    item = db.session.get(FeedbackItem, item.id)
    assert item.urgency == "review" and item.screen_level == "none"
    change = db.session.scalar(select(SafetyChange).where(SafetyChange.item_id == item.id))
    assert change.kind == "miss" and change.user_id == user.id
    assert change.wording == item.redacted_text and change.reason.startswith("Withdrawn")
    # Its target runs from now, not from when it came in.
    assert item.due_at > utcnow() + timedelta(hours=23)
    page = text_of(client.get(f"/feedback/items/{item.id}"))
    assert "Safety level No safety concern → Safety review." in page
    assert "Withdrawn since a new carer" in page


def test_marking_a_comment_urgent_alerts_the_clinicians_once(make_item, make_user, db):
    item = make_item(PLAIN_TEXT)
    user = make_user("staff")
    set_safety_level(item, "urgent", user, "Caller said he has a plan tonight")
    alerts = db.session.scalars(select(Alert).where(Alert.feedback_item_id == item.id)).all()
    assert [a.kind for a in alerts] == ["comment-staff"]
    set_safety_level(item, "review", user, "Spoke to the crisis team")
    set_safety_level(item, "urgent", user, "Called again")
    assert len(db.session.scalars(select(Alert).where(
        Alert.feedback_item_id == item.id)).all()) == 1


def test_lowering_an_urgent_comment_is_a_false_alarm_shown_in_its_history_and_its_alert_stays(
    client, auth, make_user, make_service, make_item, db,
):
    service = make_service()
    item = make_item("the pain of waiting made me want to die of boredom", service=service,
                     notify=False)
    assert item.safety_level == "urgent"
    login_as(auth, make_user, services=[service])
    token = csrf_from(client.get(f"/feedback/items/{item.id}"))
    client.post(f"/feedback/items/{item.id}/safety",
                data={"csrf_token": token, "level": "none",
                      "reason": "Figure of speech about the wait"})
    db.session.expire_all()
    item = db.session.get(FeedbackItem, item.id)
    assert item.safety_level == "none" and item.urgency in ("high", "normal")
    change = db.session.scalar(select(SafetyChange).where(SafetyChange.item_id == item.id))
    assert (change.kind, change.from_level, change.to_level) == ("false_alarm", "urgent", "none")
    alert = db.session.scalar(select(Alert).where(Alert.feedback_item_id == item.id))
    assert alert.acknowledged_at is None  # a clinician still acknowledges it
    page = text_of(client.get(f"/feedback/items/{item.id}"))
    assert "Lowered from urgent to No safety concern." in page
    assert "False alarm" in page and "Figure of speech about the wait" in page


def test_a_change_of_safety_level_needs_a_reason_and_keeps_what_was_chosen(
    client, auth, make_user, make_service, make_item, db,
):
    service = make_service()
    item = make_item(PLAIN_TEXT, service=service)
    login_as(auth, make_user, services=[service])
    token = csrf_from(client.get(f"/feedback/items/{item.id}"))
    r = client.post(f"/feedback/items/{item.id}/safety",
                    data={"csrf_token": token, "level": "review", "reason": "  "})
    assert r.status_code == 400
    page = r.get_data(as_text=True)
    assert "Say why you are changing the safety level." in page
    assert 'value="review" checked' in page
    assert db.session.get(FeedbackItem, item.id).safety_level == "none"
    assert db.session.scalar(select(SafetyChange)) is None


def test_the_priority_form_cannot_change_a_safety_level(make_item, make_user):
    item = make_item(REVIEW_TEXT)
    user = make_user("staff")
    for urgency in ("normal", "urgent"):
        try:
            set_urgency(item, urgency, user)
        except FeedbackError as exc:
            assert exc.field == "urgency"
        else:
            raise AssertionError("a safety level changed without a reason")
    assert item.urgency == "review"


def test_staff_of_another_service_cannot_change_the_level(
    client, auth, make_user, make_service, make_item,
):
    item = make_item(PLAIN_TEXT, service=make_service())
    login_as(auth, make_user, services=[make_service()])
    token = csrf_from(client.get("/feedback"))
    r = client.post(f"/feedback/items/{item.id}/safety",
                    data={"csrf_token": token, "level": "urgent", "reason": "x"})
    assert r.status_code == 404


# --- the safety officer -------------------------------------------------------------------------


def test_the_safety_officer_reads_misses_redacted_and_tries_one_in_the_editor(
    client, auth, make_user, make_item, db,
):
    item = make_item("Call me on 07700 900123, my dad has gone very quiet since the new carer")
    staff = make_user("staff")
    set_safety_level(item, "review", staff, "Withdrawn since a new carer")
    db.session.commit()
    login_as(auth, make_user, "safety_officer")
    page = client.get("/feedback/safety/misses")
    assert page.status_code == 200
    words = text_of(page)
    assert "Missed by the screen" in words and "Withdrawn since a new carer" in words
    assert "07700 900123" not in words and "[phone]" in words
    assert "The rules in force still find nothing in it." in words
    change = db.session.scalar(select(SafetyChange))
    tried = client.get(f"/feedback/settings/safety?try={change.id}")
    assert tried.status_code == 200
    assert "No safety concern: no rule fired." in text_of(tried)
    assert "[phone], my dad has gone very quiet" in tried.get_data(as_text=True)
    # The officer sees no patient record and no original comment.
    assert client.get(f"/feedback/items/{item.id}").status_code == 403
    assert client.get("/feedback").status_code == 403


def test_misses_page_is_for_the_safety_officer_and_admins_only(client, auth, make_user):
    login_as(auth, make_user, "staff")
    assert client.get("/feedback/safety/misses").status_code == 403


def test_monthly_counts_of_flags_misses_and_false_alarms(make_item, make_user, db):
    user = make_user("staff")
    now = utcnow()
    last_month = now.replace(day=1) - timedelta(days=3)
    missed = make_item(PLAIN_TEXT, received_at=last_month)
    set_safety_level(missed, "review", user, "r", now=last_month)
    flagged = make_item(REVIEW_TEXT)
    set_safety_level(flagged, "none", user, "not a concern", now=now)
    make_item(URGENT_TEXT, notify=False)
    db.session.commit()
    months = monthly_counts(now)
    assert len(months) == 12 and months[-1].month == now.date().replace(day=1)
    this, before = months[-1], months[-2]
    assert (before.misses, before.false_alarms, before.received) == (1, 0, 1)
    assert (this.misses, this.false_alarms) == (0, 1)
    assert (this.flagged_review, this.flagged_urgent, this.received) == (1, 1, 2)


# --- the daily digest to safeguarding leads -------------------------------------------------------


def test_the_digest_goes_to_the_services_safeguarding_lead_once_a_day_without_the_words(
    app, smtp, make_user, make_service, make_item, db,
):
    service = make_service()
    lead = make_user("safeguarding", services=[service])
    make_user("clinician", services=[service])
    item = make_item(REVIEW_TEXT, service=service)
    make_item(PLAIN_TEXT, service=service)
    morning = datetime.combine(utcnow().date(), datetime.min.time(), tzinfo=UTC)
    assert send_safety_digests(morning + timedelta(hours=7)) == 0  # before the hour
    assert send_safety_digests(morning + timedelta(hours=9)) == 1
    assert smtp.event.wait(5)
    (message,) = smtp.messages
    assert message["To"] == lead.email
    assert "1 comment waiting for a safety review" in message["Subject"]
    body = message.get_content()
    assert f"/feedback/items/{item.id}" in body and "soiled" not in body
    assert send_safety_digests(morning + timedelta(hours=10)) == 0
    row = db.session.get(SafetyDigest, (service.id, morning.date()))
    assert (row.status, row.items, row.recipients) == ("sent", 1, 1)


def test_without_a_lead_the_clinicians_then_the_admins_get_it(make_user, make_service):
    service = make_service()
    admin = make_user("admin")
    assert leads(service.id) == [admin]
    clinician = make_user("clinician", services=[service])
    assert leads(service.id) == [clinician]
    lead = make_user("safeguarding", services=[service])
    assert leads(service.id) == [lead]


def test_no_digest_when_nothing_waits(app, make_item):
    make_item(PLAIN_TEXT)
    noon = datetime.combine(utcnow().date(), datetime.min.time(), tzinfo=UTC) + \
        timedelta(hours=12)
    assert send_safety_digests(noon) == 0


def test_safeguarding_leads_are_alerted_about_urgent_comments_too(make_user, make_service):
    from engage.alerts.services import recipients

    service = make_service()
    lead = make_user("safeguarding", services=[service])
    clinician = make_user("clinician", services=[service])
    assert {u.id for u in recipients(service.id)} == {lead.id, clinician.id}


def test_a_safeguarding_lead_lands_on_the_safety_concerns(client, auth, make_user,
                                                          make_service):
    login_as(auth, make_user, "safeguarding", services=[make_service()])
    assert "/feedback?safety=1" in client.get("/").headers["Location"]


def test_the_safety_officer_lands_on_the_misses(client, auth, make_user):
    login_as(auth, make_user, "safety_officer")
    assert client.get("/").headers["Location"].endswith("/feedback/safety/misses")


# --- classifying a CSV ---------------------------------------------------------------------------


def test_classify_a_csv_keeps_every_row_in_order_and_adds_the_columns(runner, tmp_path):
    source = tmp_path / "in.csv"
    source.write_text(
        "id,text,question,language\n"
        f"1,{REVIEW_TEXT},,en\n"
        "2,,,\n"
        "3,quiero morirme,,es\n"
        "4,I waited four hours,What could we do better?,\n", encoding="utf-8")
    out = tmp_path / "out.csv"
    result = runner.invoke(args=["feedback", "classify", "--input", str(source),
                                 "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert "4 comments" in result.output and "1 urgent, 1 for a safety review" in result.output
    with out.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [r["id"] for r in rows] == ["1", "2", "3", "4"]
    assert list(rows[0])[-6:] == ["level", "urgent", "reason", "themes", "sentiment",
                                  "redacted"]
    assert (rows[0]["level"], rows[0]["urgent"], rows[0]["reason"]) == (
        "review", "false", "review-neglect-hygiene")
    assert (rows[1]["level"], rows[1]["urgent"], rows[1]["themes"]) == ("none", "false", "")
    assert (rows[2]["level"], rows[2]["urgent"], rows[2]["reason"]) == ("urgent", "true",
                                                                         "suicide")
    assert rows[3]["themes"] and rows[3]["sentiment"] == "negative"


def test_classify_a_csv_without_a_text_column_says_what_to_fix(runner, tmp_path):
    source = tmp_path / "in.csv"
    source.write_text("comment\nhello\n", encoding="utf-8")
    result = runner.invoke(args=["feedback", "classify", "--input", str(source),
                                 "--output", str(tmp_path / "out.csv")])
    assert result.exit_code == 2
    assert "needs a column named 'text'" in result.output and "'comment'" in result.output
    result = runner.invoke(args=["feedback", "classify", "--input", str(source)])
    assert result.exit_code == 2 and "--input and --output go together" in result.output


def test_one_comment_json_gains_the_level(runner):
    result = runner.invoke(args=["feedback", "classify", "--text", REVIEW_TEXT])
    out = json.loads(result.output)
    assert out["level"] == "review" and out["reason"] == "review-neglect-hygiene"
    assert out["urgent"] is False and out["urgent_reason"] is None
    assert out["safety_matches"][0]["near"]["anchor"] == "time"


def test_months_are_counted_in_utc_whatever_the_database_session_time_zone(make_item, db):
    from sqlalchemy import text

    now = utcnow()
    first = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    late = first - timedelta(hours=1)  # 23:00 UTC on the last day of the month before
    make_item(PLAIN_TEXT, received_at=late)
    if db.session.get_bind().dialect.name == "postgresql":
        # A server far east of UTC: its date of that moment is already in this month.
        db.session.execute(text("SET TIME ZONE 'Pacific/Kiritimati'"))
    months = monthly_counts(now)
    assert (months[-2].received, months[-1].received) == (1, 0)
