"""Admin pages of feedback: themes, routing rules, the theme model, safety rules, reply templates.

Every page is for admins and works without JavaScript. Writes go through the feedback
services (``themes``, ``learning``, ``rules``, ``replies``) or the two routing-rule
functions below, and every change is in the audit log, in the request's transaction.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import format_datetime, ngettext
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import func, select
from sqlalchemy.orm import defer
from werkzeug.datastructures import MultiDict

from engage.core.i18n import LANGUAGE_NAMES
from engage.core.permissions import require
from engage.extensions import db
from engage.feedback import learning, replies, services
from engage.feedback import rules as safety_rules
from engage.feedback.analysis import active_rules
from engage.feedback.forms import ActionForm
from engage.feedback.labels import theme_label
from engage.feedback.models import (
    ItemTheme,
    ReplyTemplate,
    RoutingRule,
    SafetyChange,
    SafetyRuleSet,
    Theme,
    ThemeEvent,
    ThemeModelRecord,
)
from engage.feedback.text.model import default_model
from engage.feedback.text.safety import (
    CATEGORIES,
    Match,
    SafetyRules,
    default_rules,
    validate_rules,
)
from engage.feedback.themes import (
    ThemeError,
    active_themes,
    all_themes,
    categories,
    create_theme,
    edit_theme,
    ensure_default_themes,
    merge_theme,
    restore_theme,
    retire_theme,
    theme_counts,
)
from engage.org.models import Service
from engage.teams.models import ImprovementTeam

bp = Blueprint("feedback_admin", __name__, url_prefix="/feedback/settings")

#: With fewer held-out comments than this, a difference between two models may be chance.
MIN_HELD_OUT = 20
#: The languages the safety-rule editor always offers (rules may hold others too).
RULE_LANGUAGES = ("en", "es", "ar")
#: Comments record the rules they were checked with as ``<version>#<id>`` in 40 characters.
VERSION_MAX = 30
#: The most rule fieldsets one form is read for: far more than any real rule set.
MAX_RULES = 500
_LANGUAGE_CODE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,8})?$")
#: ``validate_rules`` names a rule by its position: "rule 3 ('neglect'): ...".
_RULE_PROBLEM = re.compile(r"^rule (\d+)\b")


def _check_csrf() -> None:
    """End a POST whose CSRF token is missing or wrong with 400."""
    if not ActionForm().validate_on_submit():
        abort(400)


def _render(template_name: str, errors: dict[str, str] | None = None, /,
            **context: Any) -> ResponseReturnValue:
    """A page, answering 400 when it shows errors (so the request rolls back)."""
    page = render_template(template_name, errors=errors or {}, **context)
    return (page, 400) if errors else page


def _fields(*names: str) -> dict[str, str]:
    return {name: request.form.get(name, "") for name in names}


def _by_id(model: Any, value: str) -> Any:
    """The row whose id was posted as ``value``; None when empty, not a number or gone."""
    return db.session.get(model, int(value)) if value.isdigit() else None


# --- the overview ----------------------------------------------------------------------------

@bp.route("")
@require("themes.manage")
def index() -> str:
    ensure_default_themes()
    status_counts = dict(db.session.execute(
        select(Theme.status, func.count()).group_by(Theme.status)).all())
    model_record = db.session.scalar(
        select(ThemeModelRecord).options(defer(ThemeModelRecord.manifest),
                                         defer(ThemeModelRecord.arrays))
        .where(ThemeModelRecord.status == "active"))
    rules, rules_id = active_rules()
    return render_template(
        "feedback_admin/index.html", themes=status_counts,
        routing_rules=db.session.scalar(select(func.count()).select_from(RoutingRule)) or 0,
        model_record=model_record,
        candidates=db.session.scalar(select(func.count()).select_from(ThemeModelRecord)
                                     .where(ThemeModelRecord.status == "candidate")) or 0,
        rules=rules, rule_set=db.session.get(SafetyRuleSet, rules_id) if rules_id else None,
        templates=db.session.scalar(select(func.count()).select_from(ReplyTemplate)
                                    .where(ReplyTemplate.active.is_(True))) or 0,
        builtin_templates=len(replies.BUILTIN),
    )


# --- themes ----------------------------------------------------------------------------------

def _theme_or_404(theme_id: int) -> Theme:
    theme = db.session.get(Theme, theme_id)
    if theme is None:
        abort(404)
    return theme


def _category(values: dict[str, str]) -> str:
    """A new category typed in wins over the one chosen from the list."""
    return values["new_category"].strip() or values["category"].strip()


def _theme_error_field(exc: ThemeError, values: dict[str, str]) -> str:
    if exc.field == "category" and values.get("new_category", "").strip():
        return "new_category"
    return exc.field or "name"


@bp.route("/themes", methods=["GET", "POST"])
@require("themes.manage")
def themes() -> ResponseReturnValue:
    values = {"name": "", "category": "", "new_category": ""}
    errors: dict[str, str] = {}
    if request.method == "POST":
        _check_csrf()
        values = _fields("name", "category", "new_category")
        try:
            theme = create_theme(values["name"], _category(values), current_user)
        except ThemeError as exc:
            errors[_theme_error_field(exc, values)] = str(exc)
        else:
            flash(_("Theme “%(name)s” added.", name=theme.name))
            return redirect(url_for(".themes") + f"#theme-{theme.id}")
    grouped: dict[str, list[Theme]] = {c: [] for c in categories()}
    for theme in all_themes():
        grouped.setdefault(theme.category, []).append(theme)
    return _render("feedback_admin/themes.html", errors, form=ActionForm(), grouped=grouped,
                   counts=theme_counts(), values=values, categories=categories())


def _by_label(themes: list[Theme]) -> list[Theme]:
    """Themes in the order the admin reads them: by their (translated) label."""
    return sorted(themes, key=lambda t: theme_label(t).casefold())


def _carrying(theme: Theme) -> int:
    """Comments that carry ``theme`` now (as on the theme list): what a merge moves."""
    return int(db.session.scalar(
        select(func.count()).select_from(ItemTheme)
        .where(ItemTheme.theme_id == theme.id, ItemTheme.status != "rejected")) or 0)


def _render_theme(theme: Theme, values: dict[str, str] | None = None,
                  errors: dict[str, str] | None = None) -> ResponseReturnValue:
    values = values or {"name": theme.name, "category": theme.category, "new_category": "",
                        "description": theme.description or ""}
    events = db.session.scalars(
        select(ThemeEvent).where(ThemeEvent.theme_id == theme.id)
        .order_by(ThemeEvent.at.desc(), ThemeEvent.id.desc())).all()
    rules = db.session.scalars(select(RoutingRule).where(RoutingRule.theme_id == theme.id)).all()
    return _render(
        "feedback_admin/theme.html", errors, theme=theme, values=values, form=ActionForm(),
        events=events, rules=rules, carrying=_carrying(theme), categories=categories(),
        targets=[t for t in _by_label(active_themes()) if t.id != theme.id],
    )


@bp.route("/themes/<int:theme_id>", methods=["GET", "POST"])
@require("themes.manage")
def theme(theme_id: int) -> ResponseReturnValue:
    found = _theme_or_404(theme_id)
    if request.method == "GET":
        return _render_theme(found)
    _check_csrf()
    values = _fields("name", "category", "new_category", "description")
    try:
        edit_theme(found, current_user, name=values["name"], category=_category(values),
                   description=values["description"])
    except ThemeError as exc:
        return _render_theme(found, values, {_theme_error_field(exc, values): str(exc)})
    flash(_("Theme saved."))
    return redirect(url_for(".theme", theme_id=found.id))


@bp.route("/themes/<int:theme_id>/merge", methods=["POST"])
@require("themes.manage")
def merge(theme_id: int) -> ResponseReturnValue:
    """First press: a page saying what will move (nothing written); then the merge itself."""
    source = _theme_or_404(theme_id)
    _check_csrf()
    target = db.session.get(Theme, request.form.get("target", 0, type=int) or 0)
    if target is None:
        return _render_theme(source, errors={"target": _("Choose the theme to merge into.")})
    carrying = _carrying(source)
    if request.form.get("confirm") != "1":
        return render_template(
            "feedback_admin/merge.html", source=source, target=target, carrying=carrying,
            form=ActionForm(), rules=db.session.scalar(
                select(func.count()).select_from(RoutingRule)
                .where(RoutingRule.theme_id == source.id)) or 0)
    try:
        merge_theme(source, target, current_user)
    except ThemeError as exc:
        return _render_theme(source, errors={"target": str(exc)})
    flash(ngettext("“%(source)s” was merged into “%(target)s”: %(num)s comment moved.",
                   "“%(source)s” was merged into “%(target)s”: %(num)s comments moved.",
                   carrying, source=theme_label(source), target=theme_label(target)))
    return redirect(url_for(".theme", theme_id=target.id))


@bp.route("/themes/<int:theme_id>/retire", methods=["POST"])
@require("themes.manage")
def retire(theme_id: int) -> ResponseReturnValue:
    found = _theme_or_404(theme_id)
    _check_csrf()
    try:
        retire_theme(found, current_user)
    except ThemeError as exc:
        return _render_theme(found, errors={"status": str(exc)})
    flash(_("Theme retired: it is no longer suggested or offered."))
    return redirect(url_for(".theme", theme_id=found.id))


@bp.route("/themes/<int:theme_id>/restore", methods=["POST"])
@require("themes.manage")
def restore(theme_id: int) -> ResponseReturnValue:
    found = _theme_or_404(theme_id)
    _check_csrf()
    try:
        restore_theme(found, current_user)
    except ThemeError as exc:
        return _render_theme(found, errors={"status": str(exc)})
    flash(_("Theme restored."))
    return redirect(url_for(".theme", theme_id=found.id))


# --- routing rules ---------------------------------------------------------------------------

@bp.route("/routing", methods=["GET", "POST"])
@require("routing.manage")
def routing() -> ResponseReturnValue:
    values = {"theme": "", "service": "", "team": ""}
    errors: dict[str, str] = {}
    if request.method == "POST":
        _check_csrf()
        values = _fields("theme", "service", "team")
        service = _by_id(Service, values["service"])
        if values["service"] and service is None:
            errors["service"] = _("Choose a service, or “Any service”.")
        if not errors:
            try:
                services.add_rule(_by_id(Theme, values["theme"]), service,
                         _by_id(ImprovementTeam, values["team"]), current_user)
            except services.RoutingError as exc:
                errors[exc.field] = str(exc)
            else:
                flash(_("Routing rule added."))
                return redirect(url_for(".routing"))
    rules = sorted(db.session.scalars(select(RoutingRule)).all(),
                   key=lambda r: (theme_label(r.theme).lower(), r.service is not None,
                                  r.service.name if r.service else ""))
    return _render(
        "feedback_admin/routing.html", errors, form=ActionForm(), rules=rules, values=values,
        themes=_by_label(active_themes()), categories=categories(),
        services=db.session.scalars(select(Service).order_by(Service.name)).all(),
        teams=db.session.scalars(select(ImprovementTeam).where(ImprovementTeam.active.is_(True))
                                 .order_by(ImprovementTeam.name)).all(),
    )


@bp.route("/routing/<int:rule_id>/delete", methods=["POST"])
@require("routing.manage")
def delete_routing_rule(rule_id: int) -> ResponseReturnValue:
    _check_csrf()
    rule = db.session.get(RoutingRule, rule_id)
    if rule is None:
        flash(_("That rule was already deleted."))
    else:
        services.delete_rule(rule, current_user)
        flash(_("Routing rule deleted."))
    return redirect(url_for(".routing"))


# --- the theme model -------------------------------------------------------------------------

def _model_records() -> list[ThemeModelRecord]:
    """Every stored model, newest first, without its (large) arrays and manifest."""
    return list(db.session.scalars(
        select(ThemeModelRecord)
        .options(defer(ThemeModelRecord.manifest), defer(ThemeModelRecord.arrays))
        .order_by(ThemeModelRecord.created_at.desc(), ThemeModelRecord.id.desc())))


@bp.route("/model")
@require("models.manage")
def model() -> str:
    records = _model_records()
    active = next((r for r in records if r.status == "active"), None)
    return render_template(
        "feedback_admin/model.html", form=ActionForm(), active=active,
        shipped=default_model() if active is None else None,
        candidates=[r for r in records if r.status == "candidate"],
        earlier=[r for r in records if r.status in ("retired", "rejected")],
        min_held_out=MIN_HELD_OUT,
        new_confirmations=learning.new_confirmations_since_last_model(),
        requested=learning.training_requested(),
    )


def _record_or_404(record_id: int) -> ThemeModelRecord:
    found = db.session.get(ThemeModelRecord, record_id)
    if found is None:
        abort(404)
    return found


@bp.route("/model/<int:record_id>/activate", methods=["POST"])
@require("models.manage")
def activate_model(record_id: int) -> ResponseReturnValue:
    _check_csrf()
    found = _record_or_404(record_id)
    if found.status == "active":
        flash(_("That model is already in force."))
    elif found.status == "rejected":
        flash(_("A rejected model cannot be switched on. Train a new candidate instead."))
    else:
        learning.activate(found, current_user)
        flash(_("Model %(version)s is now in force. New comments get its suggestions.",
                version=found.version))
    return redirect(url_for(".model"))


@bp.route("/model/<int:record_id>/reject", methods=["POST"])
@require("models.manage")
def reject_model(record_id: int) -> ResponseReturnValue:
    _check_csrf()
    found = _record_or_404(record_id)
    if found.status != "candidate":
        flash(_("Only a candidate can be rejected."))
    else:
        learning.reject(found, current_user)
        flash(_("Candidate %(version)s rejected.", version=found.version))
    return redirect(url_for(".model"))


@bp.route("/model/shipped", methods=["POST"])
@require("models.manage")
def shipped_model() -> ResponseReturnValue:
    _check_csrf()
    learning.activate(None, current_user)
    flash(_("The model shipped with Engage is in force again."))
    return redirect(url_for(".model"))


@bp.route("/model/train", methods=["POST"])
@require("models.manage")
def train_model() -> ResponseReturnValue:
    _check_csrf()
    learning.request_training(current_user)
    flash(_("The scheduler will train a candidate within a minute or two. Come back to this "
            "page to compare its figures before switching it on."))
    return redirect(url_for(".model") + "#train-h")


# --- safety rules ----------------------------------------------------------------------------

@dataclass
class RuleRow:
    """One rule's fieldset as shown and as typed: phrases one per line, per language."""

    index: int
    id: str = ""
    category: str = ""
    description: str = ""
    notes: str = ""
    phrases: dict[str, str] = field(default_factory=dict)
    exclusions: dict[str, str] = field(default_factory=dict)
    #: ``urgent`` or ``review``.
    level: str = "urgent"
    #: Anchor ids the phrases must be near (none: anywhere), and within how many words.
    near: list[str] = field(default_factory=list)
    window: str = ""
    #: Anchor ids that make this review rule urgent when the comment holds one anywhere.
    urgent_if: list[str] = field(default_factory=list)
    remove: bool = False
    problems: list[str] = field(default_factory=list)

    def is_blank(self) -> bool:
        return not (self.id.strip() or self.description.strip() or self.notes.strip()
                    or any(v.strip() for v in (*self.phrases.values(),
                                               *self.exclusions.values())))


