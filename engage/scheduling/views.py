"""Staff and admin pages for follow-up protocols: list, edit, enrol, import, withdraw, rates."""

from __future__ import annotations

import base64
import binascii
import zlib
from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user
from sqlalchemy import func, select
from sqlalchemy.orm import joinedload
from werkzeug.wrappers import Response as WerkzeugResponse

import surveys
from engage.audit.services import record_views
from engage.core.i18n import LANGUAGE_NAMES, current_language
from engage.core.permissions import can_see_service, has_permission, require
from engage.extensions import db
from engage.org.services import visible_services
from engage.scheduling.forms import (
    CHANNEL_LABELS,
    EMPTY_ROW,
    MAX_ROWS,
    SOURCE_LABELS,
    ConfirmImportForm,
    EnrolForm,
    ProtocolForm,
    ToggleForm,
    UploadForm,
    WithdrawForm,
)
from engage.scheduling.models import Enrolment, Protocol
from engage.scheduling.services import (
    CSV_COLUMNS,
    MAX_CSV_ROWS,
    CsvCheck,
    SchedulingError,
    TimepointSpec,
    check_enrolment_csv,
    enrol,
    enrol_all,
    find_protocol,
    parse_enrolment,
    response_rates,
    save_protocol,
    set_protocol_active,
    withdraw,
)
from engage.survey.models import Invitation

bp = Blueprint("scheduling", __name__)

PAGE_SIZE = 50
#: Empty timepoint rows offered below the existing ones, and added by "Add more rows".
EMPTY_ROWS, MORE_ROWS = 2, 3
#: Largest CSV upload read; 5,000 generous rows fit well inside it.
MAX_UPLOAD_BYTES = 4 * 1024 * 1024


def protocol_or_404(slug: str) -> Protocol:
    """The protocol, if it belongs to a service the user may see (else 404, not 403)."""
    protocol = find_protocol(slug)
    if protocol is None or not can_see_service(current_user, protocol.service_id):
        abort(404)
    return protocol


# --- the list --------------------------------------------------------------------------

@bp.route("/protocols")
@require("protocols.view")
def protocols() -> str:
    service_ids = [s.id for s in visible_services(current_user)]
    rows = db.session.scalars(
        select(Protocol).options(joinedload(Protocol.service))
        .where(Protocol.service_id.in_(service_ids))
        .order_by(Protocol.active.desc(), Protocol.name)
    ).all()
    active = dict(db.session.execute(
        select(Enrolment.protocol_id, func.count())
        .where(Enrolment.protocol_id.in_([p.id for p in rows]), Enrolment.status == "active")
        .group_by(Enrolment.protocol_id)
    ).all())
    return render_template("scheduling/protocols.html", protocols=rows, active=active,
                           may_manage=has_permission(current_user, "protocols.manage"))


# --- creating and editing --------------------------------------------------------------

@bp.route("/protocols/new", methods=["GET", "POST"])
@require("protocols.manage")
def new_protocol() -> str | WerkzeugResponse:
    return _edit(None)


@bp.route("/protocols/<slug>/edit", methods=["GET", "POST"])
@require("protocols.manage")
def edit_protocol(slug: str) -> str | WerkzeugResponse:
    return _edit(protocol_or_404(slug))


