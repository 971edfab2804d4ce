"""The weekly digest per improvement team: counts by theme, the change, redacted quotes.

Sent by the ``feedback.digest`` job after the week ends (Monday 07:00 UTC by default).
Each team's digest for a week is claimed by inserting its :class:`TeamDigest` row, so
two scheduler processes send it once; a failed send is tried again at the next run.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from flask import current_app, render_template
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError

from engage.core import mail
from engage.core.db import claim, utcnow
from engage.extensions import db
from engage.feedback.models import FeedbackItem, FeedbackRoute, TeamDigest, Theme
from engage.teams.models import ImprovementTeam

#: Themes listed in a digest, and quotes per theme.
TOP_THEMES = 8
QUOTES_PER_THEME = 2


@dataclass
class ThemeLine:
    theme: str
    count: int
    #: Average per week over the four weeks before.
    before: float

    @property
    def change(self) -> float:
        return self.count - self.before


@dataclass
class Digest:
    team: ImprovementTeam
    week_start: date
    total: int = 0
    total_before: float = 0.0
    urgent: int = 0
    negative: int = 0
    lines: list[ThemeLine] = field(default_factory=list)
    quotes: dict[str, list[str]] = field(default_factory=dict)

    @property
    def week_end(self) -> date:
        return self.week_start + timedelta(days=6)


def last_full_week(now: datetime) -> date:
    """The Monday of the last week (Monday to Sunday, UTC) that has ended."""
    today = now.astimezone(UTC).date()
    return today - timedelta(days=today.weekday() + 7)


def _start(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def build_digest(team: ImprovementTeam, week_start: date) -> Digest:
    """What the team's queue received in the week, against the four weeks before."""
    start = _start(week_start)
    end = start + timedelta(days=7)
    before_start = start - timedelta(days=28)
    items = db.session.scalars(
        select(FeedbackItem).join(FeedbackRoute, FeedbackRoute.item_id == FeedbackItem.id)
        .where(FeedbackRoute.team_id == team.id, FeedbackItem.received_at >= before_start,
               FeedbackItem.received_at < end)
        .order_by(FeedbackItem.received_at)
    ).all()
    digest = Digest(team=team, week_start=week_start)
    now_counts: Counter[str] = Counter()
    before_counts: Counter[str] = Counter()
    candidates: dict[str, list[tuple[float, FeedbackItem]]] = defaultdict(list)
    names: dict[int, str] = {t.id: t.name for t in db.session.scalars(select(Theme))}
    for item in items:
        this_week = item.received_at >= start
        themes = item.live_themes()
        if this_week:
            digest.total += 1
            digest.urgent += item.urgency == "urgent"
            digest.negative += (item.shown_sentiment or 0) >= 4
        else:
            digest.total_before += 0.25
        for row in themes:
            name = names.get(row.theme_id, "?")
            if this_week:
                now_counts[name] += 1
                candidates[name].append((_quote_rank(item, row.confidence), item))
            else:
                before_counts[name] += 1
    for name in set(now_counts) | set(before_counts):
        digest.lines.append(ThemeLine(name, now_counts[name], before_counts[name] / 4))
    digest.lines.sort(key=lambda line: (-line.count, -line.before, line.theme))
    digest.lines = digest.lines[:TOP_THEMES]
    for line in digest.lines:
        ranked = sorted(candidates.get(line.theme, []), key=lambda pair: -pair[0])
        quotes: list[str] = []
        for _rank, item in ranked:
            text = item.redacted_text.strip()
            if text and text not in quotes:
                quotes.append(text if len(text) <= 400 else text[:397].rstrip() + "...")
            if len(quotes) == QUOTES_PER_THEME:
                break
        digest.quotes[line.theme] = quotes
    return digest


def _quote_rank(item: FeedbackItem, confidence: float | None) -> float:
    """Representative: confirmed by staff, clearly on the theme, long enough to say something."""
    length = len(item.redacted_text)
    fit = 1.0 if 40 <= length <= 300 else 0.5 if length > 15 else 0.0
    return fit + (1.0 if item.themes_confirmed else 0.0) + (confidence or 0.5)


