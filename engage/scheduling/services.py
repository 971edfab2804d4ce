"""Protocols, enrolment, withdrawal, and planning the invitations a protocol asks for.

Every way of enrolling (staff page, CSV upload, CLI, API) goes through
:func:`parse_enrolment` and :func:`enrol`, so they accept and refuse the same things.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import select, update

import surveys
from engage.audit.services import record
from engage.core.db import utcnow
from engage.extensions import db
from engage.org.models import Service
from engage.org.services import SLUG
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


def offset_error(text: str) -> str:
    """Why ``text`` is not an offset, in the user's language."""
    return _("'%(text)s' is not an offset: write a number with a unit, e.g. -7d, 0, +2w, "
             "+3m, +1y (h hours, d days, w weeks, m months, y years)", text=text)


def check_timepoint(spec: TimepointSpec) -> dict[str, str]:
    """What is wrong with one timepoint, by field name (empty when it is fine)."""
    errors: dict[str, str] = {}
    if not spec.label.strip():
        errors["label"] = _("a label is required, e.g. Baseline or 6 weeks")
    offsets: dict[str, Offset] = {}
    for name in ("offset", "window_opens", "window_closes"):
        try:
            offsets[name] = Offset.parse(getattr(spec, name))
        except OffsetError:
            errors[name] = offset_error(getattr(spec, name))
    if not spec.instruments:
        errors["instruments"] = _("choose at least one questionnaire")
    for instrument_id in spec.instruments:
        try:
            surveys.get(instrument_id)
        except surveys.UnknownInstrument:
            errors["instruments"] = _("unknown questionnaire '%(id)s'", id=instrument_id)
    if "window_opens" in offsets and "window_closes" in offsets and (
        offsets["window_closes"].approx_days() <= offsets["window_opens"].approx_days()
    ):
        errors["window_closes"] = _("the window must close after it opens")
    length = (offsets["window_closes"].approx_days() - offsets["window_opens"].approx_days()
              if "window_opens" in offsets and "window_closes" in offsets else None)
    for reminder in spec.reminders:
        try:
            days = Offset.parse(reminder).approx_days()
        except OffsetError:
            errors["reminders"] = offset_error(reminder)
            break
        if days <= 0 or (length is not None and days >= length):
            errors["reminders"] = _("reminder %(reminder)s must fall inside the window (after "
                                    "it opens, before it closes)", reminder=reminder)
            break
    if spec.channel not in CHANNELS:
        errors["channel"] = _("choose one of %(choices)s", choices=", ".join(CHANNELS))
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
    if not SLUG.match(slug or ""):
        errors["slug"] = _("use lower-case letters, digits and hyphens")
    elif db.session.scalar(select(Protocol.id).where(Protocol.slug == slug,
                                                     Protocol.id != (protocol.id if protocol
                                                                     else -1))):
        errors["slug"] = _("a protocol called %(slug)s already exists", slug=slug)
    if not name.strip():
        errors["name"] = _("a name is required")
    if not timepoints:
        errors["timepoints"] = _("add at least one timepoint")
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


def set_protocol_active(protocol: Protocol, active: bool) -> bool:
    """Open or close a protocol to new enrolments; recorded. False if it already was.

    Patients already enrolled carry on either way: withdraw them to stop their
    questionnaires.
    """
    if protocol.active == active:
        return False
    protocol.active = active
    db.session.flush()
    record("activate" if active else "deactivate", "protocol", protocol.id)
    return True


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
        errors["patient_ref"] = _("required")
    elif len(ref) > 64:
        errors["patient_ref"] = _("at most 64 characters")
    protocol = None
    if not text("protocol"):
        errors["protocol"] = _("required")
    else:
        protocol = db.session.scalar(select(Protocol).where(Protocol.slug == text("protocol")))
        if protocol is None or not protocol.active:
            errors["protocol"] = _("no active protocol '%(slug)s'", slug=text("protocol"))
    tz_name = text("tz") or "Europe/London"
    tz = None
    try:
        tz = zone(tz_name)
    except ValueError:
        errors["tz"] = _("'%(tz)s' is not a time zone; use an IANA name like Europe/London",
                         tz=tz_name)
    anchor = None
    if not text("anchor"):
        errors["anchor"] = _("required (e.g. 2026-12-01 or 2026-12-01T09:00)")
    else:
        try:
            anchor = datetime.fromisoformat(text("anchor"))
        except ValueError:
            errors["anchor"] = _("'%(anchor)s' is not a date like 2026-12-01T09:00",
                                 anchor=text("anchor"))
        if anchor is not None and tz is not None and anchor.tzinfo is None:
            if len(text("anchor")) == 10:  # a bare date: the start of the working day
                anchor = anchor.replace(hour=9)
            anchor = anchor.replace(tzinfo=tz)
    email = text("email") or None
    if email and ("@" not in email or " " in email or len(email) > 254):
        errors["email"] = _("'%(email)s' is not an email address", email=email)
    phone = text("phone").replace(" ", "") or None
    if phone and not (phone.startswith("+") and phone[1:].isdigit() and 8 <= len(phone) <= 16):
        errors["phone"] = _("'%(phone)s' is not an international number like +447700900123",
                            phone=phone)
    language = text("language") or None
    if language and language not in languages:
        errors["language"] = _("choose one of %(choices)s", choices=", ".join(languages))
    if errors:
        raise SchedulingError(errors)
    assert protocol is not None and anchor is not None
    return EnrolmentRequest(ref, protocol, anchor.astimezone(zone("UTC")), tz_name, email,
                            phone, language)


