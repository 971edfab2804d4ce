"""The patient's pages behind an invitation link: start, questions, review, thanks.

The token in the URL is the patient's only credential. Forms carry a value
derived from it (not from a session), so an expired cookie never loses answers.
"""

from __future__ import annotations

import math
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    g,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import refresh
from werkzeug.wrappers import Response as WerkzeugResponse

import surveys
from engage.core.i18n import supported
from engage.core.inputs import clean_text
from engage.core.permissions import public
from engage.core.security import check_link_form_token, hash_token, link_form_token
from engage.extensions import csrf
from engage.survey.models import Invitation, Response
from engage.survey.services import (
    ResponseClosed,
    find_invitation,
    link_state,
    save_answers,
    start_response,
    submit,
)

bp = Blueprint("survey", __name__, url_prefix="/s/<token>")
# Forms here carry a link-bound token instead (see check_form below).
csrf.exempt(bp)

#: Relationships a proxy can choose, as (value, label) with labels translated per request.
RELATIONSHIPS = ("parent", "partner", "child", "family", "carer", "other")
MAX_TEXT = 2000


def relationship_labels() -> dict[str, str]:
    return {
        "parent": _("Parent or guardian"),
        "partner": _("Husband, wife or partner"),
        "child": _("Son or daughter"),
        "family": _("Other family member"),
        "carer": _("Carer"),
        "other": _("Someone else"),
    }


@bp.url_value_preprocessor
def load_invitation(endpoint: str | None, values: dict[str, Any] | None) -> None:
    token = (values or {}).pop("token", "")
    invitation = find_invitation(token)
    if invitation is None:
        g.locale = supported(request.args.get("lang")) or None
        refresh()
        abort(make_response(render_template("survey/closed.html", state="unknown"), 404))
    g.token = token
    g.invitation = invitation
    chosen = supported(request.args.get("lang"))
    if chosen and request.method == "GET" and chosen != invitation.language:
        # The patient picked a language: keep it for this link on every device.
        invitation.language = chosen
        if invitation.response is not None and invitation.response.submitted_at is None:
            invitation.response.language = chosen
    g.locale = supported(invitation.language) or "en"
    refresh()


@bp.url_defaults
def add_token(endpoint: str, values: dict[str, Any]) -> None:
    if "token" not in values and "token" in g:
        values["token"] = g.token


@bp.before_request
def check_state() -> WerkzeugResponse | tuple[str, int] | None:
    invitation: Invitation = g.invitation
    state = link_state(invitation)
    g.instrument = surveys.get(invitation.instrument_id)
    if state == "open":
        if request.method == "POST" and not check_link_form_token(
            hash_token(g.token), request.form.get("form_token")
        ):
            abort(400)
        return None
    if state == "completed":
        if request.endpoint == "survey.done":
            return None
        if request.endpoint == "survey.review" and request.method == "POST":
            # A second press of "Send" (double tap, back button): it ends on thanks.
            return redirect(url_for("survey.done"), code=303)
        return render_template("survey/closed.html", state=state), 410
    if state == "not-open-yet":
        return render_template("survey/closed.html", state=state), 403
    return render_template("survey/closed.html", state=state), 410


@bp.context_processor
def survey_context() -> dict[str, Any]:
    return {
        "invitation": g.get("invitation"),
        "instrument": g.get("instrument"),
        "form_token": link_form_token(hash_token(g.token)) if "invitation" in g else "",
        "lang": g.get("locale") or "en",
    }


def pages() -> list[list[surveys.Item]]:
    size = current_app.config["SURVEY_PAGE_SIZE"]
    items = g.instrument.items
    return [items[i:i + size] for i in range(0, len(items), size)]


def anchor(item: surveys.Item) -> str:
    """The id of the element an error link jumps to: the textarea, or the first radio."""
    return item.link_id if item.type == "text" else f"{item.link_id}-0"


def first_unfinished_page(response: Response) -> int | None:
    """The first page with a required question unanswered (1-based), or None."""
    answered = {a.link_id for a in response.answers if a.value not in (None, "")}
    for number, page in enumerate(pages(), start=1):
        if any(item.required and item.link_id not in answered for item in page):
            return number
    return None