def recipients(team: ImprovementTeam) -> list[tuple[str, str]]:
    """(address, language) for each active member, and the team's own mailbox."""
    default = current_app.config["BABEL_DEFAULT_LOCALE"]
    people = [(u.email, u.language or default) for u in team.members if u.active]
    if team.email and team.email.lower() not in {p[0].lower() for p in people}:
        people.append((team.email, default))
    return people


def render_digest(digest: Digest, language: str, to: str) -> Any:
    base = current_app.config["BASE_URL"]
    context = {"d": digest, "queue_url": f"{base}/teams/{digest.team.slug}",
               "language": language}
    with force_locale(language):
        subject = _("%(team)s: feedback digest for the week of %(date)s",
                    team=digest.team.name, date=digest.week_start.isoformat())
        return mail.build_message(
            to, subject, render_template("feedback/digest_email.txt", **context),
            html=render_template("feedback/digest_email.html", **context),
            headers={"Content-Language": language})


def send_digests(now: datetime | None = None) -> int:
    """The ``feedback.digest`` job: send each active team its digest for the last week, once.

    Waits until ``DIGEST_WEEKDAY`` at ``DIGEST_HOUR`` (UTC) of the following week.
    Returns the digests sent. Commits.
    """
    now = now or utcnow()
    cfg = current_app.config
    week = last_full_week(now)
    due_from = _start(week + timedelta(days=7 + cfg["DIGEST_WEEKDAY"])) + timedelta(
        hours=cfg["DIGEST_HOUR"])
    if now < due_from:
        return 0
    sent = 0
    teams = db.session.scalars(select(ImprovementTeam).where(ImprovementTeam.active.is_(True))
                               .order_by(ImprovementTeam.id)).all()
    for team in teams:
        if not _claim(team.id, week, now):
            continue
        digest = build_digest(team, week)
        messages = [render_digest(digest, language, address)
                    for address, language in recipients(team)]
        # Not retried when nobody is there: not until an admin adds a member or a mailbox.
        sent += deliver(TeamDigest, (team.id, week), messages, now=now,
                        what=f"digest for team {team.slug}",
                        nobody=("skipped", "no active member and no team mailbox"))
    return sent


def deliver(model: Any, key: tuple[Any, ...], messages: list[Any], *, now: datetime,
            what: str, nobody: tuple[str, str], **fields: Any) -> bool:
    """Send a claimed digest's messages and record on its row how that went; True when
    every message went. Commits first, so no transaction (SQLite's write lock) is open
    while mail goes out. ``nobody`` is the status and error when there is no message;
    ``fields`` are set on the row too."""
    db.session.commit()
    errors = [str(e) for e in mail.send_many(messages) if e is not None] if messages else []
    row = db.session.get(model, key)
    assert row is not None
    for name, value in fields.items():
        setattr(row, name, value)
    row.recipients = len(messages) - len(errors)
    if not messages:
        row.status, row.error = nobody
        log = current_app.logger.error if row.status == "failed" else current_app.logger.warning
        log("%s: %s", what, row.error)
    elif errors:
        row.status, row.error = "failed", "; ".join(errors)
        current_app.logger.error("%s failed: %s", what, row.error)
    else:
        row.status, row.sent_at, row.error = "sent", now, None
    db.session.commit()
    return row.status == "sent"


def _claim(team_id: int, week: date, now: datetime) -> bool:
    """Take the team's digest for the week (see :func:`claim_digest`)."""
    return claim_digest(TeamDigest, now, team_id=team_id, week_start=week)


def claim_digest(model: Any, now: datetime, **key: Any) -> bool:
    """Take a digest row (``model`` keyed by ``key``, with ``status`` and ``created_at``):
    insert it as ``sending``, or take over one whose last try failed or whose sender died
    an hour ago. Two processes never both win. Commits."""
    try:
        with db.session.begin_nested():
            db.session.add(model(status="sending", created_at=now, **key))
        db.session.commit()
        return True
    except IntegrityError:
        db.session.rollback()
    won = claim(update(model).where(
        *(getattr(model, name) == value for name, value in key.items()),
        or_(model.status == "failed",
            and_(model.status == "sending", model.created_at < now - timedelta(hours=1))))
        .values(status="sending", created_at=now))
    db.session.commit()
    return bool(won)