@dataclass
class AnchorRow:
    """One anchor's fieldset: words that place a rule's phrase (a person, a time, a place)."""

    index: int
    id: str = ""
    description: str = ""
    phrases: dict[str, str] = field(default_factory=dict)
    remove: bool = False

    def is_blank(self) -> bool:
        return not (self.id.strip() or self.description.strip()
                    or any(v.strip() for v in self.phrases.values()))


@dataclass
class RulesForm:
    """The rule editor's contents: rows to show again, and the rules dict they make."""

    version: str
    notes: str
    languages: list[str]
    rows: list[RuleRow]
    anchors: list[AnchorRow] = field(default_factory=list)
    #: Position in ``data["rules"]`` (1-based, as validate_rules counts) -> row index.
    row_of: dict[int, int] = field(default_factory=dict)

    @property
    def anchor_ids(self) -> list[str]:
        return [a.id.strip() for a in self.anchors if a.id.strip() and not a.remove]

    def data(self) -> dict[str, Any]:
        out: list[dict[str, Any]] = []
        self.row_of = {}
        for row in self.rows:
            if row.remove or row.is_blank():
                continue
            rule: dict[str, Any] = {"id": row.id.strip(), "category": row.category,
                                    "description": row.description.strip()}
            if row.level != "urgent":
                rule["level"] = row.level
            if row.near:
                rule["near"] = list(row.near)
                window = row.window.strip()
                if window:
                    rule["window"] = int(window) if window.isdigit() else window
            if row.urgent_if:
                rule["urgent_if"] = list(row.urgent_if)
            if row.notes.strip():
                rule["notes"] = row.notes.strip()
            rule["phrases"] = _lines_by_language(row.phrases)
            exclusions = _lines_by_language(row.exclusions)
            if exclusions:
                rule["exclusions"] = exclusions
            out.append(rule)
            self.row_of[len(out)] = row.index
        data: dict[str, Any] = {"version": self.version.strip()}
        if self.notes.strip():
            data["notes"] = self.notes.strip()
        anchors = [{"id": a.id.strip(), "description": a.description.strip(),
                    "phrases": _lines_by_language(a.phrases)}
                   for a in self.anchors if not (a.remove or a.is_blank())]
        if anchors:
            data["anchors"] = anchors
        data["rules"] = out
        return data


