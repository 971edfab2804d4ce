"""Invitations, saving answers page by page, and submitting a response exactly once."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

import surveys
from engage.audit.services import record
from engage.core.db import claim, utcnow
from engage.core.security import hash_token, new_token
from engage.extensions import db
from engage.org.models import Service
from engage.patients.models import Patient
from engage.survey.models import (
    OPEN_STATUSES,
    Answer,
    Invitation,
    InvitationToken,
    Response,
)


def survey_url(base_url: str, token: str) -> str:
    return f"{base_url}/s/{token}"


def create_invitation(
    patient: Patient, service: Service, instrument_id: str, *,
    language: str | None = None, days: int = 14, now: datetime | None = None,
    opens_at: datetime | None = None, status: str = "sent",
) -> tuple[Invitation, str]:
    """An invitation and a new link token for it (returned once, never stored).

    An open invitation for the same patient, service and instrument is reused,
    with its answers: asking a patient twice for the same questionnaire must
    not split their answers. Its earlier links keep working. The patient must be
    ``service``'s own record (ValueError otherwise): a service invites only its patients.
    """
    if patient.service_id != service.id:
        raise ValueError("the patient record belongs to another service")
    surveys.get(instrument_id)  # raises UnknownInstrument early
    now = now or utcnow()
    invitation = db.session.scalar(
        select(Invitation).where(
            Invitation.patient_id == patient.id,
            Invitation.service_id == service.id,
            Invitation.instrument_id == instrument_id,
            Invitation.status.in_(OPEN_STATUSES),
            Invitation.closes_at > now,
        ).order_by(Invitation.id.desc()).limit(1)
    )
    if invitation is None:
        invitation = Invitation(
            patient=patient, service=service, instrument_id=instrument_id,
            opens_at=opens_at or now, closes_at=(opens_at or now) + timedelta(days=days),
            status=status, created_at=now, language=language or patient.language,
        )
        db.session.add(invitation)
        action = "create"
    else:
        invitation.language = language or invitation.language
        action = "reissue"
    db.session.flush()
    token = issue_token(invitation, now=now)
    record(action, "invitation", invitation.id, patient_id=patient.id,
           instrument=instrument_id)
    return invitation, token


def issue_token(invitation: Invitation, now: datetime | None = None,
                short: bool = False) -> str:
    """A new link to ``invitation``; only its hash is kept. ``short``: 128 bits, for SMS."""
    token = new_token(short)
    db.session.add(InvitationToken(invitation_id=invitation.id, token_hash=hash_token(token),
                                   created_at=now or utcnow()))
    return token


def find_invitation(token: str) -> Invitation | None:
    if not token or len(token) > 100:
        return None
    return db.session.scalar(
        select(Invitation).join(InvitationToken)
        .where(InvitationToken.token_hash == hash_token(token))
    )


def link_state(invitation: Invitation, now: datetime | None = None) -> str:
    """``open``, ``completed``, ``expired``, ``cancelled`` or ``not-open-yet``."""
    now = now or utcnow()
    if invitation.status == "completed":
        return "completed"
    if invitation.status in ("cancelled", "failed"):
        return "cancelled"
    if invitation.status == "expired" or invitation.closes_at <= now:
        return "expired"
    if invitation.opens_at > now:
        return "not-open-yet"
    return "open"


def start_response(
    invitation: Invitation, *, respondent: str = "self", relationship: str | None = None,
) -> Response:
    """The invitation's response, created on first use; records who is answering."""
    instrument = surveys.get(invitation.instrument_id)
    response = invitation.response
    if response is None:
        response = Response(
            invitation_id=invitation.id, patient_id=invitation.patient_id,
            service_id=invitation.service_id, instrument_id=instrument.id,
            instrument_version=instrument.version, language=invitation.language,
        )
        try:
            with db.session.begin_nested():
                db.session.add(response)
        except IntegrityError:
            # Two tabs started at the same moment: use the one that won.
            response = db.session.scalar(
                select(Response).where(Response.invitation_id == invitation.id)
            )
            assert response is not None
        db.session.expire(invitation, ["response"])
    response.respondent = "proxy" if respondent == "proxy" else "self"
    response.proxy_relationship = relationship if response.respondent == "proxy" else None
    db.session.flush()
    record("update", "response", response.id, patient_id=response.patient_id,
           actor="patient-link", respondent=response.respondent)
    return response


def save_answers(response: Response, values: Mapping[str, Any]) -> None:
    """Store the answers of one page; ``None`` or ``""`` clears an answer.

    Values are checked against the instrument first (``surveys.InvalidAnswer``),
    so nothing is written when one of them is not a valid option.
    """
    if response.submitted_at is not None:
        raise ResponseClosed(response.id)
    instrument = surveys.get(response.instrument_id)
    rows: dict[str, dict[str, Any]] = {}
    for link_id, raw in values.items():
        item = instrument.item(link_id)
        row: dict[str, Any] = {"value_code": None, "value_number": None, "value_text": None}
        if raw is None or raw == "":
            pass
        elif item.type == "text":
            row["value_text"] = str(raw)
        else:
            option = item.option(raw)
            row["value_code"] = option.code
            row["value_number"] = float(option.value)
        rows[link_id] = row
    existing = {a.link_id: a for a in response.answers}
    for link_id, row in rows.items():
        answer = existing.get(link_id)
        if answer is None:
            if all(v is None for v in row.values()):
                continue
            response.answers.append(Answer(link_id=link_id, **row))
        else:
            for key, value in row.items():
                setattr(answer, key, value)
    db.session.flush()
    record("update", "answers", response.id, patient_id=response.patient_id,
           actor="patient-link", items=sorted(rows))


class ResponseClosed(RuntimeError):
    """The response was already submitted; its answers can no longer change."""


@dataclass(frozen=True)
class SubmitResult:
    response: Response
    score: surveys.Score | None
    #: False when this call found the response already submitted (a double submit).
    first: bool


def submit(response: Response, now: datetime | None = None) -> SubmitResult:
    """Score and close the response exactly once, raising any safety alerts.

    The close is a conditional UPDATE, so of two submits racing each other
    (double click, back button, two devices) only one scores and alerts.
    """
    from engage.alerts.services import raise_alerts

    now = now or utcnow()
    instrument = surveys.get(response.instrument_id)
    score = instrument.score(response.answer_map())
    claimed = claim(
        update(Response)
        .where(Response.id == response.id, Response.submitted_at.is_(None))
        .values(submitted_at=now)
    )
    if not claimed:
        db.session.refresh(response)
        return SubmitResult(response, None, first=False)
    response.submitted_at = now
    response.total = _number(score.total)
    response.band = score.band
    response.complete = score.complete
    response.missing = list(score.missing)
    invitation = response.invitation
    invitation.status = "completed"
    invitation.completed_at = now
    db.session.flush()
    record("create", "response", response.id, patient_id=response.patient_id,
           actor="patient-link", instrument=response.instrument_id)
    raise_alerts(response, score.alerts, now=now)
    _take_in_comments(response)
    return SubmitResult(response, score, first=True)


def _take_in_comments(response: Response) -> None:
    """Free-text answers become feedback items. A failure here must not lose the patient's
    submit: it is logged, and the ``feedback.intake`` job takes the comments in later."""
    from flask import current_app

    from engage.feedback.services import intake_response

    try:
        with db.session.begin_nested():
            intake_response(response)
    except Exception:
        current_app.logger.exception("feedback intake failed for response %s", response.id)


def _number(value: float | int | None) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return float(value)
