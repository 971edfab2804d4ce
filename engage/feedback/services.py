"""Taking comments in, and every step staff take with them: themes, status, routing, replies.

Each function writes through the session and flushes; the request (or the CLI
command, or the job) commits. Every change is a :class:`FeedbackEvent` on the item
and an audit event, in the same transaction.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, case, exists, func, or_, select
from sqlalchemy.sql import Select

import surveys
from engage.audit.services import record
from engage.core.db import utcnow
from engage.extensions import db
from engage.feedback.analysis import Analysis, analyse
from engage.feedback.labels import theme_label
from engage.feedback.models import (
    OPEN_STATUSES,
    RESPONDENTS,
    SAFETY_URGENCIES,
    STATUSES,
    URGENCIES,
    FeedbackEvent,
    FeedbackItem,
    FeedbackRoute,
    ItemTheme,
    Reply,
    RoutingRule,
    Theme,
)
from engage.feedback.themes import resolve, theme_index
from engage.org.models import Service
from engage.patients.models import Patient
from engage.survey.models import Response
from engage.teams.models import ImprovementTeam, team_member

#: Longest comment taken in; the public page and staff form say so.
MAX_TEXT = 5000
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
PHONE = re.compile(r"^\+?[0-9][0-9 ()-]{6,20}$")


class FeedbackError(ValueError):
    """Input that cannot be taken; ``field`` says where, the message what to fix."""

    def __init__(self, message: Any, field: str | None = None) -> None:
        super().__init__(str(message))
        self.field = field


# --- intake ----------------------------------------------------------------------------

@dataclass
class Contact:
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    consent: bool = False


def check_contact(contact: Contact) -> dict[str, str]:
    """Problems with contact details, by field: empty when fine."""
    errors: dict[str, str] = {}
    if contact.email and not EMAIL.match(contact.email):
        errors["email"] = str(_l("Enter an email address like name@example.org."))
    if contact.phone and not PHONE.match(contact.phone):
        errors["phone"] = str(_l("Enter a phone number using digits, like 07700 900123."))
    if contact.consent and not (contact.email or contact.phone):
        errors["email"] = str(_l("Give an email address or a phone number to reply to."))
    return errors


def target_for(urgency: str, received_at: datetime) -> datetime:
    hours = current_app.config["FEEDBACK_TARGET_HOURS"][urgency]
    return received_at + timedelta(hours=hours)


def priority_of(level: str, sentiment: int | None) -> str:
    """The urgency of a comment at ``level`` (a safety level): the level itself when it is
    ``urgent`` or ``review``, else ``high`` for a very negative comment and ``normal``."""
    if level in SAFETY_URGENCIES:
        return level
    return "high" if sentiment == 5 else "normal"


def intake(
    *, service: Service, text: str, source: str, question: str | None = None,
    language: str = "en", received_at: datetime | None = None,
    response: Response | None = None, link_id: str | None = None,
    patient: Patient | None = None, contact: Contact | None = None,
    received_via: str | None = None, respondent: str | None = None,
    created_by: Any = None, form_nonce: str | None = None, notify: bool = True,
    now: datetime | None = None, repeat_of: Any = None,
) -> FeedbackItem:
    """Take in one comment: analyse it, suggest themes, flag it, and raise an alert if urgent.

    The caller checks the input first (:func:`check_contact`, length); this only
    refuses what must never be stored. ``repeat_of``: an open alert that this comment
    repeats (the same urgent text from the same place, ``feedback/flood.py``); an urgent
    comment then joins it instead of raising and emailing another.
    """
    from engage.alerts.services import raise_feedback_alert

    text = (text or "").strip()
    if not text:
        raise FeedbackError(_l("Write the comment."), "text")
    if len(text) > MAX_TEXT:
        raise FeedbackError(_l("Please shorten the comment to %(max)s characters or fewer.",
                               max=MAX_TEXT), "text")
    now = now or utcnow()
    received_at = received_at or now
    contact = contact or Contact()
    extra = [part for part in (contact.name or "").split() if len(part) > 1]
    analysis = analyse(text, question, language, extra_names=extra)
    prediction = analysis.prediction
    screen_level = analysis.safety.level
    urgency = priority_of(screen_level, prediction.sentiment)
    item = FeedbackItem(
        service_id=service.id, source=source, received_via=received_via,
        response_id=response.id if response else None, link_id=link_id,
        patient_id=patient.id if patient else None,
        respondent=respondent if respondent in RESPONDENTS else None,
        question=question, text=text, language=language,
        redacted_text=analysis.redacted,
        pii=[{"kind": s.kind, "start": s.start, "end": s.end} for s in analysis.pii],
        suggested_sentiment=prediction.sentiment,
        sentiment_confidence=round(prediction.sentiment_confidence, 4),
        urgency=urgency, screen_level=screen_level, safety_reason=analysis.safety.reason,
        safety_category=analysis.safety.category,
        safety_matches=[{"rule": m.rule, "start": m.start, "end": m.end, "level": m.level}
                        for m in analysis.safety.matches],
        safety_rules_version=analysis.rules_version[:40],
        model_version=analysis.model_version[:100],
        status="new", received_at=received_at, created_at=now, status_changed_at=now,
        due_at=target_for(urgency, received_at),
        created_by_id=getattr(created_by, "id", None),
        contact_name=(contact.name or "").strip()[:200] or None,
        contact_email=(contact.email or "").strip()[:254] or None,
        contact_phone=(contact.phone or "").strip()[:32] or None,
        contact_consent=bool(contact.consent and (contact.email or contact.phone)),
        form_nonce=form_nonce,
    )
    db.session.add(item)
    db.session.flush()
    _suggest_themes(item, analysis)
    _event(item, "received", created_by, to_status="new", source=source, at=now,
           urgency=urgency, **({"rule": analysis.safety.reason, "level": screen_level}
                               if analysis.safety.flagged else {}))
    record("create", "feedback_item", item.id, patient_id=item.patient_id,
           actor=None if created_by else ("patient-link" if source == "survey" else "web"),
           source=source)
    if analysis.safety.urgent:
        if repeat_of is not None:
            _event(item, "repeat", None, at=now, alert=repeat_of.id)
            record("update", "alert", repeat_of.id, patient_id=repeat_of.patient_id,
                   actor="web", repeated_by=item.id)
        else:
            raise_feedback_alert(item, notify=notify, now=now)
    return item


def _suggest_themes(item: FeedbackItem, analysis: Analysis) -> None:
    index = theme_index()
    chosen: dict[int, float] = {}
    for key, confidence in analysis.prediction.themes:
        theme = index.get(key)
        if theme is not None and theme.id not in chosen:
            chosen[theme.id] = round(float(confidence), 4)
    for theme_id, confidence in chosen.items():
        item.themes.append(ItemTheme(theme_id=theme_id, confidence=confidence,
                                     status="suggested"))
    db.session.flush()


def intake_response(response: Response, notify: bool = True) -> list[FeedbackItem]:
    """An item for every free-text answer of a submitted response (once: a second call
    finds them there)."""
    instrument = surveys.get(response.instrument_id)
    done = set(db.session.scalars(
        select(FeedbackItem.link_id).where(FeedbackItem.response_id == response.id)))
    items = []
    for answer in response.answers:
        text = (answer.value_text or "").strip()
        if not text or answer.link_id in done:
            continue
        try:
            item_def = instrument.item(answer.link_id)
        except (KeyError, surveys.UnknownInstrument):
            continue
        if item_def.type != "text":
            continue
        items.append(intake(
            service=response.service, text=text[:MAX_TEXT], source="survey",
            question=item_def.text_in("en"), language=response.language,
            received_at=response.submitted_at, response=response, link_id=answer.link_id,
            patient=response.patient,
            respondent=_respondent_of(response),
            notify=notify, now=response.submitted_at,
        ))
    return items


def intake_pending(now: datetime | None = None, days: int = 30, batch: int = 200) -> int:
    """Take in free-text answers that a submit could not (the ``feedback.intake`` job).

    Looks back ``days``; commits after each response. Safe to run in two processes:
    an item is unique per answer, so the second insert is refused and skipped.
    """
    from sqlalchemy.exc import IntegrityError

    from engage.survey.models import Answer

    now = now or utcnow()
    missing = (
        select(Response.id).join(Answer, Answer.response_id == Response.id)
        .outerjoin(FeedbackItem, and_(FeedbackItem.response_id == Response.id,
                                      FeedbackItem.link_id == Answer.link_id))
        .where(Response.submitted_at.is_not(None),
               Response.submitted_at >= now - timedelta(days=days),
               Answer.value_text.is_not(None), Answer.value_text != "",
               FeedbackItem.id.is_(None))
        .distinct().limit(batch)
    )
    taken = 0
    for response_id in list(db.session.scalars(missing)):
        response = db.session.get(Response, response_id)
        if response is None:
            continue
        try:
            with db.session.begin_nested():
                taken += len(intake_response(response))
        except IntegrityError:
            pass  # another process took this one in
        db.session.commit()
        from engage.core.db import run_after_commit

        run_after_commit()
    return taken


def _respondent_of(response: Response) -> str:
    """Who wrote a survey comment, in the feedback page's terms."""
    if response.respondent != "proxy":
        return "patient"
    return {"carer": "carer", "other": "other"}.get(response.proxy_relationship or "",
                                                    "family")


