"""Protocols, enrolment, withdrawal, and planning the invitations a protocol asks for.

Every way of enrolling (staff page, CSV upload, CLI, API) goes through
:func:`parse_enrolment` and :func:`enrol`, so they accept and refuse the same things.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select, update

import surveys
from engage.audit.services import record
from engage.core.db import utcnow
from engage.extensions import db
from engage.org.models import Service
from engage.patients.models import Patient
from engage.patients.services import get_or_create_patient
from engage.scheduling.models import CHANNELS, Enrolment, Protocol, Timepoint
from engage.scheduling.timing import Offset, OffsetError, zone
from engage.survey.models import Invitation

UNSENT = ("scheduled",)


class SchedulingError(ValueError):
    """Input that cannot be used; ``errors`` maps a field to what is wrong with it."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors = dict(errors)
        super().__init__("; ".join(f"{k}: {v}" for k, v in self.errors.items()))


# --- protocols -------------------------------------------------------------------------

@dataclass
class TimepointSpec:
    label: str
    offset: str
    instruments: list[str]
    window_opens: str = "0"
    window_closes: str = "+7d"
    reminders: list[str] = field(default_factory=list)
    channel: str = "patient"


def check_timepoint(spec: TimepointSpec) -> dict[str, str]:
    """What is wrong with one timepoint, by field name (empty when it is fine)."""
    errors: dict[str, str] = {}
    if not spec.label.strip():
        errors["label"] = "a label is required, e.g. Baseline or 6 weeks"
    offsets: dict[str, Offset] = {}
    for name in ("offset", "window_opens", "window_closes"):
        try:
            offsets[name] = Offset.parse(getattr(spec, name))
        except OffsetError as exc:
            errors[name] = str(exc)
    if not spec.instruments:
        errors["instruments"] = "choose at least one questionnaire"
    for instrument_id in spec.instruments:
        try:
            surveys.get(instrument_id)
        except surveys.UnknownInstrument:
            errors["instruments"] = f"unknown questionnaire {instrument_id!r}"
    if "window_opens" in offsets and "window_closes" in offsets and (
        offsets["window_closes"].approx_days() <= offsets["window_opens"].approx_days()
    ):
        errors["window_closes"] = "the window must close after it opens"
    length = (offsets["window_closes"].approx_days() - offsets["window_opens"].approx_days()
              if "window_opens" in offsets and "window_closes" in offsets else None)
    for reminder in spec.reminders:
        try:
            days = Offset.parse(reminder).approx_days()
        except OffsetError as exc:
            errors["reminders"] = str(exc)
            break
        if days <= 0 or (length is not None and days >= length):
            errors["reminders"] = (f"reminder {reminder} must fall inside the window "
                                   "(after it opens, before it closes)")
            break
    if spec.channel not in CHANNELS:
        errors["channel"] = f"choose one of {', '.join(CHANNELS)}"
    return errors


def save_protocol(
    slug: str, name: str, service: Service, timepoints: Sequence[TimepointSpec], *,
    description: str = "", anchor_label: str = "", protocol: Protocol | None = None,
    now: datetime | None = None,
) -> Protocol:
    """Create a protocol, or replace an existing one's settings and timepoints.

    Editing re-plans every active enrolment: invitations not yet sent follow the
    new timepoints; sent ones keep their history. Raises :class:`SchedulingError`.
    """
    errors: dict[str, str] = {}
    if not slug or not slug.replace("-", "").isalnum() or slug != slug.lower():
        errors["slug"] = "use lower-case letters, digits and hyphens"
    elif db.session.scalar(select(Protocol.id).where(Protocol.slug == slug,
                                                     Protocol.id != (protocol.id if protocol
                                                                     else -1))):
        errors["slug"] = f"a protocol called {slug} already exists"
    if not name.strip():
        errors["name"] = "a name is required"
    if not timepoints:
        errors["timepoints"] = "add at least one timepoint"
    for index, spec in enumerate(timepoints):
        for key, message in check_timepoint(spec).items():
            errors[f"timepoints.{index}.{key}"] = message
    if errors:
        raise SchedulingError(errors)
    creating = protocol is None
    if protocol is None:
        protocol = Protocol(slug=slug)
        db.session.add(protocol)
    protocol.slug, protocol.name, protocol.service = slug, name.strip(), service
    protocol.description, protocol.anchor_label = description, anchor_label
    # Keep timepoint rows (and so the link from sent invitations) where positions match.
    existing = list(protocol.timepoints)
    for index, spec in enumerate(timepoints):
        tp = existing[index] if index < len(existing) else Timepoint()
        tp.position, tp.label, tp.offset = index, spec.label.strip(), str(
            Offset.parse(spec.offset))
        tp.instruments = list(dict.fromkeys(spec.instruments))
        tp.window_opens = str(Offset.parse(spec.window_opens))
        tp.window_closes = str(Offset.parse(spec.window_closes))
        tp.reminders = [str(Offset.parse(r)) for r in spec.reminders]
        tp.channel = spec.channel
        if index >= len(existing):
            protocol.timepoints.append(tp)
    for tp in existing[len(timepoints):]:
        protocol.timepoints.remove(tp)
    db.session.flush()
    record("create" if creating else "update", "protocol", protocol.id)
    if not creating:
        replan_protocol(protocol, now=now)
    return protocol