def _lines_by_language(texts: dict[str, str]) -> dict[str, list[str]]:
    """``{"en": "a\\nb"}`` -> ``{"en": ["a", "b"]}``, dropping blank lines and languages."""
    out = {}
    for lang, text in texts.items():
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        if lines:
            out[lang] = lines
    return out


def _languages(extra: Any = ()) -> list[str]:
    return list(dict.fromkeys([*RULE_LANGUAGES, *extra]))


def rules_form_from(data: dict[str, Any]) -> RulesForm:
    """The editor filled with ``data`` (a rules dict), plus one empty rule and anchor to add."""
    found = {lang for rule in data.get("rules", [])
             for key in ("phrases", "exclusions") for lang in rule.get(key, {})}
    found |= {lang for anchor in data.get("anchors", []) for lang in anchor.get("phrases", {})}
    languages = _languages(sorted(found))
    rows = [
        RuleRow(index=n, id=rule["id"], category=rule["category"],
                description=rule["description"], notes=rule.get("notes", ""),
                phrases={lang: "\n".join(rule["phrases"].get(lang, [])) for lang in languages},
                exclusions={lang: "\n".join(rule.get("exclusions", {}).get(lang, []))
                            for lang in languages},
                level=rule.get("level", "urgent"), near=list(rule.get("near", [])),
                window=str(rule["window"]) if "window" in rule else "",
                urgent_if=list(rule.get("urgent_if", [])))
        for n, rule in enumerate(data.get("rules", []))
    ]
    rows.append(RuleRow(index=len(rows)))
    anchors = [
        AnchorRow(index=n, id=anchor["id"], description=anchor["description"],
                  phrases={lang: "\n".join(anchor["phrases"].get(lang, []))
                           for lang in languages})
        for n, anchor in enumerate(data.get("anchors", []))
    ]
    anchors.append(AnchorRow(index=len(anchors)))
    return RulesForm(version=data.get("version", ""), notes=data.get("notes", ""),
                     languages=languages, rows=rows, anchors=anchors)