def _edit(protocol: Protocol | None) -> str | WerkzeugResponse:
    services = visible_services(current_user)
    if request.method == "POST":
        form = ProtocolForm()
    elif protocol is None:
        form = ProtocolForm(data={"timepoints": [EMPTY_ROW] * EMPTY_ROWS})
    else:
        form = ProtocolForm(data={
            "name": protocol.name, "slug": protocol.slug, "service": protocol.service_id,
            "anchor_label": protocol.anchor_label, "description": protocol.description,
            "timepoints": [
                {"label": tp.label, "offset": tp.offset, "instruments": tp.instruments,
                 "window_opens": tp.window_opens, "window_closes": tp.window_closes,
                 "reminders": ", ".join(tp.reminders), "channel": tp.channel}
                for tp in protocol.timepoints
            ] + [EMPTY_ROW] * EMPTY_ROWS,
        })
    form.service.choices = [(s.id, s.name) for s in services]
    general: list[str] = []
    if request.method == "POST" and "add_rows" in request.form:
        # Writes nothing: the same page again, with everything typed and more rows.
        for _row in range(min(MORE_ROWS, MAX_ROWS - len(form.timepoints))):
            form.timepoints.append_entry(EMPTY_ROW)
    elif form.validate_on_submit():
        used = [(index, entry.form) for index, entry in enumerate(form.timepoints)
                if not entry.form.is_blank()]
        specs = [
            TimepointSpec(
                label=row.label.data or "", offset=(row.offset.data or "").strip(),
                instruments=list(row.instruments.data or []),
                window_opens=(row.window_opens.data or "").strip(),
                window_closes=(row.window_closes.data or "").strip(),
                reminders=row.reminder_list(), channel=row.channel.data or "",
            )
            for _index, row in used
        ]
        try:
            saved = save_protocol(
                (form.slug.data or "").strip(), form.name.data or "",
                # validate_on_submit checked the choice: one of these services.
                next(s for s in services if s.id == form.service.data), specs,
                description=(form.description.data or "").strip(),
                anchor_label=(form.anchor_label.data or "").strip(), protocol=protocol,
            )
        except SchedulingError as exc:
            general = _place_protocol_errors(form, exc.errors, [i for i, _row in used])
        else:
            _flash_saved(saved, created=protocol is None)
            return redirect(url_for(".protocol", slug=saved.slug))
    if not form.timepoints.entries:  # a post without rows: offer some to fill in
        for _row in range(EMPTY_ROWS):
            form.timepoints.append_entry(EMPTY_ROW)
    return render_template(
        "scheduling/edit.html", form=form, protocol=protocol, general=general,
        instruments=surveys.all(), channels=CHANNEL_LABELS,
        summary=_error_summary(form, general),
    )


def _place_protocol_errors(form: ProtocolForm, errors: dict[str, str],
                           rows: list[int]) -> list[str]:
    """Put each of the service's messages beside its field; return the rest."""
    general = []
    for key, message in errors.items():
        parts = key.split(".")
        field = None
        if len(parts) == 1 and parts[0] in ("slug", "name"):
            field = form[parts[0]]
        elif len(parts) == 3 and parts[0] == "timepoints" and parts[1].isdigit():
            entry = form.timepoints[rows[int(parts[1])]].form
            field = entry._fields.get(parts[2])
        if field is None:
            general.append(message)
        else:
            field.errors = [*field.errors, message]
    return general


def _error_summary(form: Any, general: list[str]) -> list[tuple[str | None, str]]:
    """Every error on the page, in order, with the id of its field to link to."""
    summary: list[tuple[str | None, str]] = [(None, message) for message in general]

    def walk(fields: Any) -> None:
        for field in fields:
            if field.type == "FieldList":
                for entry in field:
                    walk(entry.form if entry.type == "FormField" else [entry])
            elif field.type != "CSRFTokenField":
                summary.extend((field.id, message) for message in field.errors)

    walk(form)
    return summary


def _flash_saved(protocol: Protocol, *, created: bool) -> None:
    if created:
        flash(_("Protocol %(name)s created.", name=protocol.name))
        return
    enrolled = db.session.scalar(
        select(func.count()).select_from(Enrolment)
        .where(Enrolment.protocol_id == protocol.id, Enrolment.status == "active")
    ) or 0
    if enrolled:
        flash(ngettext(
            "Protocol saved. The questionnaires not yet sent to the %(num)d patient "
            "enrolled now follow the new timepoints.",
            "Protocol saved. The questionnaires not yet sent to the %(num)d patients "
            "enrolled now follow the new timepoints.", enrolled))
    else:
        flash(_("Protocol saved."))


@bp.route("/protocols/<slug>/active", methods=["POST"])
@require("protocols.manage")
def set_active(slug: str) -> WerkzeugResponse:
    protocol = protocol_or_404(slug)
    if ToggleForm().validate_on_submit():
        active = request.form.get("active") == "1"
        set_protocol_active(protocol, active)
        if active:
            flash(_("Protocol activated: patients can be enrolled on it."))
        else:
            flash(_("Protocol deactivated: nobody new can be enrolled on it. Patients "
                    "already enrolled carry on until they are withdrawn."))
    return redirect(url_for(".protocol", slug=protocol.slug))


