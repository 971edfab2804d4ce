"""Staff pages: the triage inbox, one comment with its workflow, staff entry, the export.

Every page that shows a comment's original text writes an audit event; the export
and the council page show only the redacted text.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask import Response as FlaskResponse
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user
from sqlalchemy import func, select
from werkzeug.wrappers import Response as WerkzeugResponse

from engage.accounts.models import User
from engage.audit.services import record, record_views
from engage.core.db import utcnow
from engage.core.i18n import LANGUAGE_NAMES
from engage.core.permissions import has_permission, require
from engage.extensions import db
from engage.feedback import replies, safeguarding, services
from engage.feedback.forms import (
    ActionForm,
    AssignForm,
    NoteForm,
    ReplyForm,
    RouteForm,
    SafetyLevelForm,
    StaffEntryForm,
    StatusForm,
    ThemesForm,
    UrgencyForm,
)
from engage.feedback.labels import (
    PII_LABELS,
    RECEIVED_VIA_LABELS,
    RESPONDENT_LABELS,
    SAFETY_CATEGORY_LABELS,
    SAFETY_CHANGE_LABELS,
    SAFETY_LEVEL_LABELS,
    SAFETY_LEVEL_NAMES,
    SENTIMENT_LABELS,
    SOURCE_LABELS,
    STATUS_LABELS,
    THEME_STATUS_LABELS,
    URGENCY_LABELS,
    category_label,
    theme_label,
)
from engage.feedback.models import (
    OPEN_STATUSES,
    RECEIVED_VIA,
    RESPONDENTS,
    SAFETY_URGENCIES,
    STATUSES,
    URGENCIES,
    FeedbackItem,
    ItemTheme,
    Reply,
)
from engage.feedback.services import Contact, FeedbackError, InboxFilter
from engage.feedback.themes import active_themes, all_themes, categories
from engage.org.models import Service
from engage.org.services import visible_services
from engage.patients.services import get_or_create_patient
from engage.teams.models import ImprovementTeam

bp = Blueprint("feedback", __name__)

PAGE_SIZE = 50
#: Items whose neighbours the item page can find, for "next" and "previous".
NEIGHBOUR_WINDOW = 5000


# --- reading the filter ------------------------------------------------------------------

def _int_arg(name: str) -> int | None:
    value = request.args.get(name, "")
    return int(value) if value.isdigit() else None


def _date_arg(name: str) -> date | None:
    try:
        return date.fromisoformat(request.args.get(name, ""))
    except ValueError:
        return None


def read_filter() -> tuple[InboxFilter, dict[str, str]]:
    """The inbox filter from the query string, and the arguments that set it (to keep them)."""
    start, end = _date_arg("from"), _date_arg("to")
    status = request.args.get("status", "open")
    f = InboxFilter(
        service=_int_arg("service"), theme=_int_arg("theme"), team=_int_arg("team"),
        sentiment=_int_arg("sentiment"),
        status=status if status in (*STATUSES, "open", "all") else "open",
        source=request.args.get("source") or None,
        urgency=request.args.get("urgency") or None,
        received_from=datetime.combine(start, time(0), tzinfo=UTC) if start else None,
        received_to=(datetime.combine(end, time(0), tzinfo=UTC) + timedelta(days=1))
        if end else None,
        overdue=request.args.get("overdue") == "1", mine=request.args.get("mine") == "1",
        safety=request.args.get("safety") == "1",
        q=request.args.get("q", "").strip()[:200],
    )
    kept = {k: v for k in ("service", "theme", "team", "sentiment", "status", "source",
                           "urgency", "from", "to", "overdue", "mine", "safety", "q")
            if (v := request.args.get(k, "").strip())}
    return f, kept


def item_or_404(item_id: int) -> FeedbackItem:
    item = db.session.get(FeedbackItem, item_id)
    if item is None or not services.can_see_item(current_user, item):
        abort(404)
    return item


def _teams() -> list[ImprovementTeam]:
    return list(db.session.scalars(select(ImprovementTeam)
                                   .where(ImprovementTeam.active.is_(True))
                                   .order_by(ImprovementTeam.name)))


def _filter_choices() -> dict[str, Any]:
    return {
        "services": visible_services(current_user),
        "themes": active_themes(),
        "teams": _teams(),
        "statuses": STATUSES, "urgencies": URGENCIES, "sources": ("survey", "web", "staff"),
    }


# --- the inbox --------------------------------------------------------------------------

@bp.route("/feedback")
@require("feedback.view")
def inbox() -> str:
    f, kept = read_filter()
    page = max(request.args.get("page", 1, type=int) or 1, 1)
    now = utcnow()
    query = services.inbox_query(current_user, f, now)
    total = db.session.scalar(select(func.count()).select_from(query.subquery())) or 0
    items = db.session.scalars(query.limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)).all()
    if items:
        record("view", "feedback_list", None, items=[i.id for i in items])
        record_views("feedback_list", [i.patient_id for i in items if i.patient_id])
    overdue_total = db.session.scalar(
        select(func.count()).select_from(
            services.inbox_query(current_user, InboxFilter(overdue=True), now).subquery()))
    review_total = db.session.scalar(
        select(func.count()).select_from(
            services.inbox_query(current_user, InboxFilter(urgency="review"), now).subquery()))
    return render_template(
        "feedback/inbox.html", items=items, total=total, page=page,
        pages=max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1), kept=kept, f=f, now=now,
        query_string=urlencode(kept), overdue_total=overdue_total, review_total=review_total,
        form=ActionForm(),
        may_triage=has_permission(current_user, "feedback.triage"),
        **_filter_choices(),
    )


@bp.route("/feedback/bulk", methods=["POST"])
@require("feedback.triage")
def bulk() -> WerkzeugResponse:
    form = ActionForm()
    back = _safe_back(request.form.get("back"))
    if not form.validate_on_submit():
        abort(400)
    ids = [int(i) for i in request.form.getlist("ids") if i.isdigit()][:PAGE_SIZE * 4]
    items = list(db.session.scalars(select(FeedbackItem).where(
        FeedbackItem.id.in_(ids), services.visible_condition(current_user))))
    action = request.form.get("action")
    if not items:
        flash(_("Select at least one comment first."))
        return redirect(back)
    if action == "confirm":
        done = services.bulk_confirm(items, current_user)
        flash(ngettext("Confirmed the suggested themes of %(num)s comment.",
                       "Confirmed the suggested themes of %(num)s comments.", done))
    elif action == "close":
        done = services.bulk_status(items, "closed", current_user)
        flash(ngettext("Closed %(num)s comment.", "Closed %(num)s comments.", done))
    elif action == "route":
        team = db.session.get(ImprovementTeam, request.form.get("team", 0, type=int))
        if team is None:
            flash(_("Choose a team to route the comments to."))
            return redirect(back)
        done = sum(services.route_to_team(item, team, current_user) for item in items)
        flash(ngettext("Routed %(num)s comment to %(team)s.",
                       "Routed %(num)s comments to %(team)s.", done, team=team.name))
    else:
        abort(400)
    return redirect(back)


def _safe_back(target: str | None) -> str:
    if target and target.startswith("/feedback") and not target.startswith("//"):
        return target
    return url_for("feedback.inbox")


# --- one item --------------------------------------------------------------------------

def _neighbours(item: FeedbackItem, f: InboxFilter) -> tuple[int | None, int | None]:
    ids = list(db.session.scalars(
        services.inbox_query(current_user, f).with_only_columns(FeedbackItem.id)
        .limit(NEIGHBOUR_WINDOW)))
    if item.id not in ids:
        return None, ids[0] if ids else None
    at = ids.index(item.id)
    return (ids[at - 1] if at > 0 else None), (ids[at + 1] if at + 1 < len(ids) else None)


def _highlights(item: FeedbackItem) -> list[tuple[str, str | None]]:
    """The text cut into (piece, mark) where mark is ``danger`` (a safety rule matched),
    a PII kind, or None."""
    marks: list[tuple[int, int, str]] = [
        (m["start"], m["end"], "review" if m.get("level") == "review" else "danger")
        for m in item.safety_matches]
    marks += [(p["start"], p["end"], p["kind"]) for p in item.pii]
    marks.sort()
    pieces: list[tuple[str, str | None]] = []
    at = 0
    for start, end, mark in marks:
        if start < at or end > len(item.text):
            continue  # overlaps the previous mark: keep the first
        if start > at:
            pieces.append((item.text[at:start], None))
        pieces.append((item.text[start:end], mark))
        at = end
    if at < len(item.text):
        pieces.append((item.text[at:], None))
    return pieces


def _render_item(item: FeedbackItem, *, themes_form: ThemesForm | None = None,
                 reply_form: ReplyForm | None = None, safety_form: SafetyLevelForm | None = None,
                 errors: dict[str, str] | None = None, status: int = 200) -> tuple[str, int]:
    f, kept = read_filter()
    previous_id, next_id = _neighbours(item, f)
    record("view", "feedback_item", item.id, patient_id=item.patient_id)
    themes_form = themes_form or ThemesForm(
        themes=[t.theme_id for t in item.live_themes()],
        sentiment=item.shown_sentiment or 0)
    reply_form = reply_form or ReplyForm(channel="email" if item.contact_email else "sms")
    reply_form.template.choices = [("", _("None"))] + replies.choices(item.language)
    reply_form.channel.choices = [(c, label) for c, label, address in (
        ("email", _("Email to %(address)s", address=item.contact_email), item.contact_email),
        ("sms", _("Text message to %(number)s", number=item.contact_phone), item.contact_phone),
    ) if address]
    staff = list(db.session.scalars(
        select(User).where(User.active.is_(True),
                           User.role.in_(("staff", "clinician", "safeguarding", "admin")))
        .order_by(User.name, User.email)))
    all_t = all_themes()
    live = {t.theme_id: t for t in item.live_themes()}
    return render_template(
        "feedback/item.html", item=item, pieces=_highlights(item),
        events=services.events(item), kept=kept, query_string=urlencode(kept),
        previous_id=previous_id, next_id=next_id,
        themes_form=themes_form, reply_form=reply_form,
        status_form=StatusForm(status=item.status), assign_form=AssignForm(
            assignee=item.assigned_to_id or 0),
        route_form=RouteForm(), urgency_form=UrgencyForm(urgency=item.urgency),
        safety_form=safety_form or SafetyLevelForm(level=item.safety_level),
        note_form=NoteForm(), action_form=ActionForm(),
        staff=staff, teams=_teams(), errors=errors or {},
        categories=categories(), themes_by_category=_by_category(all_t, item),
        live=live, themes_by_id={t.id: t for t in all_t},
        replies_sent=list(db.session.scalars(
            select(Reply).where(Reply.item_id == item.id).order_by(Reply.id))),
        may_triage=has_permission(current_user, "feedback.triage"),
        may_reply=has_permission(current_user, "feedback.reply"),
        overdue=services.is_overdue(item), alerts=_alerts_of(item),
        users={u.id: u for u in staff},
        team_names=dict(db.session.execute(select(ImprovementTeam.id, ImprovementTeam.name)).all()),
    ), status


def _by_category(themes: list[Any], item: FeedbackItem) -> dict[str, list[Any]]:
    """Active themes by category, plus any inactive theme the item still carries."""
    carried = {t.theme_id for t in item.themes if t.status != "rejected"}
    grouped: dict[str, list[Any]] = {}
    for theme in themes:
        if theme.status == "active" or theme.id in carried:
            grouped.setdefault(theme.category, []).append(theme)
    for group in grouped.values():
        group.sort(key=lambda t: theme_label(t))
    return grouped


def _alerts_of(item: FeedbackItem) -> list[Any]:
    from engage.alerts.models import Alert

    return list(db.session.scalars(select(Alert).where(Alert.feedback_item_id == item.id)))


@bp.route("/feedback/items/<int:item_id>")
@require("feedback.view")
def item(item_id: int) -> tuple[str, int]:
    return _render_item(item_or_404(item_id))


def _back_to_item(item: FeedbackItem, anchor: str = "") -> WerkzeugResponse:
    """The item again (keeping the inbox filter), or the next one when asked to move on."""
    _f, kept = read_filter()
    target = request.form.get("then") or request.args.get("then")
    if target == "next" and request.form.get("next_id", "").isdigit():
        item_id = int(request.form["next_id"])
    else:
        item_id = item.id
    query = ("?" + urlencode(kept)) if kept else ""
    return redirect(url_for("feedback.item", item_id=item_id) + query + anchor)


@bp.route("/feedback/items/<int:item_id>/themes", methods=["POST"])
@require("feedback.triage")
def confirm_themes(item_id: int) -> WerkzeugResponse | tuple[str, int]:
    item = item_or_404(item_id)
    form = ThemesForm()
    if not form.validate_on_submit():
        abort(400)
    # "Confirm as suggested" takes the model's suggestions untouched.
    chosen = None if "suggested" in request.form else (form.themes.data or [])
    try:
        services.confirm_themes(item, current_user, chosen,
                                sentiment=form.sentiment.data or None)
    except FeedbackError as exc:
        return _render_item(item, themes_form=form, errors={"themes": str(exc)}, status=400)
    flash(_("Themes confirmed."))
    return _back_to_item(item)


@bp.route("/feedback/items/<int:item_id>/status", methods=["POST"])
@require("feedback.triage")
def set_status(item_id: int) -> WerkzeugResponse | tuple[str, int]:
    item = item_or_404(item_id)
    form = StatusForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        if services.set_status(item, form.status.data or "", current_user, form.note.data or ""):
            flash(_("Status changed to %(status)s.",
                    status=STATUS_LABELS[item.status]))
    except FeedbackError as exc:
        return _render_item(item, errors={"status": str(exc)}, status=400)
    return _back_to_item(item)


@bp.route("/feedback/items/<int:item_id>/assign", methods=["POST"])
@require("feedback.triage")
def assign(item_id: int) -> WerkzeugResponse:
    item = item_or_404(item_id)
    form = AssignForm()
    if not form.validate_on_submit():
        abort(400)
    assignee = db.session.get(User, form.assignee.data) if form.assignee.data else None
    if form.assignee.data and (assignee is None or not assignee.active):
        abort(400)
    services.assign(item, assignee, current_user)
    flash(_("Assigned to %(name)s.", name=assignee.name or assignee.email) if assignee
          else _("Nobody is assigned now."))
    return _back_to_item(item)


@bp.route("/feedback/items/<int:item_id>/route", methods=["POST"])
@require("feedback.triage")
def route(item_id: int) -> WerkzeugResponse:
    item = item_or_404(item_id)
    form = RouteForm()
    if not form.validate_on_submit():
        abort(400)
    team = db.session.get(ImprovementTeam, form.team.data or 0)
    if team is None:
        abort(400)
    if request.form.get("remove"):
        services.unroute(item, team, current_user)
        flash(_("Taken out of the queue of %(team)s.", team=team.name))
    elif services.route_to_team(item, team, current_user):
        flash(_("Routed to %(team)s.", team=team.name))
    return _back_to_item(item)


@bp.route("/feedback/items/<int:item_id>/urgency", methods=["POST"])
@require("feedback.triage")
def urgency(item_id: int) -> WerkzeugResponse | tuple[str, int]:
    item = item_or_404(item_id)
    form = UrgencyForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        services.set_urgency(item, form.urgency.data or "", current_user)
    except FeedbackError as exc:
        return _render_item(item, errors={"urgency": str(exc)}, status=400)
    return _back_to_item(item)


@bp.route("/feedback/items/<int:item_id>/safety", methods=["POST"])
@require("feedback.triage")
def safety_level(item_id: int) -> WerkzeugResponse | tuple[str, int]:
    """Raise or lower the comment's safety level, with a reason (kept in its history)."""
    item = item_or_404(item_id)
    form = SafetyLevelForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        change = safeguarding.set_safety_level(item, form.level.data or "", current_user,
                                               form.reason.data or "")
    except FeedbackError as exc:
        return _render_item(item, safety_form=form,
                            errors={f"safety-{exc.field or 'level'}": str(exc)}, status=400)
    if change is None:
        flash(_("The safety level was already %(level)s: nothing changed.",
                level=SAFETY_LEVEL_NAMES[item.safety_level]))
    elif change.to_level == "urgent":
        flash(_("Marked urgent. The service's clinicians are alerted."))
    else:
        flash(_("Safety level changed to %(level)s.", level=SAFETY_LEVEL_NAMES[change.to_level]))
    return _back_to_item(item, "#safety")