def new_form_nonce() -> str:
    return secrets.token_urlsafe(24)


def find_by_nonce(nonce: str) -> FeedbackItem | None:
    if not nonce or len(nonce) > 64:
        return None
    return db.session.scalar(select(FeedbackItem).where(FeedbackItem.form_nonce == nonce))


# --- history -----------------------------------------------------------------------------

def _event(item: FeedbackItem, action: str, user: Any = None, *,
           from_status: str | None = None, to_status: str | None = None,
           at: datetime | None = None, **detail: Any) -> FeedbackEvent:
    event = FeedbackEvent(item_id=item.id, action=action, user_id=getattr(user, "id", None),
                          from_status=from_status, to_status=to_status, detail=detail,
                          at=at or utcnow())
    db.session.add(event)
    return event


def _move(item: FeedbackItem, status: str, user: Any, action: str, **detail: Any) -> bool:
    """Set the status (recording the step); False when it already was."""
    if item.status == status:
        return False
    _event(item, action, user, from_status=item.status, to_status=status, **detail)
    item.status = status
    item.status_changed_at = utcnow()
    return True


def events(item: FeedbackItem) -> list[FeedbackEvent]:
    return list(db.session.scalars(
        select(FeedbackEvent).where(FeedbackEvent.item_id == item.id)
        .order_by(FeedbackEvent.at, FeedbackEvent.id)))