# --- one protocol: timepoints, enrolling, enrolled patients, response rates -------------

@bp.route("/protocols/<slug>")
@require("protocols.view")
def protocol(slug: str) -> str:
    return _render_protocol(protocol_or_404(slug), _enrol_form())


def _enrol_form() -> EnrolForm:
    form = EnrolForm()
    form.language.choices = [("", _("Keep the patient's language (English if new)"))] + [
        (code, LANGUAGE_NAMES.get(code, code)) for code in current_app.config["LANGUAGES"]
    ]
    return form


def _render_protocol(protocol: Protocol, form: EnrolForm, general: list[str] | None = None
                     ) -> str:
    page = max(request.args.get("page", 1, type=int) or 1, 1)
    query = select(Enrolment).where(Enrolment.protocol_id == protocol.id)
    total = db.session.scalar(select(func.count()).select_from(query.subquery())) or 0
    enrolments = db.session.scalars(
        query.options(joinedload(Enrolment.patient))
        .order_by(Enrolment.status, Enrolment.created_at.desc(), Enrolment.id.desc())
        .limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)
    ).all()
    record_views("enrolment_list", [e.patient_id for e in enrolments], protocol=protocol.slug)
    return render_template(
        "scheduling/protocol.html", protocol=protocol, form=form, general=general or [],
        enrolments=enrolments, total=total, page=page,
        pages=max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1), rates=_rate_tables(protocol),
        channels=CHANNEL_LABELS, sources=SOURCE_LABELS, withdraw_form=WithdrawForm(),
        toggle_form=ToggleForm(),
        may_manage=has_permission(current_user, "protocols.manage"),
        may_enrol=has_permission(current_user, "enrolments.manage"),
        instruments={i.id: i.title_in(current_language()) for i in surveys.all()},
    )


def _rate_tables(protocol: Protocol) -> list[tuple[str, str, list[tuple[str, Any]]]]:
    """(caption, heading, [(label, rate)]) for each way of splitting the response rates."""
    rates = response_rates(protocol)
    timepoints = {tp.id: tp.label for tp in protocol.timepoints}
    return [
        (_("By timepoint"), _("Timepoint"),
         [(timepoints.get(r.key) or _("Timepoints since removed"), r)
          for r in rates["timepoint"]]),
        (_("By language"), _("Language"),
         [(LANGUAGE_NAMES.get(r.key, r.key), r) for r in rates["language"]]),
        (_("By channel"), _("Channel"),
         [(str(CHANNEL_LABELS.get(r.key, r.key)), r) for r in rates["channel"]]),
    ]


@bp.route("/protocols/<slug>/enrol", methods=["POST"])
@require("enrolments.manage")
def enrol_patient(slug: str) -> str | WerkzeugResponse:
    protocol = protocol_or_404(slug)
    form = _enrol_form()
    general: list[str] = []
    if form.validate_on_submit():
        try:
            wanted = parse_enrolment(form.as_enrolment(protocol.slug),
                                     current_app.config["LANGUAGES"])
        except SchedulingError as exc:
            for key, message in exc.errors.items():
                if key in form and key != "csrf_token":
                    form[key].errors = [*form[key].errors, message]
                else:
                    general.append(message)
        else:
            enrolment = enrol(wanted, source="web")
            planned = db.session.scalar(
                select(func.count()).select_from(Invitation)
                .where(Invitation.enrolment_id == enrolment.id,
                       Invitation.status == "scheduled")
            ) or 0
            flash(ngettext("%(ref)s is enrolled: %(num)d questionnaire is planned.",
                           "%(ref)s is enrolled: %(num)d questionnaires are planned.",
                           planned, ref=wanted.patient_ref))
            return redirect(url_for(".protocol", slug=protocol.slug))
    return _render_protocol(protocol, form, general)