@bp.route("/feedback/items/<int:item_id>/note", methods=["POST"])
@require("feedback.triage")
def note(item_id: int) -> WerkzeugResponse | tuple[str, int]:
    item = item_or_404(item_id)
    form = NoteForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        services.add_note(item, current_user, form.note.data or "")
    except FeedbackError as exc:
        return _render_item(item, errors={"note": str(exc)}, status=400)
    return _back_to_item(item, "#history")


@bp.route("/feedback/items/<int:item_id>/reply", methods=["POST"])
@require("feedback.reply")
def reply(item_id: int) -> WerkzeugResponse | tuple[str, int]:
    item = item_or_404(item_id)
    form = ReplyForm()
    if not form.validate_on_submit():
        abort(400)
    if request.form.get("action") == "load":
        # Fill the reply from the template; nothing is sent. The page says what it did.
        filled = replies.fill(form.template.data or "", item.language, item.service.name)
        if filled:
            form.subject.data, form.body.data = filled
        return _render_item(item, reply_form=form)
    try:
        services.send_reply(item, current_user, channel=form.channel.data or "",
                            subject=form.subject.data or "", body=form.body.data or "",
                            template=form.template.data or None)
    except FeedbackError as exc:
        return _render_item(item, reply_form=form,
                            errors={f"reply-{exc.field or 'body'}": str(exc)}, status=400)
    flash(_("Your reply will be sent shortly, but never at night in the person's time zone "
            "(their quiet hours)."))
    return _back_to_item(item, "#replies")