# --- triage --------------------------------------------------------------------------------

def confirm_themes(item: FeedbackItem, user: Any, theme_ids: Iterable[int] | None = None, *,
                   sentiment: int | None = None) -> None:
    """Staff confirm the item's themes: ``theme_ids``, or the suggestions as they are.

    Chosen themes become ``confirmed``; suggestions left out become ``rejected`` (the
    model learns from both). A new item becomes ``triaged``, then goes to the teams
    whose routing rules match.
    """
    rows = {t.theme_id: t for t in item.themes}
    if theme_ids is None:
        wanted = [t.theme_id for t in item.live_themes()]
    else:
        wanted = list(dict.fromkeys(int(i) for i in theme_ids))
        themes = {t.id: t for t in db.session.scalars(select(Theme).where(Theme.id.in_(wanted)))}
        missing = [i for i in wanted if i not in themes]
        if missing:
            raise FeedbackError(_l("That theme does not exist."), "themes")
        # A theme merged since the page was drawn counts as the one it became.
        wanted = list(dict.fromkeys(
            t.id for t in (resolve(themes[i]) for i in wanted) if t is not None))
    before = sorted(t.theme_id for t in item.live_themes())
    for theme_id, row in rows.items():
        if theme_id in wanted:
            row.status = "confirmed"
        elif row.status != "rejected":
            row.status = "rejected"
    for theme_id in wanted:
        if theme_id not in rows:
            item.themes.append(ItemTheme(theme_id=theme_id, confidence=None,
                                         status="confirmed"))
    if sentiment is not None:
        if sentiment not in (1, 2, 3, 4, 5):
            raise FeedbackError(_l("Choose a sentiment from the list."), "sentiment")
        item.sentiment = sentiment
    elif item.sentiment is None:
        item.sentiment = item.suggested_sentiment
    first = item.themes_confirmed_at is None
    item.themes_confirmed_at = utcnow()
    item.themes_confirmed_by_id = getattr(user, "id", None)
    _event(item, "themes", user, before=before, after=sorted(wanted),
           sentiment=item.sentiment, first=first)
    if item.status == "new":
        _move(item, "triaged", user, "status")
    db.session.flush()
    route(item, user)
    record("update", "feedback_item", item.id, patient_id=item.patient_id, change="themes")