def enrol(request: EnrolmentRequest, *, source: str = "web",
          now: datetime | None = None) -> Enrolment:
    """Enrol the patient (created if new) and plan their invitations.

    The patient is the protocol's service's own record of the reference: enrolling never
    touches another service's record. A patient already active on the protocol gets the
    new anchor instead of a second enrolment (re-planning what has not been sent).
    """
    patient, _created = get_or_create_patient(
        request.protocol.service, request.patient_ref, language=request.language,
        email=request.email, phone=request.phone, timezone=request.timezone,
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


# --- enrolment files -------------------------------------------------------------------

CSV_COLUMNS = ("patient_ref", "protocol", "anchor", "tz", "email", "phone", "language")
#: The most rows one upload may enrol; a bigger file is refused whole, never cut short.
MAX_CSV_ROWS = 5000


def read_enrolment_csv(text: str) -> tuple[list[dict[str, str]], list[str]]:
    """The rows of an enrolment CSV as dicts, and problems with the file as a whole."""
    reader = csv.DictReader(text.splitlines())
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in ("patient_ref", "protocol", "anchor") if c not in header]
    problems = []
    if missing:
        problems.append(_("missing columns: %(missing)s (expected %(expected)s)",
                          missing=", ".join(missing), expected=",".join(CSV_COLUMNS)))
    unknown = [h for h in header if h not in CSV_COLUMNS]
    if unknown:
        problems.append(_("unknown columns: %(unknown)s", unknown=", ".join(unknown)))
    rows = [{(k or "").strip(): (v or "").strip() for k, v in row.items()} for row in reader]
    if not rows and not problems:
        problems.append(_("the file has no rows"))
    return rows, problems


def check_rows(
    rows: list[dict[str, str]], languages: Iterable[str] | None = None, *,
    protocol: Protocol | None = None,
) -> tuple[list[EnrolmentRequest], dict[int, dict[str, str]]]:
    """Parse every row; (requests, {line number: {field: error}}). Line 2 is the first row.

    With ``protocol`` (an upload on that protocol's page), a row naming another
    protocol is an error and a row naming none is for ``protocol``.
    """
    languages = tuple(languages or current_app.config["LANGUAGES"])
    requests: list[EnrolmentRequest] = []
    errors: dict[int, dict[str, str]] = {}
    seen: dict[tuple[str, str], int] = {}
    for number, row in enumerate(rows, start=2):
        row_errors: dict[str, str] = {}
        if protocol is not None:
            named = row.get("protocol") or ""
            if named and named != protocol.slug:
                row_errors["protocol"] = _(
                    "this row is for %(other)s, but this file is being imported into "
                    "%(slug)s", other=named, slug=protocol.slug)
            row = {**row, "protocol": protocol.slug}
        try:
            request = parse_enrolment(row, languages)
        except SchedulingError as exc:
            row_errors = {**exc.errors, **row_errors}
        if row_errors:
            errors[number] = row_errors
            continue
        key = (request.patient_ref, request.protocol.slug)
        if key in seen:
            errors[number] = {"patient_ref": _("same patient and protocol as line %(line)s",
                                               line=seen[key])}
            continue
        seen[key] = number
        requests.append(request)
    return requests, errors


