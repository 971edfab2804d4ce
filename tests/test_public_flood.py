"""A flood of the public feedback page (engage/feedback/flood.py): each form is taken once,
the same urgent words from one place raise one alert (every comment still stored and
screened), and a service's hourly ceiling bounds what is stored."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import func, select

from engage.alerts.models import Alert
from engage.feedback.models import FeedbackEvent, FeedbackItem, PublicSubmission
from tests.helpers import text_of

URGENT = "I want to kill myself, nobody listens to me on this ward."


def form_fields(response: Any) -> dict[str, str]:
    html = response.get_data(as_text=True)
    return {name: re.search(rf'name="{name}" value="([^"]*)"', html).group(1)  # type: ignore[union-attr]
            for name in ("form_token", "nonce")}


def count(db: Any, model: Any = FeedbackItem) -> int:
    return db.session.scalar(select(func.count()).select_from(model)) or 0


def send(client: Any, slug: str, text: str, **extra: Any) -> Any:
    page = client.get(f"/tell-us/{slug}")
    response = client.post(f"/tell-us/{slug}",
                           data={**form_fields(page), "text": text}, **extra)
    response.close()  # the alert email goes once the response is closed
    return response


def test_one_form_sent_a_hundred_times_stores_one_comment(client, make_service, db):
    service = make_service()
    fields = form_fields(client.get(f"/tell-us/{service.slug}"))
    statuses = set()
    for n in range(100):
        text = "The waiting room was cold." if n % 2 else f"Comment number {n}"
        statuses.add(client.post(f"/tell-us/{service.slug}",
                                 data={**fields, "text": text}).status_code)
    assert count(db) == 1
    assert count(db, PublicSubmission) == 1
    assert statuses <= {303, 409}
    again = client.post(f"/tell-us/{service.slug}", data={**fields, "text": "Another one"})
    assert again.status_code == 409
    assert "This form was already sent" in text_of(again)
    assert "Another one" in again.get_data(as_text=True)  # what was typed is kept


def test_a_forged_one_time_value_is_refused(client, make_service, db):
    """The page's one-time value is signed with the form: changing it makes a bad form,
    not a fresh one."""
    service = make_service()
    fields = form_fields(client.get(f"/tell-us/{service.slug}"))
    r = client.post(f"/tell-us/{service.slug}",
                    data={**fields, "nonce": "made-up", "text": "Hello"})
    assert r.status_code == 400 and count(db) == 0


def test_the_same_urgent_words_from_one_place_raise_one_alert(
    client, smtp, make_service, make_user, db,
):
    service = make_service()
    clinician = make_user("clinician", services=[service])
    for _ in range(20):
        assert send(client, service.slug, URGENT).status_code == 303
    assert count(db) == 20  # every comment stored and screened
    items = db.session.scalars(select(FeedbackItem)).all()
    assert {item.urgency for item in items} == {"urgent"}
    assert count(db, Alert) == 1
    assert [m["To"] for m in smtp.messages] == [clinician.email]
    alert = db.session.scalar(select(Alert))
    joined = db.session.scalars(select(FeedbackEvent).where(FeedbackEvent.action == "repeat"))
    assert [e.detail["alert"] for e in joined] == [alert.id] * 19


def test_the_same_words_from_another_place_raise_their_own_alert(
    client, smtp, make_service, make_user, db,
):
    service = make_service()
    make_user("clinician", services=[service])
    send(client, service.slug, URGENT)
    send(client, service.slug, URGENT, environ_base={"REMOTE_ADDR": "10.20.30.40"})
    send(client, service.slug, "Nobody came when my father fell and he is bleeding now.")
    assert count(db, Alert) >= 2
    assert count(db, Alert) == len(smtp.messages)


def test_an_acknowledged_alert_is_not_joined(client, smtp, make_service, make_user, db):
    from engage.core.db import utcnow

    service = make_service()
    make_user("clinician", services=[service])
    send(client, service.slug, URGENT)
    alert = db.session.scalar(select(Alert))
    alert.acknowledged_at = utcnow()
    db.session.commit()
    send(client, service.slug, URGENT)
    assert count(db, Alert) == 2


def test_beyond_the_hourly_ceiling_a_service_asks_people_to_come_back(
    app, client, make_service, db,
):
    service = make_service()
    old = app.config["PUBLIC_MAX_PER_HOUR"]
    app.config["PUBLIC_MAX_PER_HOUR"] = 3
    try:
        for n in range(3):
            assert send(client, service.slug, f"Comment {n}").status_code == 303
        page = client.get(f"/tell-us/{service.slug}")
        refused = client.post(f"/tell-us/{service.slug}",
                              data={**form_fields(page), "text": "One too many"})
        assert refused.status_code == 429
        assert refused.headers["Retry-After"] == "3600"
        assert "One too many" in refused.get_data(as_text=True)
        assert "try again in an hour" in text_of(refused)
        other = make_service()
        assert send(client, other.slug, "Another service is not affected").status_code == 303
    finally:
        app.config["PUBLIC_MAX_PER_HOUR"] = old
    assert count(db) == 4


def test_nothing_readable_is_kept_about_a_sending(client, make_service, db):
    service = make_service()
    send(client, service.slug, "My name is Ana and the food was cold.")
    row = db.session.scalar(select(PublicSubmission))
    for value in (row.token_hash, row.source_hash, row.text_hash):
        assert re.fullmatch(r"[0-9a-f]{64}", value)
    assert row.feedback_item_id == db.session.scalar(select(FeedbackItem.id))