def route(item: FeedbackItem, user: Any = None) -> list[FeedbackRoute]:
    """Send the item to every team a routing rule names for its confirmed themes.

    A rule for the item's service wins over one for any service. Teams already
    holding the item are skipped, so calling this again changes nothing.
    """
    theme_ids = [t.theme_id for t in item.themes if t.status == "confirmed"]
    if not theme_ids:
        return []
    rules = db.session.scalars(
        select(RoutingRule).join(ImprovementTeam, ImprovementTeam.id == RoutingRule.team_id)
        .where(RoutingRule.theme_id.in_(theme_ids), ImprovementTeam.active.is_(True),
               or_(RoutingRule.service_id == item.service_id,
                   RoutingRule.service_id.is_(None)))
        .order_by(RoutingRule.service_id.is_(None), RoutingRule.id)
    ).all()
    chosen: dict[int, RoutingRule] = {}
    specific = {r.theme_id for r in rules if r.service_id is not None}
    for rule in rules:
        if rule.service_id is None and rule.theme_id in specific:
            continue  # this service has its own rule for the theme
        chosen.setdefault(rule.team_id, rule)
    have = {r.team_id for r in item.routes}
    added = []
    for team_id, rule in chosen.items():
        if team_id in have:
            continue
        new = FeedbackRoute(team_id=team_id, theme_id=rule.theme_id,
                            routed_by_id=getattr(user, "id", None))
        item.routes.append(new)
        added.append(new)
        _event(item, "route", user, team=team_id, theme=rule.theme_id, rule=rule.id)
    if added and item.status in ("new", "triaged"):
        _move(item, "routed", user, "status")
    db.session.flush()
    return added


class RoutingError(ValueError):
    """A routing rule that cannot be added; the message says why (translated)."""

    def __init__(self, message: Any, field: str) -> None:
        super().__init__(str(message))
        self.field = field


def add_rule(theme: Theme | None, service: Service | None, team: ImprovementTeam | None,
             user: Any) -> RoutingRule:
    """Send comments with ``theme`` (in ``service``; any service when None) to ``team``.

    One rule per theme and service: a second one for the same pair is refused, naming
    the team that already gets those comments. Audited; flushes. Raises RoutingError.
    """
    if theme is None or theme.status != "active":
        raise RoutingError(_l("Choose a theme."), "theme")
    if team is None or not team.active:
        raise RoutingError(_l("Choose a team."), "team")
    existing = db.session.scalar(select(RoutingRule).where(
        RoutingRule.theme_id == theme.id,
        RoutingRule.service_id == service.id if service is not None
        else RoutingRule.service_id.is_(None)))
    if existing is not None:
        if service is None:
            message = _l("Comments about “%(theme)s” in any service already go to "
                         "%(team)s. Delete that rule first to send them elsewhere.",
                         theme=theme_label(theme), team=existing.team.name)
        else:
            message = _l("Comments about “%(theme)s” in %(service)s already go to "
                         "%(team)s. Delete that rule first to send them elsewhere.",
                         theme=theme_label(theme), service=service.name,
                         team=existing.team.name)
        raise RoutingError(message, "theme")
    rule = RoutingRule(theme_id=theme.id, service_id=service.id if service else None,
                       team_id=team.id, created_by_id=getattr(user, "id", None))
    db.session.add(rule)
    db.session.flush()
    record("create", "routing_rule", rule.id, theme=theme.id,
           service=service.id if service else None, team=team.id)
    return rule


def delete_rule(rule: RoutingRule, user: Any) -> None:
    """Delete a routing rule; comments already routed stay in the team's queue. Audited."""
    record("delete", "routing_rule", rule.id, theme=rule.theme_id, service=rule.service_id,
           team=rule.team_id, by=getattr(user, "id", None))
    db.session.delete(rule)
    db.session.flush()


def route_to_team(item: FeedbackItem, team: ImprovementTeam, user: Any) -> bool:
    """Put the item in a team's queue by hand; False if it was there already."""
    if any(r.team_id == team.id for r in item.routes):
        return False
    item.routes.append(FeedbackRoute(team_id=team.id, theme_id=None, routed_by_id=user.id))
    _event(item, "route", user, team=team.id, manual=True)
    if item.status in ("new", "triaged"):
        _move(item, "routed", user, "status")
    db.session.flush()
    record("update", "feedback_item", item.id, patient_id=item.patient_id, change="route")
    return True