# --- staff entry -------------------------------------------------------------------------

@bp.route("/feedback/new", methods=["GET", "POST"])
@require("feedback.create")
def new() -> str | WerkzeugResponse | tuple[str, int]:
    form = StaffEntryForm()
    mine = visible_services(current_user)
    form.service.choices = [(s.id, s.name) for s in mine]
    form.received_via.choices = [(v, str(RECEIVED_VIA_LABELS[v])) for v in RECEIVED_VIA]
    form.respondent.choices = [(v, str(RESPONDENT_LABELS[v])) for v in RESPONDENTS]
    form.language.choices = [(c, LANGUAGE_NAMES.get(c, c))
                             for c in current_app.config["LANGUAGES"]]
    errors: dict[str, str] = {}
    if request.method == "POST":
        if not form.validate_on_submit():
            if form.csrf_token.errors:
                abort(400)
            errors.update({name: str(e[0]) for name, e in form.errors.items()})
        service = next((s for s in mine if s.id == form.service.data), None)
        if service is None:
            errors["service"] = _("Choose a service.")
        received_at = utcnow()
        if (form.received_on.data or "").strip():
            try:
                day = date.fromisoformat(form.received_on.data.strip())
                if day > utcnow().date():
                    errors["received_on"] = _("The date cannot be in the future.")
                elif day < utcnow().date():
                    received_at = datetime.combine(day, time(12), tzinfo=UTC)
            except ValueError:
                errors["received_on"] = _("Enter the date like 2026-11-30.")
        contact = Contact(name=form.contact_name.data, email=(form.contact_email.data or "")
                          .strip(), phone=(form.contact_phone.data or "").strip(),
                          consent=bool(form.consent.data))
        errors.update({f"contact_{k}": v for k, v in services.check_contact(contact).items()})
        text = (form.text.data or "").strip()
        if not text:
            errors["text"] = _("Write the comment.")
        elif len(text) > services.MAX_TEXT:
            errors["text"] = _("Please shorten the comment to %(max)s characters or fewer "
                               "(it is %(length)s now).", max=services.MAX_TEXT,
                               length=len(text))
        patient = None
        if not errors and service is not None and (form.patient_ref.data or "").strip():
            # The chosen service's own record, never another service's.
            patient, _created = get_or_create_patient(service, form.patient_ref.data or "")
        if not errors and service is not None:
            item = services.intake(
                service=service, text=text, source="staff",
                question=(form.question.data or "").strip() or None,
                language=form.language.data or "en", received_at=received_at,
                patient=patient, contact=contact, received_via=form.received_via.data,
                respondent=form.respondent.data, created_by=current_user,
            )
            flash(_("The comment was added to the inbox."))
            return redirect(url_for("feedback.item", item_id=item.id))
        return render_template("feedback/new.html", form=form, errors=errors), 400
    return render_template("feedback/new.html", form=form, errors=errors)


