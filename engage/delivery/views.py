"""The unsubscribe page behind the link in every message (and one-click, RFC 8058)."""

from __future__ import annotations

from flask import Blueprint, abort, g, make_response, render_template, request
from flask_babel import refresh
from werkzeug.wrappers import Response as WerkzeugResponse

from engage.core.i18n import supported
from engage.core.permissions import public
from engage.delivery.services import opt_out, patient_from_unsubscribe_token
from engage.extensions import csrf, db
from engage.patients.models import Patient

bp = Blueprint("delivery", __name__)


@bp.route("/u/<token>", methods=["GET", "POST"])
@public
@csrf.exempt  # the signed token in the URL is the proof; mail clients post without a form
def unsubscribe(token: str) -> str | WerkzeugResponse:
    patient_id = patient_from_unsubscribe_token(token)
    patient = db.session.get(Patient, patient_id) if patient_id else None
    g.locale = supported(request.args.get("lang")) or (patient.language if patient else None)
    refresh()
    if patient is None:
        abort(make_response(render_template("delivery/unsubscribe.html", state="unknown"), 404))
    if request.method == "POST":
        one_click = request.form.get("List-Unsubscribe") == "One-Click"
        opt_out(patient, "email-header" if one_click else "link")
        return render_template("delivery/unsubscribe.html", state="done")
    state = "already" if patient.opted_out_at else "ask"
    return render_template("delivery/unsubscribe.html", state=state)
