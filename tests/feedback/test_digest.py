"""The weekly team digest: counts by theme, the change, redacted quotes, sent once."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select

from engage.feedback.digest import build_digest, last_full_week, send_digests
from engage.feedback.models import TeamDigest
from engage.feedback.services import confirm_themes, route_to_team

MONDAY = date(2027, 3, 1)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def routed(make_item, team, user, text, when):
    item = make_item(text, received_at=when)
    route_to_team(item, team, user)
    confirm_themes(item, user)
    return item


def test_the_last_full_week_starts_on_the_monday_before():
    assert last_full_week(at("2027-03-08T08:00")) == MONDAY
    assert last_full_week(at("2027-03-14T23:00")) == MONDAY


def test_a_digest_counts_by_theme_against_four_weeks_before_with_redacted_quotes(
    make_item, make_team, make_user, db,
):
    admin = make_user("admin")
    team = make_team()
    week = datetime(2027, 3, 1, 12, tzinfo=UTC)
    for n in range(3):
        routed(make_item, team, admin, f"I waited four hours to be seen, visit {n}. "
               "Call Mrs Jones on 07700 900123.", week + timedelta(days=n))
    routed(make_item, team, admin, "I waited two hours for my appointment.",
           week - timedelta(days=10))
    db.session.commit()
    digest = build_digest(team, MONDAY)
    assert digest.total == 3 and digest.total_before == 0.25
    line = next(line for line in digest.lines if line.theme == "Timeliness of care")
    assert (line.count, line.before) == (3, 0.25)
    quotes = digest.quotes["Timeliness of care"]
    assert quotes and all("07700" not in q and "Jones" not in q for q in quotes)


def test_digests_go_once_to_every_member_after_the_week(
    app, make_item, make_team, make_user, smtp, db,
):
    member = make_user("staff", language="es")
    team = make_team(members=[member], email="access-team@hospital.test")
    routed(make_item, team, make_user("admin"), "The nurses were kind.",
           datetime(2027, 3, 2, 9, tzinfo=UTC))
    db.session.commit()
    assert send_digests(at("2027-03-08T06:59")) == 0  # before Monday 07:00
    assert send_digests(at("2027-03-08T07:05")) == 1
    assert sorted(m["To"] for m in smtp.messages) == sorted(
        [member.email, "access-team@hospital.test"])
    spanish = next(m for m in smtp.messages if m["To"] == member.email)
    assert spanish["Content-Language"] == "es"
    assert send_digests(at("2027-03-08T08:05")) == 0  # once per week
    assert len(smtp.messages) == 2
    row = db.session.get(TeamDigest, (team.id, MONDAY))
    assert row.status == "sent" and row.recipients == 2


def test_a_failed_digest_is_tried_again_at_the_next_run(app, make_team, make_user, smtp, db):
    team = make_team(members=[make_user("staff")])
    port = app.config["SMTP_PORT"]
    app.config["SMTP_PORT"] = 1  # nothing listens there
    try:
        assert send_digests(at("2027-03-08T07:05")) == 0
    finally:
        app.config["SMTP_PORT"] = port
    assert db.session.get(TeamDigest, (team.id, MONDAY)).status == "failed"
    assert send_digests(at("2027-03-08T08:05")) == 1
    assert db.session.scalar(select(TeamDigest.status)) == "sent"


def test_a_team_nobody_can_read_is_skipped_not_retried(make_team, smtp, db):
    team = make_team()
    assert send_digests(at("2027-03-08T07:05")) == 0
    assert db.session.get(TeamDigest, (team.id, MONDAY)).status == "skipped"
