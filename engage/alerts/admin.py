"""The admin's crisis contacts pages: the lists, the editor, deleting, the preview.

Lists per service and organisation-wide; deleting asks first; the preview shows exactly what
a patient of a chosen service sees in each language (``crisis_contacts_for``)."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_login import current_user
from markupsafe import Markup
from werkzeug.wrappers import Response as WerkzeugResponse

from engage.alerts.crisis import REGION_NAMES, built_in
from engage.alerts.forms import ConfirmForm, CrisisContactForm
from engage.alerts.models import CrisisContact
from engage.alerts.services import (
    CrisisContactError,
    crisis_contact_lists,
    crisis_contacts_for,
    delete_crisis_contact,
    save_crisis_contact,
)
from engage.core.i18n import LANGUAGE_NAMES
from engage.core.permissions import can_see_service, require
from engage.extensions import db
from engage.org.models import Service
from engage.org.services import visible_services

bp = Blueprint("crisis", __name__, url_prefix="/crisis-contacts")

FIELDS = ("service", "language", "name", "phone", "text", "hours", "note", "position")


def contact_or_404(contact_id: int) -> CrisisContact:
    contact = db.session.get(CrisisContact, contact_id)
    if contact is None or (contact.service_id is not None
                           and not can_see_service(current_user, contact.service_id)):
        abort(404)
    return contact


def _service_arg(services: list[Service]) -> Service | None:
    """The service named by ``?service=ID`` among those the user may see (None: none named)."""
    value = request.args.get("service", "")
    if not value:
        return None
    found = next((s for s in services if str(s.id) == value), None)
    if found is None:
        abort(404)
    return found


@bp.route("")
@require("crisis.manage")
def index() -> str:
    services = visible_services(current_user)
    region = current_app.config["CRISIS_REGION"]
    emergency, defaults = built_in(region)
    return render_template(
        "alerts/crisis_index.html", services=services,
        lists=crisis_contact_lists(s.id for s in services), region=region,
        region_name=REGION_NAMES[region], emergency=emergency, defaults=defaults,
        language_names=LANGUAGE_NAMES,
    )


@bp.route("/new", methods=["GET", "POST"])
@require("crisis.manage")
def new() -> str | WerkzeugResponse | tuple[str, int]:
    return _edit(None)


@bp.route("/<int:contact_id>/edit", methods=["GET", "POST"])
@require("crisis.manage")
def edit(contact_id: int) -> str | WerkzeugResponse | tuple[str, int]:
    return _edit(contact_or_404(contact_id))


def _edit(contact: CrisisContact | None) -> str | WerkzeugResponse | tuple[str, int]:
    services = visible_services(current_user)
    if request.method == "POST":
        form = CrisisContactForm()
    elif contact is None:
        chosen = _service_arg(services)
        form = CrisisContactForm(data={"service": str(chosen.id) if chosen else ""})
    else:
        form = CrisisContactForm(data={
            "service": str(contact.service_id or ""), "language": contact.language or "",
            "name": contact.name, "phone": contact.phone or "", "text": contact.text or "",
            "hours": contact.hours, "note": contact.note or "",
            "position": str(contact.position)})
    form.service.choices = [("", _("Every service (the organisation-wide list)"))] + [
        (str(s.id), s.name) for s in services]
    form.language.choices = [("", _("Every language"))] + [
        (code, LANGUAGE_NAMES.get(code, code)) for code in current_app.config["LANGUAGES"]]
    if request.method == "POST":
        if not form.validate_on_submit():
            abort(400)  # only the CSRF token is checked here; the service checks the rest
        chosen_id = form.service.data or ""
        service_id: int | None = None
        if chosen_id:
            # A service the user may not see is refused like one that does not exist.
            service_id = next((s.id for s in services if str(s.id) == chosen_id), -1)
        try:
            saved = save_crisis_contact(
                contact, service_id=service_id, language=form.language.data,
                name=form.name.data or "", phone=form.phone.data, text=form.text.data,
                hours=form.hours.data or "", note=form.note.data,
                position=form.position.data)
        except CrisisContactError as exc:
            for key, message in exc.errors.items():
                field = form[key if key in FIELDS else "name"]
                field.errors = [*field.errors, message]
        else:
            flash(_("Crisis contact %(name)s saved.", name=saved.name))
            return redirect(url_for(".index", _anchor=_list_anchor(saved.service_id)))
    summary = [(form[key].id, message) for key in FIELDS for message in form[key].errors]
    page = render_template("alerts/crisis_edit.html", form=form, contact=contact,
                           summary=summary)
    return (page, 400) if summary else page


def _list_anchor(service_id: int | None) -> str:
    return f"service-{service_id}" if service_id else "organisation"


@bp.route("/<int:contact_id>/delete", methods=["GET", "POST"])
@require("crisis.manage")
def delete(contact_id: int) -> str | WerkzeugResponse:
    contact = contact_or_404(contact_id)
    form = ConfirmForm()
    if request.method == "POST":
        if not form.validate_on_submit():
            abort(400)
        if request.form.get("confirm") == "yes":
            name, service_id = contact.name, contact.service_id
            delete_crisis_contact(contact)
            flash(_("Crisis contact %(name)s deleted.", name=name))
            return redirect(url_for(".index", _anchor=_list_anchor(service_id)))
    return render_template("alerts/crisis_delete.html", contact=contact, form=form)


@bp.route("/preview")
@require("crisis.manage")
def preview() -> str:
    services = visible_services(current_user)
    service = _service_arg(services) or (services[0] if services else None)
    previews = []
    for lang in current_app.config["LANGUAGES"]:
        with force_locale(lang):
            crisis = crisis_contacts_for(service, lang)
            html = Markup(render_template("alerts/_crisis_contacts.html", crisis=crisis))
        previews.append({"lang": lang, "crisis": crisis, "html": html})
    return render_template("alerts/crisis_preview.html", services=services, service=service,
                           previews=previews, language_names=LANGUAGE_NAMES,
                           region_name=REGION_NAMES[current_app.config["CRISIS_REGION"]])