def unroute(item: FeedbackItem, team: ImprovementTeam, user: Any) -> bool:
    route_row = next((r for r in item.routes if r.team_id == team.id), None)
    if route_row is None:
        return False
    item.routes.remove(route_row)
    _event(item, "unroute", user, team=team.id)
    if not item.routes and item.status == "routed":
        _move(item, "triaged", user, "status")
    db.session.flush()
    record("update", "feedback_item", item.id, patient_id=item.patient_id, change="unroute")
    return True


def set_status(item: FeedbackItem, status: str, user: Any, note: str = "") -> bool:
    """Move the item along the workflow by hand (any step, including reopening)."""
    if status not in STATUSES:
        raise FeedbackError(_l("Choose a status from the list."), "status")
    note = (note or "").strip()[:2000]
    changed = _move(item, status, user, "status", **({"note": note} if note else {}))
    if changed:
        record("update", "feedback_item", item.id, patient_id=item.patient_id,
               change="status", status=status)
        db.session.flush()
    return changed


def add_note(item: FeedbackItem, user: Any, note: str) -> None:
    note = (note or "").strip()
    if not note:
        raise FeedbackError(_l("Write the note."), "note")
    _event(item, "note", user, note=note[:2000])
    record("update", "feedback_item", item.id, patient_id=item.patient_id, change="note")
    db.session.flush()


def assign(item: FeedbackItem, assignee: Any, user: Any) -> None:
    """Give the item to a member of staff (None: nobody)."""
    new_id = getattr(assignee, "id", None)
    if item.assigned_to_id == new_id:
        return
    _event(item, "assign", user, old=item.assigned_to_id, new=new_id)
    item.assigned_to_id = new_id
    record("update", "feedback_item", item.id, patient_id=item.patient_id, change="assign")
    db.session.flush()


def set_urgency(item: FeedbackItem, urgency: str, user: Any) -> None:
    """Change the priority of a comment with no safety level (``high`` or ``normal``); the
    response target follows it. Safety levels change only with a reason
    (:func:`engage.feedback.safeguarding.set_safety_level`)."""
    if urgency not in URGENCIES:
        raise FeedbackError(_l("Choose an urgency from the list."), "urgency")
    if urgency in SAFETY_URGENCIES or item.urgency in SAFETY_URGENCIES:
        raise FeedbackError(_l("Change the safety level with the safety form, and say why."),
                            "urgency")
    if urgency == item.urgency:
        return
    _event(item, "urgency", user, old=item.urgency, new=urgency)
    item.urgency = urgency
    item.due_at = target_for(urgency, item.received_at)
    record("update", "feedback_item", item.id, patient_id=item.patient_id, change="urgency")
    db.session.flush()


def bulk_confirm(items: Sequence[FeedbackItem], user: Any) -> int:
    """Confirm the suggested themes of each item not yet confirmed; returns how many."""
    done = 0
    for item in items:
        if item.themes_confirmed_at is None:
            confirm_themes(item, user)
            done += 1
    return done


def bulk_status(items: Sequence[FeedbackItem], status: str, user: Any) -> int:
    return sum(1 for item in items if set_status(item, status, user))


# --- replies -------------------------------------------------------------------------------

def send_reply(item: FeedbackItem, user: Any, *, channel: str, body: str, subject: str = "",
               language: str | None = None, template: str | None = None,
               now: datetime | None = None) -> Reply:
    """Queue a reply to the person, through the outbox (quiet hours, retries, exactly once).

    Only to someone who left contact details and agreed to be contacted.
    """
    from engage.delivery.services import queue_reply

    if not item.has_contact:
        raise FeedbackError(_l("This person did not leave contact details with their "
                               "agreement to be contacted."), "channel")
    address = item.contact_email if channel == "email" else item.contact_phone
    if channel not in ("email", "sms") or not address:
        raise FeedbackError(_l("Choose a way to reach them that they gave us."), "channel")
    body = (body or "").strip()
    if not body:
        raise FeedbackError(_l("Write the reply."), "body")
    if len(body) > 5000:
        raise FeedbackError(_l("Please shorten the reply to %(max)s characters or fewer.",
                               max=5000), "body")
    subject = (subject or "").strip()[:200]
    reply = Reply(item_id=item.id, user_id=getattr(user, "id", None), template=template,
                  channel=channel, to_address=address,
                  language=language or item.language, subject=subject, body=body,
                  created_at=now or utcnow())
    db.session.add(reply)
    db.session.flush()
    queue_reply(reply, item, now=now)
    _event(item, "reply", user, reply=reply.id, channel=channel)
    if item.status in OPEN_STATUSES:
        _move(item, "responded", user, "status")
    record("create", "feedback_reply", reply.id, patient_id=item.patient_id, channel=channel)
    db.session.flush()
    return reply