# --- the export (redacted) ----------------------------------------------------------------

EXPORT_COLUMNS = ("id", "received", "service", "source", "question", "comment (redacted)",
                  "language", "themes", "themes confirmed", "sentiment", "urgency", "status",
                  "teams")


@bp.route("/feedback/export.csv")
@require("feedback.export")
def export() -> FlaskResponse:
    """The inbox's current selection as CSV, with the redacted text only (no contact, no MRN)."""
    f, _kept = read_filter()
    rows = db.session.scalars(services.inbox_query(current_user, f).limit(50_000)).all()
    names = {t.id: t.name for t in all_themes()}
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(EXPORT_COLUMNS)
    for item in rows:
        writer.writerow([
            item.id, item.received_at.date().isoformat(), item.service.name, item.source,
            item.question or "", _csv_safe(item.redacted_text), item.language,
            "; ".join(names.get(t.theme_id, "") for t in item.live_themes()),
            "yes" if item.themes_confirmed else "no", item.shown_sentiment or "",
            item.urgency, item.status, "; ".join(r.team.name for r in item.routes),
        ])
    record("export", "feedback_list", None, count=len(rows), redacted=True)
    return FlaskResponse(buffer.getvalue(), mimetype="text/csv", headers={
        "Content-Disposition": 'attachment; filename="feedback-redacted.csv"'})