def rules_form_posted(form: MultiDict[str, str]) -> RulesForm:
    """The editor as the admin typed it (a ``rule-N-...`` set of fields per rule)."""
    languages = _languages(code for code in form.getlist("languages")
                           if _LANGUAGE_CODE.match(code))
    count = min(form.get("rule_count", 0, type=int) or 0, MAX_RULES)
    rows = []
    for n in range(count):
        key = f"rule-{n}-"
        rows.append(RuleRow(
            index=n, id=form.get(key + "id", ""), category=form.get(key + "category", ""),
            description=form.get(key + "description", ""), notes=form.get(key + "notes", ""),
            phrases={lang: form.get(f"{key}phrases-{lang}", "") for lang in languages},
            exclusions={lang: form.get(f"{key}exclusions-{lang}", "") for lang in languages},
            level="review" if form.get(key + "level") == "review" else "urgent",
            near=[a for a in form.getlist(key + "near") if a],
            window=form.get(key + "window", "")[:6],
            urgent_if=[a for a in form.getlist(key + "urgent_if") if a],
            remove=form.get(key + "remove") == "1"))
    if not rows or not rows[-1].is_blank():
        rows.append(RuleRow(index=len(rows)))
    anchors = []
    for n in range(min(form.get("anchor_count", 0, type=int) or 0, MAX_RULES)):
        key = f"anchor-{n}-"
        anchors.append(AnchorRow(
            index=n, id=form.get(key + "id", ""), description=form.get(key + "description", ""),
            phrases={lang: form.get(f"{key}phrases-{lang}", "") for lang in languages},
            remove=form.get(key + "remove") == "1"))
    if not anchors or not anchors[-1].is_blank():
        anchors.append(AnchorRow(index=len(anchors)))
    return RulesForm(version=form.get("version", ""), notes=form.get("notes", ""),
                     languages=languages, rows=rows, anchors=anchors)