# --- who sees what, and the inbox --------------------------------------------------------

def team_ids_of(user: Any) -> list[int]:
    return list(db.session.scalars(
        select(team_member.c.team_id).where(team_member.c.user_id == user.id)))


def visible_condition(user: Any) -> Any:
    """Items a user may see: their services' items, and items routed to their teams."""
    if user.role == "admin":
        return True
    service_ids = [s.id for s in user.services]
    teams = team_ids_of(user)
    in_team = exists().where(FeedbackRoute.item_id == FeedbackItem.id,
                             FeedbackRoute.team_id.in_(teams))
    return or_(FeedbackItem.service_id.in_(service_ids), in_team)


def can_see_item(user: Any, item: FeedbackItem) -> bool:
    if user.role == "admin":
        return True
    if any(s.id == item.service_id for s in user.services):
        return True
    teams = set(team_ids_of(user))
    return any(r.team_id in teams for r in item.routes)


@dataclass
class InboxFilter:
    """What the inbox shows; every field optional. ``status`` "open" means any open status."""

    service: int | None = None
    theme: int | None = None
    team: int | None = None
    sentiment: int | None = None
    status: str = "open"
    source: str | None = None
    urgency: str | None = None
    received_from: datetime | None = None
    received_to: datetime | None = None
    overdue: bool = False
    mine: bool = False
    #: Only comments with a safety level (urgent or review).
    safety: bool = False
    q: str = ""


URGENCY_RANK = case({"urgent": 0, "review": 1, "high": 2}, value=FeedbackItem.urgency,
                    else_=3)


def inbox_query(user: Any, f: InboxFilter, now: datetime | None = None) -> Select[Any]:
    """Items matching ``f`` that ``user`` may see: urgent first, then oldest waiting."""
    now = now or utcnow()
    query = select(FeedbackItem).where(visible_condition(user))
    if f.status == "open":
        query = query.where(FeedbackItem.status.in_(OPEN_STATUSES))
    elif f.status in STATUSES:
        query = query.where(FeedbackItem.status == f.status)
    if f.service:
        query = query.where(FeedbackItem.service_id == f.service)
    if f.theme:
        query = query.where(exists().where(
            ItemTheme.item_id == FeedbackItem.id, ItemTheme.theme_id == f.theme,
            ItemTheme.status != "rejected"))
    if f.team:
        query = query.where(exists().where(
            FeedbackRoute.item_id == FeedbackItem.id, FeedbackRoute.team_id == f.team))
    if f.sentiment:
        query = query.where(func.coalesce(FeedbackItem.sentiment,
                                          FeedbackItem.suggested_sentiment) == f.sentiment)
    if f.source in ("survey", "web", "staff"):
        query = query.where(FeedbackItem.source == f.source)
    if f.urgency in URGENCIES:
        query = query.where(FeedbackItem.urgency == f.urgency)
    if f.safety:
        query = query.where(FeedbackItem.urgency.in_(SAFETY_URGENCIES))
    if f.received_from:
        query = query.where(FeedbackItem.received_at >= f.received_from)
    if f.received_to:
        query = query.where(FeedbackItem.received_at < f.received_to)
    if f.overdue:
        query = query.where(FeedbackItem.due_at < now,
                            FeedbackItem.status.in_(OPEN_STATUSES))
    if f.mine:
        query = query.where(FeedbackItem.assigned_to_id == user.id)
    if f.q:
        words = [w for w in f.q.split() if w][:5]
        query = query.where(and_(*[FeedbackItem.text.ilike(f"%{_escape_like(w)}%",
                                                           escape="\\") for w in words]))
    return query.order_by(URGENCY_RANK, FeedbackItem.received_at, FeedbackItem.id)


def _escape_like(word: str) -> str:
    return word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def is_overdue(item: FeedbackItem, now: datetime | None = None) -> bool:
    return item.status in OPEN_STATUSES and item.due_at < (now or utcnow())

