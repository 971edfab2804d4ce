"""The JSON API under ``/api/v1`` (``docs/api.md``): enrolments and protocols for EHR systems.

Clients authenticate with ``Authorization: Bearer <key>`` only (no cookies, so no
CSRF token; ``engage.api.cookieless`` hides any cookie sent). A valid key makes
``current_user`` an :class:`ApiPrincipal` whose role follows the key's scope, so the
app's one permission check (``@require``) refuses what the scope does not allow; the
key's services bound what it may see and act on (``can_see_service``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Request, abort, current_app, g, jsonify, request, url_for
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import BadRequest, Forbidden, HTTPException
from werkzeug.wrappers import Response

from engage.api.services import ApiPrincipal, authenticate_key
from engage.audit.services import record
from engage.core.db import utcnow
from engage.core.errors import problem
from engage.core.inputs import has_bad_characters
from engage.core.permissions import can_see_service, is_api_request, require
from engage.extensions import csrf, db, login_manager
from engage.patients.models import Patient
from engage.scheduling.models import Enrolment, Protocol
from engage.scheduling.services import SchedulingError, enrol, parse_enrolment, withdraw
from engage.survey.models import Invitation

bp = Blueprint("api", __name__, url_prefix="/api/v1")
# No cookie authenticates an API call, so there is no session for a forged request to ride.
csrf.exempt(bp)

ENROLMENT_FIELDS = ("patient_ref", "protocol", "anchor", "tz", "email", "phone", "language")
REASON_MAX = 500


@login_manager.request_loader
def load_api_client(req: Request) -> ApiPrincipal | None:
    """``current_user`` for an API request carrying a valid ``Authorization: Bearer`` key."""
    if not is_api_request():
        return None  # staff pages are for people with a session, never for keys
    scheme, _, key = req.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        return None
    api_key = authenticate_key(key.strip())
    if api_key is None:
        return None
    if api_key.expired(utcnow()):
        g.api_key_expired_at = api_key.expires_at  # the 401 says so (http_problem)
        return None
    return ApiPrincipal(api_key)


@bp.errorhandler(HTTPException)
def http_problem(error: HTTPException) -> Response:
    """Errors on API routes as problem details; a 401 says how to authenticate (RFC 6750)."""
    code = error.code or 500
    if code == 403 and error.description == Forbidden.description:
        # The permission check refused it: the key's scope does not allow it.
        return problem(403, "This API key's scope does not allow this request; it needs a "
                            "key with the write scope.")
    if code != 401:
        return problem(code, error.description)
    expired_at = g.get("api_key_expired_at")
    if expired_at is not None:
        response = problem(401, f"The API key expired at {_iso(expired_at)}; ask for a new "
                                "one.")
        response.headers["WWW-Authenticate"] = (
            'Bearer realm="engage", error="invalid_token", '
            'error_description="The API key expired"')
    elif request.headers.get("Authorization", "").lower().startswith("bearer "):
        response = problem(401, "The API key is not valid or has been revoked.")
        response.headers["WWW-Authenticate"] = 'Bearer realm="engage", error="invalid_token"'
    else:
        response = problem(401, "Send an API key: Authorization: Bearer <key>.")
        response.headers["WWW-Authenticate"] = 'Bearer realm="engage"'
    return response


# --- endpoints -------------------------------------------------------------------------

@bp.post("/enrolments")
@require("enrolments.create")
def create_enrolment() -> Response:
    """Enrol a patient (201), or move the anchor of their active enrolment (200)."""
    data = _json_object()
    errors = _field_errors(data, ENROLMENT_FIELDS)
    try:
        enrolment_request = parse_enrolment(
            {k: v for k, v in data.items() if k not in errors},
            current_app.config["LANGUAGES"])
    except SchedulingError as exc:
        errors = {**exc.errors, **errors}
    if errors:
        return _invalid(errors, "The enrolment was not saved.")
    if not can_see_service(current_user, enrolment_request.protocol.service_id):
        # The patient would be that service's: a key acts only for its own services.
        abort(403, f"This API key may not enrol on {enrolment_request.protocol.slug}: the "
                   "protocol belongs to a service the key is not bound to.")
    already = db.session.scalar(
        select(Enrolment.id).join(Patient, Enrolment.patient_id == Patient.id)
        .where(Patient.service_id == enrolment_request.protocol.service_id,
               Patient.ref == enrolment_request.patient_ref,
               Enrolment.protocol_id == enrolment_request.protocol.id,
               Enrolment.status == "active"))
    try:
        enrolment = enrol(enrolment_request, source="api")
    except IntegrityError:
        # Two requests for the same patient at the same moment: one wins, the other retries.
        abort(409, "Another request enrolled this patient at the same moment; "
                   "send the request again.")
    response = jsonify(_enrolment_json(enrolment))
    if already is None:
        response.status_code = 201
        response.headers["Location"] = url_for("api.get_enrolment", enrolment_id=enrolment.id)
    return response


@bp.get("/enrolments/<int:enrolment_id>")
@require("enrolments.view")
def get_enrolment(enrolment_id: int) -> Response:
    enrolment = _enrolment_or_404(enrolment_id)
    record("view", "enrolment", enrolment.id, patient_id=enrolment.patient_id)
    return jsonify(_enrolment_json(enrolment))


@bp.post("/enrolments/<int:enrolment_id>/withdraw")
@require("enrolments.withdraw")
def withdraw_enrolment(enrolment_id: int) -> Response:
    """Withdraw (cancelling what was not sent); withdrawing again changes nothing."""
    enrolment = _enrolment_or_404(enrolment_id)
    data = _json_object(allow_empty=True)
    errors = _field_errors(data, ("reason",))
    reason = data.get("reason") or ""
    if "reason" not in errors and len(reason) > REASON_MAX:
        errors["reason"] = f"at most {REASON_MAX} characters"
    if errors:
        return _invalid(errors, "The enrolment was not withdrawn.")
    withdraw(enrolment, reason)
    return jsonify(_enrolment_json(enrolment))


@bp.get("/protocols")
@require("protocols.view")
def list_protocols() -> Response:
    """Active protocols and their timepoints: the ids an integration enrols with."""
    protocols = db.session.scalars(
        select(Protocol).where(Protocol.active.is_(True)).order_by(Protocol.slug)).all()
    return jsonify({"protocols": [_protocol_json(p) for p in protocols
                                  if can_see_service(current_user, p.service_id)]})


# --- helpers ---------------------------------------------------------------------------

def _json_object(*, allow_empty: bool = False) -> dict[str, Any]:
    """The request body as a JSON object, or a 415 / 400 problem."""
    if allow_empty and not request.get_data(cache=True):
        return {}
    if not request.is_json:
        abort(415, "Send the body as JSON, with Content-Type: application/json.")
    try:
        data = request.get_json()
    except BadRequest:
        abort(400, "The body is not valid JSON.")
    if not isinstance(data, dict):
        abort(400, "The body must be a JSON object.")
    return data


def _field_errors(data: dict[str, Any], allowed: tuple[str, ...]) -> dict[str, str]:
    """Unknown fields (a typo would otherwise be silently ignored) and non-string values."""
    errors = {}
    for key, value in data.items():
        if key not in allowed:
            errors[key] = "unknown field; expected " + ", ".join(allowed)
        elif value is not None and not isinstance(value, str):
            errors[key] = "must be a string"
        elif value is not None and has_bad_characters(value):
            # NUL fails on PostgreSQL; bidi overrides would disguise the text to staff.
            errors[key] = "must not contain control or bidirectional formatting characters"
    return errors


def _invalid(errors: dict[str, str], detail: str) -> Response:
    return problem(422, detail, errors=errors)


def _enrolment_or_404(enrolment_id: int) -> Enrolment:
    enrolment = db.session.get(Enrolment, enrolment_id)
    if enrolment is None or not can_see_service(current_user,
                                                enrolment.protocol.service_id):
        abort(404, f"There is no enrolment {enrolment_id}.")
    return enrolment


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _enrolment_json(enrolment: Enrolment) -> dict[str, Any]:
    invitations = db.session.scalars(
        select(Invitation).where(Invitation.enrolment_id == enrolment.id)
        .order_by(Invitation.due_at, Invitation.id)
        # withdraw() cancels with a bulk UPDATE: read the rows as they are now.
        .execution_options(populate_existing=True)).all()
    labels = {tp.id: tp.label for tp in enrolment.protocol.timepoints}
    return {
        "id": enrolment.id,
        "patient_ref": enrolment.patient.ref,
        "protocol": enrolment.protocol.slug,
        "anchor": _iso(enrolment.anchor_at),
        "tz": enrolment.timezone,
        "status": enrolment.status,
        "source": enrolment.source,
        "created_at": _iso(enrolment.created_at),
        "withdrawn_at": _iso(enrolment.withdrawn_at),
        "withdrawal_reason": enrolment.withdrawal_reason,
        "invitations": [
            {
                "instrument": i.instrument_id,
                "timepoint": labels.get(i.timepoint_id) if i.timepoint_id else None,
                "due": _iso(i.due_at),
                "opens": _iso(i.opens_at),
                "closes": _iso(i.closes_at),
                "status": i.status,
                "messages_planned": i.messages_planned,
                "last_sent_at": _iso(i.last_sent_at),
                "last_error": i.last_error,
            }
            for i in invitations
        ],
    }


def _protocol_json(protocol: Protocol) -> dict[str, Any]:
    return {
        "slug": protocol.slug,
        "name": protocol.name,
        "description": protocol.description,
        "anchor_label": protocol.anchor_label,
        "service": protocol.service.slug,
        "timepoints": [
            {
                "label": tp.label,
                "offset": tp.offset,
                "instruments": list(tp.instruments),
                "window": {"opens": tp.window_opens, "closes": tp.window_closes},
                "reminders": list(tp.reminders),
                "channel": tp.channel,
            }
            for tp in protocol.timepoints
        ],
    }