def _place_problems(editor: RulesForm, problems: list[str],
                    errors: dict[str, str]) -> list[tuple[str, str]]:
    """Each problem beside its rule's fieldset (or the version field, into ``errors``);
    returns the rules' problems for the error summary."""
    summary = []
    for problem in problems:
        found = _RULE_PROBLEM.match(problem)
        row = editor.row_of.get(int(found.group(1))) if found else None
        if row is not None:
            editor.rows[row].problems.append(problem)
            summary.append((f"rule-{row}", problem))
        elif "'version'" in problem:
            errors["version"] = problem
        else:
            summary.append(("", problem))
    return summary


def highlighted(text: str, matches: tuple[Match, ...]) -> list[tuple[str, str | None]]:
    """``text`` cut into (piece, level) so that what fired can be marked by its level
    (``urgent`` or ``review``; None where nothing matched)."""
    pieces: list[tuple[str, str | None]] = []
    at = 0
    for match in sorted(matches, key=lambda m: (m.start, -m.end)):
        if match.start < at:
            continue  # inside or across the previous match: that one is marked already
        if match.start > at:
            pieces.append((text[at:match.start], None))
        pieces.append((text[match.start:match.end], match.level))
        at = match.end
    if at < len(text):
        pieces.append((text[at:], None))
    return pieces


