"""Finding audit events: the viewer's filter, read from a query string, and its query."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from flask_babel import gettext as _
from flask_babel import to_utc
from sqlalchemy import Select, and_, func, or_, select

from engage.accounts.models import User
from engage.audit.models import AuditEvent
from engage.extensions import db
from engage.patients.models import Patient

#: The query-string names of the filter, in the order the form shows them.
FILTER_KEYS = ("patient", "patient_id", "who", "action", "object_type", "object_id", "from",
               "to", "ip")
#: Longest value kept from a filter field (the columns are at most 254 characters).
MAX_LENGTH = 254
#: Actions the code writes today, offered as suggestions (the field takes any word).
KNOWN_ACTIONS = ("view", "create", "update", "delete", "export", "erase", "retention",
                 "acknowledge", "reissue", "withdraw", "revoke", "login", "logout")


@dataclass
class AuditFilter:
    """What the viewer asked for. ``patient_ids`` / ``user_ids`` are the records the
    reference or email matched (None: not filtered by it; empty: matched nothing)."""

    patient_ids: list[int] | None = None
    user_ids: list[int] | None = None
    actor: str | None = None
    action: str | None = None
    object_type: str | None = None
    object_id: int | None = None
    at_from: datetime | None = None
    at_to: datetime | None = None
    ip: str | None = None
    #: The arguments that set it, as typed (to show them again and keep them in links).
    kept: dict[str, str] = field(default_factory=dict)
    #: Field name -> message, for values that could not be read.
    errors: dict[str, str] = field(default_factory=dict)

    def describe(self) -> dict[str, str]:
        """The filter as recorded in the audit row of a view or an export."""
        return dict(self.kept)


def is_id(raw: str) -> bool:
    """Whether ``raw`` is a row id (digits that fit the database's 32-bit integer)."""
    return raw.isascii() and raw.isdigit() and int(raw) < 2**31


def _local_day_start(day: date) -> datetime:
    """Midnight of ``day`` in the viewer's time zone, as an aware UTC instant."""
    return to_utc(datetime.combine(day, time(0))).replace(tzinfo=UTC)


def read_filter(args: Mapping[str, str]) -> AuditFilter:
    """The filter from a query string. Values that cannot be read become ``errors``;
    lookups (reference, email) happen here, so the query needs no joins."""
    kept = {k: v[:MAX_LENGTH] for k in FILTER_KEYS if (v := (args.get(k) or "").strip())}
    f = AuditFilter(kept=kept)
    if ref := kept.get("patient"):
        f.patient_ids = list(db.session.scalars(
            select(Patient.id).where(Patient.ref == ref).order_by(Patient.id)))
    if raw := kept.get("patient_id"):
        if not is_id(raw):
            f.errors["patient_id"] = _("A patient number is digits only, like 42.")
        else:
            wanted = [int(raw)]
            f.patient_ids = (wanted if f.patient_ids is None
                             else [p for p in f.patient_ids if p in wanted])
    if who := kept.get("who"):
        if "@" in who:
            f.user_ids = list(db.session.scalars(
                select(User.id).where(func.lower(User.email) == who.lower())))
        else:
            f.actor = who
    f.action = kept.get("action")
    f.object_type = kept.get("object_type")
    if raw := kept.get("object_id"):
        if not is_id(raw):
            f.errors["object_id"] = _("An object number is digits only, like 42.")
        else:
            f.object_id = int(raw)
    for key in ("from", "to"):
        if raw := kept.get(key):
            try:
                day = date.fromisoformat(raw)
            except ValueError:
                day = None
            if day is None or not 1900 <= day.year <= 2999:
                f.errors[key] = _("Enter a date like 2027-03-01.")
                continue
            if key == "from":
                f.at_from = _local_day_start(day)
            else:
                f.at_to = _local_day_start(day + timedelta(days=1))
    if f.at_from and f.at_to and f.at_from >= f.at_to:
        f.errors["to"] = _("The end date is before the start date.")
    if raw := kept.get("ip"):
        try:
            f.ip = str(ipaddress.ip_address(raw))
        except ValueError:
            f.errors["ip"] = _("Enter an address like 192.0.2.10 or 2001:db8::1.")
    return f


def audit_query(f: AuditFilter) -> Select[AuditEvent]:
    """Events matching ``f``, newest first."""
    query = select(AuditEvent)
    if f.patient_ids is not None:
        query = query.where(AuditEvent.patient_id.in_(f.patient_ids))
    if f.user_ids is not None:
        query = query.where(AuditEvent.user_id.in_(f.user_ids))
    if f.actor is not None:
        query = query.where(AuditEvent.actor == f.actor)
    if f.action is not None:
        query = query.where(AuditEvent.action == f.action)
    if f.object_type is not None:
        query = query.where(AuditEvent.object_type == f.object_type)
    if f.object_id is not None:
        query = query.where(AuditEvent.object_id == f.object_id)
    if f.at_from is not None:
        query = query.where(AuditEvent.at >= f.at_from)
    if f.at_to is not None:
        query = query.where(AuditEvent.at < f.at_to)
    if f.ip is not None:
        query = query.where(AuditEvent.ip == f.ip)
    return query.order_by(AuditEvent.at.desc(), AuditEvent.id.desc())


def page(f: AuditFilter, before: int | None, size: int) -> tuple[list[AuditEvent], bool]:
    """One page of events older than event ``before`` (keyset: no count of a table that only
    grows), and whether there are more."""
    query = audit_query(f)
    if before is not None:
        cursor = db.session.get(AuditEvent, before)
        if cursor is None:  # gone with retention: ids still follow time closely enough
            query = query.where(AuditEvent.id < before)
        else:
            query = query.where(or_(
                AuditEvent.at < cursor.at,
                and_(AuditEvent.at == cursor.at, AuditEvent.id < cursor.id)))
    rows = list(db.session.scalars(query.limit(size + 1)))
    return rows[:size], len(rows) > size


def names_for(events: Sequence[AuditEvent]) -> tuple[dict[int, str], dict[int, str]]:
    """User emails and patient references of ``events``, by id (one query each)."""
    user_ids = {e.user_id for e in events if e.user_id is not None}
    patient_ids = {e.patient_id for e in events if e.patient_id is not None}
    emails: dict[int, str] = {}
    refs: dict[int, str] = {}
    if user_ids:
        emails = {uid: email for uid, email in db.session.execute(
            select(User.id, User.email).where(User.id.in_(user_ids)))}
    if patient_ids:
        refs = {pid: ref for pid, ref in db.session.execute(
            select(Patient.id, Patient.ref).where(Patient.id.in_(patient_ids)))}
    return emails, refs


def as_row(event: AuditEvent, emails: Mapping[int, str], refs: Mapping[int, str]
           ) -> dict[str, Any]:
    """One event as the export writes it."""
    return {
        "id": event.id, "at": event.at.isoformat(), "user_id": event.user_id,
        "user": emails.get(event.user_id, "") if event.user_id is not None else "",
        "actor": event.actor, "action": event.action, "object_type": event.object_type,
        "object_id": event.object_id, "patient_id": event.patient_id,
        "patient_ref": refs.get(event.patient_id, "") if event.patient_id is not None else "",
        "ip": event.ip or "", "detail": event.detail,
    }
