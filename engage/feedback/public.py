"""The public "Tell us about your care" page of a service: anonymous, no account, no JavaScript.

Like the survey pages it carries its own anti-forgery value instead of a session
CSRF token (cookies off must still work), keeps everything typed when something
needs fixing or the page was left open too long, and a second press of "Send"
finds the comment already taken.
"""

from __future__ import annotations

import hashlib
from typing import Any

from flask import Blueprint, abort, g, make_response, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import refresh
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from werkzeug.wrappers import Response as WerkzeugResponse

from engage.core.i18n import supported
from engage.core.inputs import clean_line, clean_text
from engage.core.permissions import public
from engage.core.security import (
    check_timed_form_token,
    read_signed_id,
    signed_id,
    timed_form_token,
)
from engage.extensions import csrf, db
from engage.feedback import flood, services
from engage.feedback.models import RESPONDENTS, FeedbackItem
from engage.org.models import Service

bp = Blueprint("tell_us", __name__, url_prefix="/tell-us/<slug>")
csrf.exempt(bp)

PURPOSE = "tell-us"
#: A form left open longer than this is shown again (with what was typed) to send again.
TOKEN_AGE = 24 * 3600
MAX_TEXT = services.MAX_TEXT
NAME_MAX = 200
EMAIL_MAX = 254
#: The page's one-time value is 32 characters; anything much longer is not ours.
NONCE_MAX = 64


@bp.url_value_preprocessor
def load_service(endpoint: str | None, values: dict[str, Any] | None) -> None:
    slug = (values or {}).pop("slug", "")
    g.locale = _choose_language()
    refresh()
    service = db.session.scalar(select(Service).where(Service.slug == slug))
    if service is None:
        abort(make_response(render_template("tell_us/unknown.html"), 404))
    g.service = service


@bp.url_defaults
def add_slug(endpoint: str, values: dict[str, Any]) -> None:
    if "slug" not in values and "service" in g:
        values["slug"] = g.service.slug


def _choose_language() -> str:
    from flask import current_app

    chosen = supported(request.args.get("lang")) or supported(request.form.get("lang"))
    if chosen:
        return chosen
    best = request.accept_languages.best_match(current_app.config["LANGUAGES"])
    return best or current_app.config["BABEL_DEFAULT_LOCALE"]


def respondent_labels() -> dict[str, str]:
    return {"patient": _("I am the patient"), "family": _("I am a family member"),
            "carer": _("I am a carer"), "other": _("Someone else")}


def _form_purpose(nonce: str) -> str:
    """The signed form value covers the page's one-time value too, so each page served is a
    form of its own, which may be sent once (``feedback/flood.py``)."""
    return f"{PURPOSE}:{nonce}"


def _render(values: dict[str, str], errors: dict[str, str], notice: str | None = None,
            status: int = 200, fresh: bool = False) -> tuple[str, int]:
    """The form with ``values``; ``fresh``: as a new form (the one sent was used up)."""
    service: Service = g.service
    nonce = (None if fresh else values.get("nonce")) or services.new_form_nonce()
    return render_template(
        "tell_us/form.html", values=values, errors=errors, notice=notice,
        form_token=timed_form_token(_form_purpose(nonce), service.id),
        nonce=nonce,
        respondents=respondent_labels(), max_text=MAX_TEXT, lang=g.locale,
        org_name=service.name,
    ), status