@dataclass
class Trial:
    """A comment tried against the rules, and what they said."""

    text: str = ""
    language: str = "en"
    typed: bool = False
    result: Any = None
    rules: SafetyRules | None = None
    pieces: list[tuple[str, str | None]] = field(default_factory=list)

    def rule(self, rule_id: str) -> Any:
        assert self.rules is not None
        return next((r for r in self.rules.rules if r.id == rule_id), None)


def _render_safety(editor: RulesForm, *, errors: dict[str, str] | None = None,
                   summary: list[tuple[str, str]] | None = None, note: str = "",
                   trial: Trial | None = None) -> ResponseReturnValue:
    rules, rules_id = active_rules()
    summary = [*(summary or []), *((k, v) for k, v in (errors or {}).items())]
    page = render_template(
        "feedback_admin/safety.html", form=ActionForm(), editor=editor, rules=rules,
        rule_set=db.session.get(SafetyRuleSet, rules_id) if rules_id else None,
        history=safety_rules.history(), categories=CATEGORIES, errors=errors or {},
        summary=summary, note=note, trial=trial or Trial(), version_max=VERSION_MAX,
        languages=current_app.config["LANGUAGES"],
    )
    return (page, 400) if summary else page


@bp.route("/safety", methods=["GET", "POST"])
@require("safety.manage")
def safety() -> ResponseReturnValue:
    if request.method == "GET":
        editor = rules_form_from(active_rules()[0].to_dict())
        change = _by_id(SafetyChange, request.args.get("try", ""))
        if change is None:
            return _render_safety(editor)
        # From the misses page: the wording, tried at once with the rules in force.
        trial = Trial(text=change.wording, language=change.language,
                      rules=active_rules()[0])
        trial.result = trial.rules.check(trial.text, trial.language)  # type: ignore[union-attr]
        trial.pieces = highlighted(trial.text, trial.result.matches)
        return _render_safety(editor, trial=trial)
    _check_csrf()
    editor = rules_form_posted(request.form)
    note = request.form.get("note", "")
    action = request.form.get("action")
    if action in ("try-live", "try-typed"):
        return _try_comment(editor, note, typed=action == "try-typed")
    if action != "save":
        abort(400)
    errors = {} if note.strip() else {"note": _("Say why you are changing the rules.")}
    if len(editor.version.strip()) > VERSION_MAX:
        errors["version"] = _("Use %(max)s characters or fewer.", max=VERSION_MAX)
    data = editor.data()
    summary = _place_problems(editor, validate_rules(data), errors)
    if errors or summary:
        return _render_safety(editor, errors=errors, summary=summary, note=note)
    return _save_rules(data, note)