def _csv_safe(text: str) -> str:
    """Defuse spreadsheet formulas in free text (CSV injection)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


# --- what councils see ---------------------------------------------------------------------

@bp.route("/council/feedback")
@require("council.view")
def council() -> str:
    """De-identified: theme counts over twelve weeks and redacted quotes; never the original,
    and never a comment with a safety level (urgent or waiting for a safety review)."""
    since = utcnow() - timedelta(weeks=12)
    theme_id = _int_arg("theme")
    service_id = _int_arg("service")
    counts_query = (
        select(ItemTheme.theme_id, func.count())
        .join(FeedbackItem, FeedbackItem.id == ItemTheme.item_id)
        .where(ItemTheme.status != "rejected", FeedbackItem.received_at >= since)
        .group_by(ItemTheme.theme_id).order_by(func.count().desc())
    )
    quotes_query = (
        select(FeedbackItem.redacted_text, FeedbackItem.received_at, FeedbackItem.service_id)
        .where(FeedbackItem.received_at >= since,
               FeedbackItem.urgency.not_in(SAFETY_URGENCIES))
        .order_by(FeedbackItem.received_at.desc()).limit(30)
    )
    if service_id:
        counts_query = counts_query.where(FeedbackItem.service_id == service_id)
        quotes_query = quotes_query.where(FeedbackItem.service_id == service_id)
    if theme_id:
        quotes_query = quotes_query.where(select(ItemTheme.item_id).where(
            ItemTheme.item_id == FeedbackItem.id, ItemTheme.theme_id == theme_id,
            ItemTheme.status != "rejected").exists())
    themes = {t.id: t for t in all_themes()}
    counts = [(themes[tid], n) for tid, n in db.session.execute(counts_query) if tid in themes]
    return render_template(
        "feedback/council.html", counts=counts[:20], quotes=db.session.execute(quotes_query).all(),
        services={s.id: s for s in db.session.scalars(select(Service).order_by(Service.name))},
        theme_id=theme_id, service_id=service_id, themes=themes)


def template_globals() -> dict[str, Any]:
    """Labels every feedback template uses (globals, so imported macros see them too)."""
    return {
        "theme_label": theme_label, "category_label": category_label,
        "STATUS_LABELS": STATUS_LABELS, "URGENCY_LABELS": URGENCY_LABELS,
        "SOURCE_LABELS": SOURCE_LABELS, "SENTIMENT_LABELS": SENTIMENT_LABELS,
        "RECEIVED_VIA_LABELS": RECEIVED_VIA_LABELS, "RESPONDENT_LABELS": RESPONDENT_LABELS,
        "PII_LABELS": PII_LABELS, "OPEN_STATUSES": OPEN_STATUSES,
        "SAFETY_LEVEL_LABELS": SAFETY_LEVEL_LABELS, "SAFETY_LEVEL_NAMES": SAFETY_LEVEL_NAMES,
        "SAFETY_CHANGE_LABELS": SAFETY_CHANGE_LABELS,
        "SAFETY_CATEGORY_LABELS": SAFETY_CATEGORY_LABELS,
        "THEME_STATUS_LABELS": THEME_STATUS_LABELS,
    }


bp.record_once(lambda state: state.app.jinja_env.globals.update(template_globals()))