@bp.route("/enrolments/<int:enrolment_id>/withdraw", methods=["POST"])
@require("enrolments.manage")
def withdraw_enrolment(enrolment_id: int) -> WerkzeugResponse:
    enrolment = db.session.get(Enrolment, enrolment_id)
    if enrolment is None or not can_see_service(current_user, enrolment.protocol.service_id):
        abort(404)
    form = WithdrawForm()
    if form.validate_on_submit():
        if enrolment.status != "active":
            flash(_("%(ref)s was already withdrawn.", ref=enrolment.patient.ref))
        else:
            cancelled = withdraw(enrolment, form.reason.data or "")
            flash(ngettext(
                "%(ref)s is withdrawn from %(protocol)s; %(num)d questionnaire not yet sent "
                "is cancelled.",
                "%(ref)s is withdrawn from %(protocol)s; %(num)d questionnaires not yet sent "
                "are cancelled.", cancelled, ref=enrolment.patient.ref,
                protocol=enrolment.protocol.name))
    if form.back.data == "patient":
        return redirect(url_for("patients.patient", patient_id=enrolment.patient_id))
    return redirect(url_for(".protocol", slug=enrolment.protocol.slug))


# --- importing a CSV file --------------------------------------------------------------

def pack_csv(text: str) -> str:
    """The CSV for the confirmation form, compressed.

    Flask refuses a form field over 500 kB (MAX_FORM_MEMORY_SIZE), and a
    5,000-row file is about that; compressed it is a fraction. Nothing relies
    on it being unchanged: the confirmation checks the content again.
    """
    return base64.urlsafe_b64encode(zlib.compress(text.encode("utf-8"), 9)).decode("ascii")


def unpack_csv(packed: str) -> str | None:
    """The CSV :func:`pack_csv` packed, or None if it is not (bounded, so no zip bomb)."""
    try:
        inflater = zlib.decompressobj()
        data = inflater.decompress(base64.urlsafe_b64decode(packed.encode("ascii")),
                                   MAX_UPLOAD_BYTES + 1)
        if len(data) > MAX_UPLOAD_BYTES or not inflater.eof:
            return None
        return data.decode("utf-8")
    except (ValueError, binascii.Error, zlib.error, UnicodeError):
        return None


@bp.route("/protocols/<slug>/import", methods=["GET", "POST"])
@require("enrolments.manage")
def import_csv(slug: str) -> str:
    protocol = protocol_or_404(slug)
    form = UploadForm()
    checked: CsvCheck | None = None
    text = ""
    if form.validate_on_submit():
        upload = form.file.data
        if upload is None or not upload.filename:
            form.file.errors = [*form.file.errors, _("Choose a CSV file to upload.")]
        else:
            data = upload.stream.read(MAX_UPLOAD_BYTES + 1)
            if len(data) > MAX_UPLOAD_BYTES:
                checked = CsvCheck(problems=[_(
                    "the file is larger than %(size)s MB; at most %(max)s rows can be "
                    "imported at once, so split it into smaller files",
                    size=MAX_UPLOAD_BYTES // (1024 * 1024), max=MAX_CSV_ROWS)])
            else:
                checked = check_enrolment_csv(data, protocol=protocol)
                if checked.ok:
                    text = data.decode("utf-8-sig")
    return _render_import(protocol, form, checked, text)


@bp.route("/protocols/<slug>/import/confirm", methods=["POST"])
@require("enrolments.manage")
def confirm_import(slug: str) -> str | WerkzeugResponse:
    protocol = protocol_or_404(slug)
    form = ConfirmImportForm()
    if not form.validate_on_submit():
        abort(400)
    text = unpack_csv(form.content.data or "")
    if text is None:
        checked = CsvCheck(problems=[_("the confirmed file could not be read; upload it "
                                       "again")])
    else:
        # Check again what is about to be imported: the preview proves nothing.
        checked = check_enrolment_csv(text, protocol=protocol)
    if not checked.ok:
        return _render_import(protocol, UploadForm(), checked, "")
    enrolments = enrol_all(checked.requests, source="csv")
    flash(ngettext("%(num)d patient enrolled from the file.",
                   "%(num)d patients enrolled from the file.", len(enrolments)))
    return redirect(url_for(".protocol", slug=protocol.slug))


def _render_import(protocol: Protocol, form: UploadForm, checked: CsvCheck | None,
                   text: str) -> str:
    confirm = ConfirmImportForm(formdata=None, data={"content": pack_csv(text)}) if (
        checked is not None and checked.ok) else None
    return render_template(
        "scheduling/import.html", protocol=protocol, form=form, checked=checked,
        confirm=confirm, max_rows=MAX_CSV_ROWS, columns=CSV_COLUMNS,
        languages=current_app.config["LANGUAGES"],
    )