def _try_comment(editor: RulesForm, note: str, *, typed: bool) -> ResponseReturnValue:
    """Check the comment typed in "Try a comment" against the rules in force, or against
    the rules as typed in the editor (when they are valid); writes nothing."""
    trial = Trial(text=request.form.get("try_text", ""),
                  language=request.form.get("try_language", "en"), typed=typed)
    if not trial.text.strip():
        return _render_safety(editor, note=note, trial=trial,
                              errors={"try_text": _("Type a comment to try.")})
    if typed:
        data = editor.data()
        problems = validate_rules(data)
        if problems:
            errors: dict[str, str] = {}
            summary = _place_problems(editor, problems, errors)
            return _render_safety(editor, note=note, trial=trial, errors=errors,
                                  summary=summary)
        trial.rules = SafetyRules.from_dict(data)
    else:
        trial.rules = active_rules()[0]
    trial.result = trial.rules.check(trial.text, trial.language)
    trial.pieces = highlighted(trial.text, trial.result.matches)
    return _render_safety(editor, note=note, trial=trial)


def _save_rules(data: dict[str, Any], note: str) -> ResponseReturnValue:
    """Save ``data`` as the newest version, unless it is the rules in force already."""
    if SafetyRules.from_dict(data).to_dict() == active_rules()[0].to_dict():
        flash(_("These are the rules in force already: nothing was saved."))
    else:
        saved = safety_rules.save_rules(data, current_user, note)
        flash(_("Saved. Version %(id)s of the rules is now in force for new comments.",
                id=saved.id))
    return redirect(url_for(".safety"))


def _rule_set(set_id: int | None) -> tuple[dict[str, Any], SafetyRuleSet | None]:
    """A saved version's rules (None: the rules shipped with Engage)."""
    if set_id is None:
        return default_rules().to_dict(), None
    saved = db.session.get(SafetyRuleSet, set_id)
    if saved is None:
        abort(404)
    return saved.rules, saved


@bp.route("/safety/versions/shipped", defaults={"set_id": None})
@bp.route("/safety/versions/<int:set_id>")
@require("safety.manage")
def safety_version(set_id: int | None) -> str:
    data, saved = _rule_set(set_id)
    return render_template("feedback_admin/safety_version.html", data=data, saved=saved,
                           in_force=active_rules()[1] == set_id, form=ActionForm())