def replan_protocol(protocol: Protocol, now: datetime | None = None) -> int:
    """Bring every active enrolment's unsent invitations in line with the protocol."""
    enrolments = db.session.scalars(
        select(Enrolment).where(Enrolment.protocol_id == protocol.id,
                                Enrolment.status == "active")
    ).all()
    return sum(plan_invitations(e, now=now) for e in enrolments)


# --- enrolment -------------------------------------------------------------------------

@dataclass
class EnrolmentRequest:
    patient_ref: str
    protocol: Protocol
    anchor_at: datetime
    timezone: str
    email: str | None = None
    phone: str | None = None
    language: str | None = None


def parse_enrolment(data: Mapping[str, Any], languages: Iterable[str]) -> EnrolmentRequest:
    """Check one enrolment (a CSV row, an API body, CLI options); raise SchedulingError.

    Keys: ``patient_ref``, ``protocol`` (its slug), ``anchor`` (ISO 8601 date or
    date-time; a date-time without offset is read in ``tz``), ``tz`` (IANA,
    default Europe/London), ``email``, ``phone``, ``language``.
    """
    errors: dict[str, str] = {}

    def text(key: str) -> str:
        value = data.get(key)
        return "" if value is None else str(value).strip()

    ref = text("patient_ref")
    if not ref:
        errors["patient_ref"] = "required"
    elif len(ref) > 64:
        errors["patient_ref"] = "at most 64 characters"
    protocol = None
    if not text("protocol"):
        errors["protocol"] = "required"
    else:
        protocol = db.session.scalar(select(Protocol).where(Protocol.slug == text("protocol")))
        if protocol is None or not protocol.active:
            errors["protocol"] = f"no active protocol {text('protocol')!r}"
    tz_name = text("tz") or "Europe/London"
    tz = None
    try:
        tz = zone(tz_name)
    except ValueError as exc:
        errors["tz"] = str(exc)
    anchor = None
    if not text("anchor"):
        errors["anchor"] = "required (e.g. 2026-12-01 or 2026-12-01T09:00)"
    else:
        try:
            anchor = datetime.fromisoformat(text("anchor"))
        except ValueError:
            errors["anchor"] = f"{text('anchor')!r} is not a date like 2026-12-01T09:00"
        if anchor is not None and tz is not None and anchor.tzinfo is None:
            if len(text("anchor")) == 10:  # a bare date: the start of the working day
                anchor = anchor.replace(hour=9)
            anchor = anchor.replace(tzinfo=tz)
    email = text("email") or None
    if email and ("@" not in email or " " in email or len(email) > 254):
        errors["email"] = f"{email!r} is not an email address"
    phone = text("phone").replace(" ", "") or None
    if phone and not (phone.startswith("+") and phone[1:].isdigit() and 8 <= len(phone) <= 16):
        errors["phone"] = f"{phone!r} is not an international number like +447700900123"
    language = text("language") or None
    if language and language not in languages:
        errors["language"] = f"choose one of {', '.join(languages)}"
    if errors:
        raise SchedulingError(errors)
    assert protocol is not None and anchor is not None
    return EnrolmentRequest(ref, protocol, anchor.astimezone(zone("UTC")), tz_name, email,
                            phone, language)