@bp.route("", methods=["GET", "POST"])
@public
def start() -> str | WerkzeugResponse:
    invitation: Invitation = g.invitation
    response = invitation.response
    errors: dict[str, str] = {}
    respondent = response.respondent if response else "self"
    relationship = response.proxy_relationship if response else None
    if request.method == "POST":
        respondent = request.form.get("respondent", "self")
        relationship = request.form.get("relationship") or None
        if respondent not in ("self", "proxy"):
            respondent = "self"
        if respondent == "proxy" and relationship not in RELATIONSHIPS:
            errors["relationship"] = _("Tell us how you are related to the patient.")
        if respondent == "self":
            relationship = None
        if not errors:
            response = start_response(invitation, respondent=respondent,
                                      relationship=relationship)
            page = first_unfinished_page(response)
            return redirect(url_for("survey.page", number=page) if page
                            else url_for("survey.review"), code=303)
    minutes = max(1, math.ceil(len(g.instrument.items) * 12 / 60))
    return render_template(
        "survey/start.html", response=response, errors=errors, respondent=respondent,
        relationship=relationship, relationships=relationship_labels(), minutes=minutes,
    )


@bp.route("/q/<int:number>", methods=["GET", "POST"])
@public
def page(number: int) -> str | WerkzeugResponse:
    all_pages = pages()
    if not 1 <= number <= len(all_pages):
        abort(404)
    response = g.invitation.response
    if response is None:
        return redirect(url_for("survey.start"), code=303)
    items = all_pages[number - 1]
    errors: dict[str, str] = {}
    values = response.answer_map()
    if request.method == "POST":
        going_back = request.form.get("action") == "back"
        posted, errors = read_page(items, going_back)
        values.update(posted)
        valid = {k: v for k, v in posted.items() if k not in errors}
        try:
            save_answers(response, valid)
        except ResponseClosed:
            return redirect(url_for("survey.done"), code=303)
        if not errors:
            if going_back:
                target = (url_for("survey.page", number=number - 1) if number > 1
                          else url_for("survey.start"))
            elif number < len(all_pages):
                target = url_for("survey.page", number=number + 1)
            else:
                target = url_for("survey.review")
            return redirect(target, code=303)
    numbers = {item.link_id: g.instrument.items.index(item) + 1 for item in items}
    return render_template(
        "survey/page.html", items=items, number=number, page_count=len(all_pages),
        values=values, errors=errors, numbers=numbers,
        question_count=len(g.instrument.items), anchors={i.link_id: anchor(i) for i in items},
    )


def read_page(
    items: list[surveys.Item], going_back: bool
) -> tuple[dict[str, Any], dict[str, str]]:
    """What the patient posted for these items, and a message for each problem."""
    posted: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for item in items:
        # The one place a patient's answers are read: NUL and other control characters
        # would fail on PostgreSQL, and bidi overrides could disguise the text to staff.
        raw = clean_text(request.form.get(item.link_id, "")) or ""
        if item.type == "text":
            text = raw.strip()
            posted[item.link_id] = text
            if len(text) > MAX_TEXT:
                errors[item.link_id] = _(
                    "Please shorten your answer to %(max)s characters or fewer "
                    "(it is %(length)s now).", max=MAX_TEXT, length=len(text))
            continue
        posted[item.link_id] = raw or None
        if not raw:
            if item.required and not going_back:
                errors[item.link_id] = _("Please choose an answer.")
            continue
        try:
            item.option(raw)
        except surveys.InvalidAnswer:
            errors[item.link_id] = _("Please choose one of the answers shown.")
            posted[item.link_id] = None
    return posted, errors


@bp.route("/review", methods=["GET", "POST"])
@public
def review() -> str | WerkzeugResponse:
    response = g.invitation.response
    if response is None:
        return redirect(url_for("survey.start"), code=303)
    missing_page = first_unfinished_page(response)
    if request.method == "POST" and missing_page is None:
        submit(response)
        return redirect(url_for("survey.done"), code=303)
    page_of = {item.link_id: n for n, page in enumerate(pages(), start=1) for item in page}
    missing = [item for item in g.instrument.items
               if item.required and response.answer_map().get(item.link_id) in (None, "")]
    return render_template(
        "survey/review.html", response=response, answers=response.answer_map(),
        page_of=page_of, missing=missing, tried=request.method == "POST", anchor=anchor,
        relationships=relationship_labels(),
    )


@bp.route("/done")
@public
def done() -> str | WerkzeugResponse:
    invitation: Invitation = g.invitation
    if invitation.status != "completed":
        return redirect(url_for("survey.start"), code=303)
    response = invitation.response
    urgent = bool(response and response.id and _has_alert(response.id))
    return render_template("survey/done.html", urgent=urgent)


def _has_alert(response_id: int) -> bool:
    from sqlalchemy import select

    from engage.alerts.models import Alert
    from engage.extensions import db

    return db.session.scalar(select(Alert.id).where(Alert.response_id == response_id)
                             .limit(1)) is not None