@bp.route("/safety/versions/shipped/restore", methods=["POST"], defaults={"set_id": None})
@bp.route("/safety/versions/<int:set_id>/restore", methods=["POST"])
@require("safety.manage")
def restore_safety_version(set_id: int | None) -> ResponseReturnValue:
    """Save an old version again as the newest, so the history stays one line."""
    _check_csrf()
    data, saved = _rule_set(set_id)
    if saved is None:
        note = _("Went back to the rules shipped with Engage.")
    else:
        note = _("Restored version %(id)s (saved %(when)s).", id=saved.id,
                 when=format_datetime(saved.created_at, "short"))
    reason = request.form.get("note", "").strip()
    return _save_rules(data, f"{note} {reason}" if reason else note)


# --- reply templates -------------------------------------------------------------------------

def _languages_offered() -> tuple[str, ...]:
    return tuple(current_app.config["LANGUAGES"])


@bp.route("/replies")
@require("templates.manage")
def reply_templates() -> str:
    builtins = [(name, *make("{service}")) for name, make in replies.BUILTIN.values()]
    own: dict[str, list[ReplyTemplate]] = {lang: [] for lang in _languages_offered()}
    for template in db.session.scalars(select(ReplyTemplate).order_by(
            ReplyTemplate.active.desc(), ReplyTemplate.name)):
        own.setdefault(template.language, []).append(template)
    return render_template("feedback_admin/replies.html", builtins=builtins, own=own,
                           form=ActionForm(), language_names=LANGUAGE_NAMES)


def _edit_reply(template: ReplyTemplate | None) -> ResponseReturnValue:
    if template is None:
        wanted = request.args.get("language", "")
        values = {"name": "", "subject": "", "body": "", "active": "1",
                  "language": wanted if wanted in _languages_offered() else ""}
    else:
        values = {"name": template.name, "language": template.language,
                  "subject": template.subject, "body": template.body,
                  "active": "1" if template.active else ""}
    errors: dict[str, str] = {}
    if request.method == "POST":
        _check_csrf()
        values = _fields("name", "language", "subject", "body", "active")
        try:
            saved = replies.save_template(
                template, current_user, name=values["name"], language=values["language"],
                subject=values["subject"], body=values["body"],
                active=values["active"] == "1", languages=_languages_offered())
        except replies.TemplateError as exc:
            errors[exc.field] = str(exc)
        else:
            flash(_("Template “%(name)s” saved.", name=saved.name))
            return redirect(url_for(".reply_templates") + f"#template-{saved.id}")
    return _render("feedback_admin/reply_edit.html", errors, template=template, values=values,
                   form=ActionForm(), languages=_languages_offered(),
                   language_names=LANGUAGE_NAMES)


@bp.route("/replies/new", methods=["GET", "POST"])
@require("templates.manage")
def new_reply_template() -> ResponseReturnValue:
    return _edit_reply(None)


def _template_or_404(template_id: int) -> ReplyTemplate:
    found = db.session.get(ReplyTemplate, template_id)
    if found is None:
        abort(404)
    return found


@bp.route("/replies/<int:template_id>", methods=["GET", "POST"])
@require("templates.manage")
def edit_reply_template(template_id: int) -> ResponseReturnValue:
    return _edit_reply(_template_or_404(template_id))


@bp.route("/replies/<int:template_id>/active", methods=["POST"])
@require("templates.manage")
def reply_template_active(template_id: int) -> ResponseReturnValue:
    """Switch a template off (staff no longer see it) or on again; nothing is deleted."""
    found = _template_or_404(template_id)
    _check_csrf()
    active = request.form.get("active") == "1"
    replies.save_template(found, current_user, name=found.name, language=found.language,
                          subject=found.subject, body=found.body, active=active,
                          languages=(found.language,))
    flash(_("Template “%(name)s” is offered to staff again.", name=found.name) if active
          else _("Template “%(name)s” is no longer offered to staff.", name=found.name))
    return redirect(url_for(".reply_templates") + f"#template-{found.id}")