@bp.route("", methods=["GET", "POST"])
@public
def form() -> tuple[str, int] | WerkzeugResponse:
    service: Service = g.service
    if request.method == "GET":
        page, _status = _render({}, {})
        response = make_response(page)
        # The empty form holds nothing personal: let the browser keep it, so that Back
        # after Send shows this very page, with its one-time value, not a fresh one.
        response.headers["Cache-Control"] = "private, no-cache"
        return response
    values = {key: (clean_line(request.form.get(key)) or "").strip() for key in (
        "respondent", "name", "email", "phone", "nonce")}
    values["text"] = (clean_text(request.form.get("text")) or "").strip()
    values["consent"] = "1" if request.form.get("consent") == "1" else ""
    if request.form.get("website"):
        # The hidden field only robots fill in: look as if it worked, keep nothing.
        return redirect(url_for("tell_us.thanks", ref="0", lang=g.locale), code=303)
    form_token = request.form.get("form_token") or ""
    state = (check_timed_form_token(_form_purpose(values["nonce"]), service.id, form_token,
                                    TOKEN_AGE)
             if 0 < len(values["nonce"]) <= NONCE_MAX else "bad")
    if state == "bad":
        abort(400)
    key = _once_key(values["nonce"], values["text"])
    existing = services.find_by_nonce(key)
    if existing is not None and existing.service_id == service.id:
        return _thanks_redirect(existing)  # a second press of Send
    if state == "expired":
        return _render(values, {}, notice=_(
            "This page was open for a long time, so please check your comment and press "
            "Send again. Nothing you typed has been lost."))
    errors = _check(values)
    if errors:
        return _render(values, errors, status=400)
    form_hash = flood.token_hash(form_token)
    if flood.sent_before(form_hash) is not None:
        return _already_sent(values)
    if flood.over_ceiling(service):
        page, status = _render(values, {}, status=429, fresh=True, notice=_(
            "We are receiving an unusually large number of comments and cannot take yours "
            "just now. Nothing has been sent: please try again in an hour."))
        response = make_response(page, status)
        response.headers["Retry-After"] = "3600"
        return response
    source, text = flood.source_hash(service), flood.text_hash(values["text"])
    repeat_of = flood.open_repeat_alert(source, text)
    try:
        with db.session.begin_nested():
            sending = flood.claim(service, form_hash, source, text)
            item = services.intake(
                service=service, text=values["text"], source="web", language=g.locale,
                respondent=values["respondent"] or None,
                contact=services.Contact(name=values["name"] or None,
                                         email=values["email"] or None,
                                         phone=values["phone"] or None,
                                         consent=values["consent"] == "1"),
                form_nonce=key, repeat_of=repeat_of,
            )
            flood.settle(sending, item, repeat_of)
    except IntegrityError:
        # The same form arrived twice at once, and the other one won.
        winner = services.find_by_nonce(key)
        if winner is None:
            return _already_sent(values)
        return _thanks_redirect(winner)
    return _thanks_redirect(item)


def _already_sent(values: dict[str, str]) -> tuple[str, int]:
    """This form was sent before with another comment: nothing is stored, and what was
    typed comes back on a new form, to send as a comment of its own if meant."""
    return _render(values, {}, status=409, fresh=True, notice=_(
        "This form was already sent. If you want to send what is below as another "
        "comment, press Send again."))


def _once_key(nonce: str, text: str) -> str:
    """The form's one-time value with the comment it carried: the same Send again is one
    comment; a comment changed after Back (same page, same value) is a new one."""
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    return f"{nonce[:40]}.{digest}"


def _check(values: dict[str, str]) -> dict[str, str]:
    errors: dict[str, str] = {}
    text = values["text"]
    if not text:
        errors["text"] = _("Please tell us about your care.")
    elif len(text) > MAX_TEXT:
        errors["text"] = _("Please shorten your comment to %(max)s characters or fewer "
                           "(it is %(length)s now).", max=MAX_TEXT, length=len(text))
    if values["respondent"] and values["respondent"] not in RESPONDENTS:
        values["respondent"] = ""
    contact = services.Contact(name=values["name"], email=values["email"],
                               phone=values["phone"], consent=values["consent"] == "1")
    for field, message in services.check_contact(contact).items():
        errors[field] = message
    if (values["email"] or values["phone"]) and not contact.consent and "email" not in errors:
        errors["consent"] = _("Tick the box if you would like us to contact you, or leave "
                              "your email and phone number empty.")
    if len(values["email"]) > EMAIL_MAX and "email" not in errors:
        errors["email"] = _("Please shorten your email address to %(max)s characters or "
                            "fewer.", max=EMAIL_MAX)
    if len(values["name"]) > NAME_MAX:
        errors["name"] = _("Please shorten your name to %(max)s characters or fewer.",
                           max=NAME_MAX)
    return errors


def _thanks_redirect(item: FeedbackItem) -> WerkzeugResponse:
    return redirect(url_for("tell_us.thanks", ref=signed_id(PURPOSE, item.id), lang=g.locale),
                    code=303)


@bp.route("/thanks/<ref>")
@public
def thanks(ref: str) -> str:
    item_id = read_signed_id(PURPOSE, ref)
    item = db.session.get(FeedbackItem, item_id) if item_id else None
    if item is not None and item.service_id != g.service.id:
        item = None
    return render_template(
        "tell_us/thanks.html", urgent=bool(item and item.urgency == "urgent"),
        contact=bool(item and item.has_contact), lang=g.locale, org_name=g.service.name)