@dataclass
class CsvCheck:
    """An enrolment file, checked: what it would enrol and everything that stops it."""

    rows: list[dict[str, str]] = field(default_factory=list)
    requests: list[EnrolmentRequest] = field(default_factory=list)
    #: Problems with the file as a whole: encoding, columns, size.
    problems: list[str] = field(default_factory=list)
    #: ``{line number: {column: message}}``; line 2 is the first row.
    errors: dict[int, dict[str, str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems and not self.errors and bool(self.requests)


def check_enrolment_csv(
    data: bytes | str, *, protocol: Protocol | None = None,
    languages: Iterable[str] | None = None, max_rows: int | None = MAX_CSV_ROWS,
) -> CsvCheck:
    """Check an enrolment CSV (UTF-8, with or without a byte-order mark) without enrolling.

    Every way of importing a file calls this on the content it is about to
    import, so a file is enrolled exactly as it was checked.
    """
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            return CsvCheck(problems=[_("the file is not UTF-8 text: save it from your "
                                        "spreadsheet as \"CSV UTF-8\" and try again")])
    text = data.removeprefix("\ufeff")
    if not text.strip():
        return CsvCheck(problems=[_("the file is empty")])
    rows, problems = read_enrolment_csv(text)
    if max_rows is not None and len(rows) > max_rows:
        problems.append(_("the file has %(rows)s rows; at most %(max)s can be imported at "
                          "once, so split it into smaller files", rows=len(rows),
                          max=max_rows))
    if protocol is not None and not protocol.active:
        problems.append(_("the protocol is not active, so nobody can be enrolled on it"))
    if problems:
        return CsvCheck(rows=rows, problems=problems)
    requests, errors = check_rows(rows, languages, protocol=protocol)
    return CsvCheck(rows=rows, requests=requests, errors=errors)


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
    by_key: dict[tuple[int | None, str], Invitation] = {
        (i.timepoint_id, i.instrument_id): i for i in existing}
    wanted: set[tuple[int | None, str]] = set()
    changed = 0
    for tp in protocol.timepoints:
        due = Offset.parse(tp.offset).apply(enrolment.anchor_at, tz)
        opens = Offset.parse(tp.window_opens).apply(due, tz)
        closes = Offset.parse(tp.window_closes).apply(due, tz)
        for instrument_id in tp.instruments:
            key: tuple[int | None, str] = (tp.id, instrument_id)
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


# --- response rates --------------------------------------------------------------------

#: Invitations that left the outbox: anything no longer ``scheduled`` or ``cancelled``.
REACHED = ("sent", "reminded", "completed", "expired", "failed")


@dataclass
class Rate:
    """Of the invitations sent for one group (a timepoint, language or channel)."""

    key: Any
    sent: int
    completed: int

    @property
    def fraction(self) -> float | None:
        return self.completed / self.sent if self.sent else None


def response_rates(protocol: Protocol) -> dict[str, list[Rate]]:
    """Invitations sent and completed on ``protocol``, by timepoint, language and channel.

    The channel is the one the first message went out on; an invitation with no
    message (its window closed first) counts under the channel it would have used.
    Each grouping is one GROUP BY over the protocol's sent invitations.
    """
    from sqlalchemy import case, func

    from engage.delivery.models import Message, message_invitation

    first_channel = (
        select(Message.channel)
        .join(message_invitation, message_invitation.c.message_id == Message.id)
        .where(message_invitation.c.invitation_id == Invitation.id,
               Message.kind == "invitation", Message.status != "cancelled")
        .order_by(Message.id).limit(1)
        .correlate(Invitation).scalar_subquery()
    )
    preferred = case((Invitation.channel == "patient", Patient.channel),
                     else_=Invitation.channel)
    reached = (
        select(Invitation.timepoint_id, Invitation.language, Invitation.status,
               func.coalesce(first_channel, preferred).label("channel"))
        .join(Enrolment, Enrolment.id == Invitation.enrolment_id)
        .join(Patient, Patient.id == Invitation.patient_id)
        .where(Enrolment.protocol_id == protocol.id, Invitation.status.in_(REACHED))
        .subquery()
    )
    completed = func.sum(case((reached.c.status == "completed", 1), else_=0))

    def grouped(column: Any) -> list[Rate]:
        rows = db.session.execute(
            select(column, func.count(), completed).group_by(column).order_by(column))
        return [Rate(key, int(sent), int(done or 0)) for key, sent, done in rows]

    positions = {tp.id: tp.position for tp in protocol.timepoints}
    by_timepoint = sorted(grouped(reached.c.timepoint_id),
                          key=lambda r: positions.get(r.key, len(positions)))
    return {"timepoint": by_timepoint, "language": grouped(reached.c.language),
            "channel": grouped(reached.c.channel)}
