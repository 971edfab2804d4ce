"""Open alerts first, one alert, acknowledging it; and the crisis contacts' template helpers."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user
from markupsafe import Markup, escape
from werkzeug.wrappers import Response as WerkzeugResponse

import surveys
from engage.alerts.crisis import NUMBER, REGIONS, tel_uri
from engage.alerts.forms import AcknowledgeForm
from engage.alerts.models import Alert
from engage.alerts.services import acknowledge, crisis_contacts_for, open_alerts_for
from engage.audit.services import record, record_views
from engage.core.permissions import can_see_service, has_permission, require
from engage.extensions import db

bp = Blueprint("alerts", __name__)
# Patient pages of other blueprints (survey, tell_us) show where to get help now through
# templates/alerts/_crisis_contacts.html, which calls this.
bp.add_app_template_global(crisis_contacts_for, "crisis_contacts")


@bp.app_template_global("emergency_number")
def emergency_number() -> str:
    """The emergency number of ``CRISIS_REGION``, for patient pages that tell people to
    call it (no database query: the form page names it before anything is sent)."""
    return REGIONS[current_app.config["CRISIS_REGION"]].emergency


bp.add_app_template_global(tel_uri, "tel")


@bp.app_template_filter("ltr_numbers")
def ltr_numbers(text: str) -> Markup:
    """``text`` escaped, with each phone number kept left to right, so that "116 123"
    inside an Arabic sentence does not read "123 116"."""
    out, end = [], 0
    for match in NUMBER.finditer(text):
        if sum(ch.isdigit() for ch in match.group()) < 3:
            continue  # "press 2", "24 hours": nothing to reorder
        out += [escape(text[end:match.start()]),
                Markup('<span dir="ltr">%s</span>') % match.group()]
        end = match.end()
    out.append(escape(text[end:]))
    return Markup("").join(out)


def alert_or_404(alert_id: int) -> Alert:
    alert = db.session.get(Alert, alert_id)
    if alert is None or not can_see_service(current_user, alert.service_id):
        abort(404)
    return alert


@bp.route("/alerts")
@require("alerts.view")
def index() -> str:
    alerts = open_alerts_for(current_user)
    record_views("alert_list", [a.patient_id for a in alerts if a.patient_id is not None])
    return render_template("alerts/index.html", alerts=alerts)


@bp.route("/alerts/<int:alert_id>")
@require("alerts.view")
def detail(alert_id: int) -> str:
    alert = alert_or_404(alert_id)
    return _render_detail(alert, AcknowledgeForm())


@bp.route("/alerts/<int:alert_id>/acknowledge", methods=["POST"])
@require("alerts.acknowledge")
def acknowledge_alert(alert_id: int) -> str | WerkzeugResponse:
    alert = alert_or_404(alert_id)
    form = AcknowledgeForm()
    if not form.validate_on_submit():
        return _render_detail(alert, form)
    if acknowledge(alert, current_user, form.note.data):
        flash(_("Alert acknowledged."))
    else:
        flash(_("Someone else acknowledged this alert first."))
    return redirect(url_for("alerts.index"))


def _render_detail(alert: Alert, form: AcknowledgeForm) -> str:
    """The alert with what raised it: the questionnaire's answers, or the comment."""
    record("view", "alert", alert.id, patient_id=alert.patient_id)
    response = alert.response
    comment = alert.feedback_item
    if comment is not None:
        record("view", "feedback_item", comment.id, patient_id=comment.patient_id)
    return render_template(
        "alerts/detail.html", alert=alert, form=form, comment=comment,
        instrument=surveys.get(response.instrument_id) if response is not None else None,
        may_ack=has_permission(current_user, "alerts.acknowledge"),
        answers=response.answer_map() if response is not None else {},
    )
