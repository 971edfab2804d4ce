"""Safety levels after intake: staff raise or lower them with a reason, and the screen learns.

A comment's safety level (``urgent``, ``review`` or ``none``) starts as the safety
screen's verdict (:attr:`FeedbackItem.screen_level`) and is changed only here, always
with a reason, in the item's history. Each change is a :class:`SafetyChange`: a
``miss`` when staff flag what the screen let through, a ``false_alarm`` when they clear
what it flagged. The clinical safety officer reads those (redacted) on the misses page,
tries their wording against the rules and counts them by month.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import exists, func, select

from engage.alerts.models import Alert
from engage.alerts.services import raise_feedback_alert
from engage.audit.services import record
from engage.core.db import utcnow
from engage.extensions import db
from engage.feedback.models import (
    SAFETY_LEVELS,
    SAFETY_URGENCIES,
    FeedbackItem,
    SafetyChange,
)
from engage.feedback.services import FeedbackError, _event, priority_of, target_for
from engage.feedback.text.safety import Level, SafetyRules

#: Longest reason kept.
MAX_REASON = 2000
#: Months the officer's page counts back.
MONTHS = 12


def _kind(item: FeedbackItem, old: str, new: str) -> str:
    """What a change from ``old`` to ``new`` teaches about the screen."""
    if old == Level.NONE and new != Level.NONE:
        if item.screen_level == Level.NONE and not _has_change(item, "miss"):
            return "miss"
        return "raise"
    if new == Level.NONE:
        if item.screen_level != Level.NONE and not _has_change(item, "false_alarm"):
            return "false_alarm"
        return "lower"
    return "raise" if Level(new).rank > Level(old).rank else "lower"


def _has_change(item: FeedbackItem, kind: str) -> bool:
    return bool(db.session.scalar(select(exists().where(
        SafetyChange.item_id == item.id, SafetyChange.kind == kind))))


def set_safety_level(item: FeedbackItem, level: str, user: Any, reason: str, *,
                     now: datetime | None = None) -> SafetyChange | None:
    """Raise or lower the comment's safety level, saying why; None when it is there already.

    Raising it to ``review`` or ``urgent`` gives a person its target from now;
    raising it to ``urgent`` alerts the service's clinicians unless the comment has an
    alert already. Lowering an urgent comment leaves its alert open: a clinician still
    acknowledges it. Raises FeedbackError (field ``level`` or ``reason``).
    """
    if level not in SAFETY_LEVELS:
        raise FeedbackError(_l("Choose a safety level from the list."), "level")
    reason = (reason or "").strip()
    if not reason:
        raise FeedbackError(_l("Say why you are changing the safety level."), "reason")
    old = item.safety_level
    if level == old:
        return None
    now = now or utcnow()
    kind = _kind(item, old, level)
    item.urgency = priority_of(level, item.shown_sentiment)
    if level in SAFETY_URGENCIES and Level(level).rank > Level(old).rank:
        item.due_at = now + timedelta(hours=current_app.config["FEEDBACK_TARGET_HOURS"][level])
    else:
        item.due_at = target_for(item.urgency, item.received_at)
    change = SafetyChange(
        item_id=item.id, service_id=item.service_id, at=now, user_id=getattr(user, "id", None),
        kind=kind, from_level=old, to_level=level, screen_level=item.screen_level,
        rules_version=item.safety_rules_version, reason=reason[:MAX_REASON],
        wording=item.redacted_text, language=item.language)
    db.session.add(change)
    _event(item, "safety", user, at=now, old=old, new=level, kind=kind,
           reason=reason[:MAX_REASON])
    record("update", "feedback_item", item.id, patient_id=item.patient_id, change="safety",
           old=old, new=level, kind=kind)
    if level == Level.URGENT and not db.session.scalar(
            select(exists().where(Alert.feedback_item_id == item.id))):
        db.session.flush()
        raise_feedback_alert(item, now=now, kind=None if item.safety_category
                             else "comment-staff")
    db.session.flush()
    return change


# --- what the clinical safety officer reads ---------------------------------------------

@dataclass
class Miss:
    """A change the officer reviews, with what the rules in force say of its wording now."""

    change: SafetyChange
    level_now: str
    reason_now: str | None


def changes(kind: str | None = None, *, limit: int = 200) -> list[SafetyChange]:
    """Misses and false alarms (or every change), newest first."""
    query = select(SafetyChange).order_by(SafetyChange.at.desc(), SafetyChange.id.desc())
    if kind:
        query = query.where(SafetyChange.kind == kind)
    return list(db.session.scalars(query.limit(limit)))


def with_rules_now(rows: list[SafetyChange], rules: SafetyRules) -> list[Miss]:
    """Each change with the level the rules in force give its wording today: a miss the
    officer has written a rule for reads ``review`` or ``urgent`` here."""
    out = []
    for row in rows:
        result = rules.check(row.wording, row.language)
        out.append(Miss(row, result.level, result.reason))
    return out


@dataclass
class Month:
    month: date
    #: Comments the screen flagged when they came in.
    flagged_urgent: int = 0
    flagged_review: int = 0
    received: int = 0
    misses: int = 0
    false_alarms: int = 0

    @property
    def flagged(self) -> int:
        return self.flagged_urgent + self.flagged_review


def _month_start(day: date) -> date:
    return day.replace(day=1)


def _months_back(today: date, months: int) -> list[date]:
    first = _month_start(today)
    out = []
    for _n in range(months):
        out.append(first)
        first = _month_start(first - timedelta(days=1))
    return list(reversed(out))


def _utc_day(column: Any) -> Any:
    """The UTC calendar day of a timestamp column. PostgreSQL's ``date()`` of a
    ``timestamptz`` uses the session's time zone; SQLite stores UTC already."""
    if db.session.get_bind().dialect.name == "postgresql":
        return func.date(func.timezone("UTC", column))
    return func.date(column)


def monthly_counts(now: datetime | None = None, months: int = MONTHS) -> list[Month]:
    """Per calendar month (UTC), oldest first: comments received, flagged by the screen,
    and the misses and false alarms staff recorded. Counted by the database; grouped by
    month here, from one row per day, so the query is the same on SQLite and PostgreSQL."""
    now = now or utcnow()
    starts = _months_back(now.astimezone(UTC).date(), months)
    since = datetime.combine(starts[0], datetime.min.time(), tzinfo=UTC)
    by_month = {m: Month(m) for m in starts}

    def bucket(value: Any) -> Month | None:
        day = value if isinstance(value, date) else date.fromisoformat(str(value)[:10])
        return by_month.get(_month_start(day))

    received_day = _utc_day(FeedbackItem.received_at)
    for day, level, count in db.session.execute(
            select(received_day, FeedbackItem.screen_level, func.count())
            .where(FeedbackItem.received_at >= since)
            .group_by(received_day, FeedbackItem.screen_level)):
        month = bucket(day)
        if month is None:
            continue
        month.received += count
        if level == Level.URGENT:
            month.flagged_urgent += count
        elif level == Level.REVIEW:
            month.flagged_review += count
    change_day = _utc_day(SafetyChange.at)
    for day, kind, count in db.session.execute(
            select(change_day, SafetyChange.kind, func.count())
            .where(SafetyChange.at >= since, SafetyChange.kind.in_(("miss", "false_alarm")))
            .group_by(change_day, SafetyChange.kind)):
        month = bucket(day)
        if month is None:
            continue
        if kind == "miss":
            month.misses += count
        else:
            month.false_alarms += count
    return [by_month[m] for m in starts]