def enrol(request: EnrolmentRequest, *, source: str = "web",
          now: datetime | None = None) -> Enrolment:
    """Enrol the patient (created if new) and plan their invitations.

    A patient already active on the protocol gets the new anchor instead of a
    second enrolment (re-planning what has not been sent).
    """
    patient, _ = get_or_create_patient(
        request.patient_ref, language=request.language, email=request.email,
        phone=request.phone, timezone=request.timezone,
    )
    if request.phone and not request.email:
        patient.channel = "sms"
    enrolment = db.session.scalar(
        select(Enrolment).where(Enrolment.patient_id == patient.id,
                                Enrolment.protocol_id == request.protocol.id,
                                Enrolment.status == "active")
    )
    action = "update"
    if enrolment is None:
        enrolment = Enrolment(patient=patient, protocol=request.protocol, source=source)
        db.session.add(enrolment)
        action = "create"
    enrolment.anchor_at = request.anchor_at
    enrolment.timezone = request.timezone
    db.session.flush()
    plan_invitations(enrolment, now=now)
    record(action, "enrolment", enrolment.id, patient_id=patient.id,
           protocol=request.protocol.slug, source=source)
    return enrolment


def enrol_all(requests: Sequence[EnrolmentRequest], *, source: str,
              now: datetime | None = None) -> list[Enrolment]:
    """Enrol every request in one transaction (the caller commits or rolls back)."""
    return [enrol(r, source=source, now=now) for r in requests]


def plan_invitations(enrolment: Enrolment, now: datetime | None = None) -> int:
    """Create, move or cancel the enrolment's unsent invitations to match its protocol.

    Returns how many invitations changed. Sent invitations are left as they are;
    windows that closed before ``now`` are not planned at all.
    """
    now = now or utcnow()
    tz = zone(enrolment.timezone)
    protocol = enrolment.protocol
    existing = db.session.scalars(
        select(Invitation).where(Invitation.enrolment_id == enrolment.id)
    ).all()
    by_key = {(i.timepoint_id, i.instrument_id): i for i in existing}
    wanted: set[tuple[int | None, str]] = set()
    changed = 0
    for tp in protocol.timepoints:
        due = Offset.parse(tp.offset).apply(enrolment.anchor_at, tz)
        opens = Offset.parse(tp.window_opens).apply(due, tz)
        closes = Offset.parse(tp.window_closes).apply(due, tz)
        for instrument_id in tp.instruments:
            key = (tp.id, instrument_id)
            wanted.add(key)
            invitation = by_key.get(key)
            if invitation is not None and invitation.status not in UNSENT:
                continue  # already sent (or answered): its history stays as it was
            if closes <= now:
                if invitation is not None:
                    invitation.status = "cancelled"
                    changed += 1
                continue
            if invitation is None:
                invitation = Invitation(
                    patient_id=enrolment.patient_id, service_id=protocol.service_id,
                    instrument_id=instrument_id, enrolment_id=enrolment.id,
                    timepoint_id=tp.id, language=enrolment.patient.language,
                    status="scheduled",
                )
                db.session.add(invitation)
            elif (invitation.due_at, invitation.opens_at, invitation.closes_at,
                  invitation.channel) == (due, opens, closes, tp.channel):
                continue
            invitation.due_at, invitation.opens_at, invitation.closes_at = due, opens, closes
            invitation.channel = tp.channel
            changed += 1
    for key, invitation in by_key.items():
        if key not in wanted and invitation.status in UNSENT:
            invitation.status = "cancelled"
            changed += 1
    db.session.flush()
    return changed


def withdraw(enrolment: Enrolment, reason: str = "", now: datetime | None = None) -> int:
    """Stop the enrolment: cancel every invitation not yet sent and every pending message.

    Sent invitations stay answerable (the patient may still reply) but get no reminders.
    Returns how many invitations were cancelled.
    """
    from engage.delivery.services import cancel_pending_messages

    now = now or utcnow()
    if enrolment.status != "active":
        return 0
    enrolment.status = "withdrawn"
    enrolment.withdrawn_at = now
    enrolment.withdrawal_reason = reason.strip() or None
    cancelled = db.session.execute(
        update(Invitation)
        .where(Invitation.enrolment_id == enrolment.id, Invitation.status.in_(UNSENT))
        .values(status="cancelled")
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    cancel_pending_messages(
        select(Invitation.id).where(Invitation.enrolment_id == enrolment.id), "withdrawn"
    )
    db.session.flush()
    record("withdraw", "enrolment", enrolment.id, patient_id=enrolment.patient_id,
           reason=reason)
    return int(cancelled or 0)


def find_protocol(slug: str) -> Protocol | None:
    return db.session.scalar(select(Protocol).where(Protocol.slug == slug))


def patient_enrolments(patient: Patient) -> list[Enrolment]:
    return list(db.session.scalars(
        select(Enrolment).where(Enrolment.patient_id == patient.id)
        .order_by(Enrolment.created_at.desc())
    ).all())
