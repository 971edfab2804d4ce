"""The triage inbox and a comment's page: order, filters, who sees what, the workflow, audit."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from sqlalchemy import select

from engage.audit.models import AuditEvent
from engage.core.db import utcnow
from engage.feedback.models import FeedbackEvent, FeedbackItem, ItemTheme
from tests.helpers import csrf_from, text_of

URGENT = "My husband hits me when I get home from the clinic."


def login_as(auth, make_user, role="staff", services=()):
    user = make_user(role, services=list(services))
    auth.login(user.email)
    return user


def test_urgent_comments_come_first_then_the_oldest_waiting(
    client, auth, make_user, make_service, make_item,
):
    service = make_service()
    now = utcnow()
    old = make_item("The food was cold.", service=service, received_at=now - timedelta(days=3))
    new = make_item("The food was cold again.", service=service,
                    received_at=now - timedelta(days=1))
    urgent = make_item(URGENT, service=service, received_at=now)
    login_as(auth, make_user, services=[service])
    page = client.get("/feedback").get_data(as_text=True)
    positions = [page.index(f'data-id="{i.id}"') for i in (urgent, old, new)]
    assert positions == sorted(positions)


def test_staff_see_only_their_services_and_their_teams_queues(
    client, auth, make_user, make_service, make_item, make_team, db,
):
    from engage.feedback.services import route_to_team

    mine, other = make_service(), make_service()
    seen = make_item("Our clinic comment.", service=mine)
    hidden = make_item("Another clinic comment.", service=other)
    routed = make_item("Routed to my team.", service=other)
    user = login_as(auth, make_user, services=[mine])
    team = make_team(members=[user])
    admin = make_user("admin")
    route_to_team(routed, team, admin)
    db.session.commit()
    page = text_of(client.get("/feedback"))
    assert "Our clinic comment." in page and "Routed to my team." in page
    assert "Another clinic comment." not in page
    assert client.get(f"/feedback/items/{hidden.id}").status_code == 404
    assert client.get(f"/feedback/items/{seen.id}").status_code == 200
    assert client.get(f"/feedback/items/{routed.id}").status_code == 200


def test_filters_by_theme_sentiment_source_and_date(
    client, auth, make_user, make_service, make_item, theme,
):
    service = make_service()
    now = utcnow()
    waiting = make_item("I waited four hours to be seen.", service=service, received_at=now)
    kind = make_item("The nurses were kind and caring.", service=service, source="web",
                     received_at=now - timedelta(days=40))
    login_as(auth, make_user, services=[service])
    timeliness = theme("Timeliness of care")
    page = text_of(client.get(f"/feedback?theme={timeliness.id}"))
    assert waiting.text in page and kind.text not in page
    page = text_of(client.get("/feedback?source=web"))
    assert kind.text in page and waiting.text not in page
    since = (now - timedelta(days=7)).date().isoformat()
    page = text_of(client.get(f"/feedback?from={since}"))
    assert waiting.text in page and kind.text not in page
    page = text_of(client.get(f"/feedback?sentiment={kind.suggested_sentiment}"))
    assert kind.text in page


def test_overdue_comments_are_highlighted_and_can_be_listed_alone(
    client, auth, make_user, make_service, make_item,
):
    service = make_service()
    late = make_item("Nobody called me back.", service=service,
                     received_at=utcnow() - timedelta(days=30))
    fresh = make_item("Nice clean ward.", service=service)
    login_as(auth, make_user, services=[service])
    page = client.get("/feedback").get_data(as_text=True)
    row = page[page.index(f'data-id="{late.id}"'):]
    assert 'class="row overdue"' in page and "overdue" in row[:2000]
    listed = text_of(client.get("/feedback?overdue=1"))
    assert late.text in listed and fresh.text not in listed


def test_viewing_the_inbox_and_a_comment_is_audited(
    client, auth, make_user, make_service, make_item, make_patient, db,
):
    service = make_service()
    patient = make_patient(service=service)
    item = make_item("Kind staff.", service=service, patient=patient)
    user = login_as(auth, make_user, services=[service])
    client.get("/feedback")
    client.get(f"/feedback/items/{item.id}")
    events = db.session.scalars(select(AuditEvent).where(AuditEvent.user_id == user.id,
                                                         AuditEvent.action == "view")).all()
    listed = [e for e in events if e.object_type == "feedback_list"]
    assert any(item.id in (e.detail or {}).get("items", []) for e in listed)
    assert any(e.object_type == "feedback_item" and e.object_id == item.id
               and e.patient_id == patient.id for e in events)


def test_confirming_the_suggestions_triages_and_routes_by_the_rules(
    client, auth, make_user, make_service, make_item, make_team, make_rule, theme, db,
):
    service = make_service()
    item = make_item("I waited four hours to be seen.", service=service)
    access, local = make_team(name="Access"), make_team(name="Local access")
    timeliness = theme("Timeliness of care")
    make_rule(timeliness, access)                   # any service
    make_rule(timeliness, local, service=service)   # this service: wins
    login_as(auth, make_user, services=[service])
    page = client.get(f"/feedback/items/{item.id}")
    r = client.post(f"/feedback/items/{item.id}/themes",
                    data={"csrf_token": csrf_from(page), "suggested": "1"})
    assert r.status_code == 302
    db.session.expire_all()
    item = db.session.get(FeedbackItem, item.id)
    assert item.themes_confirmed_at is not None
    assert {t.theme.key for t in item.themes if t.status == "confirmed"} >= {
        "Timeliness of care"}
    assert [r.team_id for r in item.routes] == [local.id]
    assert item.status == "routed"
    actions = db.session.scalars(select(FeedbackEvent.action).where(
        FeedbackEvent.item_id == item.id).order_by(FeedbackEvent.id)).all()
    assert actions[:1] == ["received"] and {"themes", "status", "route"} <= set(actions)


def test_correcting_themes_rejects_the_suggestions_left_out_and_corrects_the_sentiment(
    client, auth, make_user, make_service, make_item, theme, db,
):
    service = make_service()
    item = make_item("I waited four hours to be seen.", service=service)
    parking = theme("Parking")
    login_as(auth, make_user, services=[service])
    page = client.get(f"/feedback/items/{item.id}")
    r = client.post(f"/feedback/items/{item.id}/themes",
                    data={"csrf_token": csrf_from(page), "themes": [str(parking.id)],
                          "sentiment": "5"})
    assert r.status_code == 302
    db.session.expire_all()
    rows = {t.theme.key: t.status for t in db.session.scalars(
        select(ItemTheme).where(ItemTheme.item_id == item.id))}
    assert rows["Parking"] == "confirmed"
    assert rows.get("Timeliness of care") == "rejected"
    assert db.session.get(FeedbackItem, item.id).sentiment == 5


def test_bulk_confirm_route_and_close(
    client, auth, make_user, make_service, make_item, make_team, db,
):
    service = make_service()
    items = [make_item(f"The staff were lovely {n}.", service=service) for n in range(3)]
    team = make_team()
    login_as(auth, make_user, services=[service])
    page = client.get("/feedback")
    token = csrf_from(page)
    ids = [str(i.id) for i in items[:2]]
    r = client.post("/feedback/bulk", data={"csrf_token": token, "ids": ids,
                                            "action": "confirm", "back": "/feedback"})
    assert r.status_code == 302
    r = client.post("/feedback/bulk", data={"csrf_token": token, "ids": ids, "team": team.id,
                                            "action": "route", "back": "/feedback"})
    assert r.status_code == 302
    r = client.post("/feedback/bulk", data={"csrf_token": token, "ids": [str(items[2].id)],
                                            "action": "close", "back": "/feedback"})
    db.session.expire_all()
    got = [db.session.get(FeedbackItem, i.id) for i in items]
    assert [g.themes_confirmed_at is not None for g in got] == [True, True, False]
    assert [g.status for g in got] == ["routed", "routed", "closed"]


def test_a_post_without_the_csrf_token_is_refused(
    client, auth, make_user, make_service, make_item, db,
):
    service = make_service()
    item = make_item("Kind staff.", service=service)
    login_as(auth, make_user, services=[service])
    r = client.post(f"/feedback/items/{item.id}/status", data={"status": "closed"})
    assert r.status_code == 400
    assert db.session.get(FeedbackItem, item.id).status == "new"


def test_status_assignment_urgency_and_notes_are_kept_in_the_history(
    client, auth, make_user, make_service, make_item, db,
):
    service = make_service()
    item = make_item("The appointment letter came late.", service=service)
    user = login_as(auth, make_user, services=[service])
    token = csrf_from(client.get(f"/feedback/items/{item.id}"))
    client.post(f"/feedback/items/{item.id}/assign", data={"csrf_token": token,
                                                          "assignee": user.id})
    client.post(f"/feedback/items/{item.id}/urgency", data={"csrf_token": token,
                                                           "urgency": "high"})
    client.post(f"/feedback/items/{item.id}/status", data={"csrf_token": token,
                                                          "status": "closed",
                                                          "note": "Letter templates fixed"})
    client.post(f"/feedback/items/{item.id}/note", data={"csrf_token": token,
                                                        "note": "Told the clinic manager"})
    db.session.expire_all()
    item = db.session.get(FeedbackItem, item.id)
    assert item.assigned_to_id == user.id and item.urgency == "high"
    assert item.status == "closed"
    assert item.due_at - item.received_at == timedelta(hours=72)
    page = text_of(client.get(f"/feedback/items/{item.id}"))
    assert "Letter templates fixed" in page and "Told the clinic manager" in page


def test_staff_can_enter_feedback_from_a_call_and_mistakes_keep_what_was_typed(
    client, auth, make_user, make_service, db,
):
    service = make_service()
    login_as(auth, make_user, services=[service])
    page = client.get("/feedback/new")
    data = {"csrf_token": csrf_from(page), "service": service.id, "received_via": "phone",
            "respondent": "family", "language": "en",
            "text": "My father waited all night on a trolley.",
            "contact_email": "not-an-email", "consent": "y"}
    r = client.post("/feedback/new", data=data)
    assert r.status_code == 400
    assert "My father waited all night on a trolley." in r.get_data(as_text=True)
    assert "Enter an email address" in text_of(r)
    data["contact_email"] = "daughter@example.org"
    r = client.post("/feedback/new", data=data)
    assert r.status_code == 302
    item = db.session.scalar(select(FeedbackItem))
    assert (item.source, item.received_via, item.respondent) == ("staff", "phone", "family")
    assert item.has_contact and item.contact_email == "daughter@example.org"


def test_the_export_has_only_the_redacted_text(
    client, auth, make_user, make_service, make_item, db,
):
    service = make_service()
    make_item("Dr Patel was great, call me on 07700 900123.", service=service)
    make_item("=HYPERLINK(\"http://evil\")", service=service)
    user = login_as(auth, make_user, services=[service])
    r = client.get("/feedback/export.csv")
    assert r.status_code == 200 and r.mimetype == "text/csv"
    body = r.get_data(as_text=True)
    assert "07700 900123" not in body and "Patel" not in body
    rows = list(csv.DictReader(io.StringIO(body)))
    assert len(rows) == 2
    assert all(not row["comment (redacted)"].startswith("=") for row in rows)
    assert db.session.scalar(select(AuditEvent.action).where(
        AuditEvent.user_id == user.id, AuditEvent.object_type == "feedback_list",
        AuditEvent.action == "export")) == "export"


def test_council_members_see_only_redacted_comments_and_no_urgent_ones(
    client, auth, make_user, make_service, make_item,
):
    service = make_service()
    make_item("Nurse Sarah Jones was so kind to my mum.", service=service)
    make_item(URGENT, service=service)
    login_as(auth, make_user, role="council")
    page = text_of(client.get("/council/feedback"))
    assert "was so kind to my mum" in page
    assert "Sarah" not in page and "Jones" not in page
    assert "hits me" not in page
    assert client.get("/feedback").status_code == 403


def test_the_inbox_is_for_staff_only(client, auth, make_user):
    login_as(auth, make_user, role="council")
    assert client.get("/feedback").status_code == 403
    assert client.get("/feedback/new").status_code == 403


def test_bulk_actions_ignore_comments_the_user_may_not_see(
    client, auth, make_user, make_service, make_item, db,
):
    mine, other = make_service(), make_service()
    hidden = make_item("Another service's comment.", service=other)
    login_as(auth, make_user, services=[mine])
    token = csrf_from(client.get("/feedback"))
    client.post("/feedback/bulk", data={"csrf_token": token, "ids": [str(hidden.id)],
                                        "action": "close", "back": "/feedback"})
    db.session.expire_all()
    assert db.session.get(FeedbackItem, hidden.id).status == "new"


def test_the_services_page_shows_waiting_comments_and_the_public_page(
    client, auth, make_user, make_service, make_item,
):
    service = make_service()
    make_item("Kind staff.", service=service)
    make_item("Long wait.", service=service)
    login_as(auth, make_user, services=[service])
    html = client.get("/services").get_data(as_text=True)
    assert f'href="/feedback?service={service.id}">2</a>' in html
    assert f'href="/tell-us/{service.slug}"' in html
