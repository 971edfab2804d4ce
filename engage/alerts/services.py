"""Raising, emailing and acknowledging safety alerts; the crisis contacts patients are shown."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from flask import current_app, render_template
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import func, or_, select, update

from engage.accounts.models import User
from engage.alerts.crisis import CrisisContacts, CrisisLine, Source, built_in, digits
from engage.alerts.models import Alert, CrisisContact
from engage.audit.services import record
from engage.core import mail
from engage.core.db import after_commit, claim, utcnow
from engage.extensions import db
from engage.feedback.models import FeedbackItem
from engage.org.models import Service, service_member
from engage.survey.models import Response


def raise_alerts(
    response: Response, kinds: Iterable[str], *, notify: bool = True,
    now: datetime | None = None,
) -> list[Alert]:
    """One alert per rule that fired; clinicians are emailed once the transaction commits."""
    return _raise([
        Alert(response_id=response.id, patient_id=response.patient_id,
              service_id=response.service_id, kind=kind, created_at=now or utcnow())
        for kind in dict.fromkeys(kinds)
    ], notify)


def raise_feedback_alert(item: FeedbackItem, *, notify: bool = True,
                         now: datetime | None = None, kind: str | None = None) -> Alert:
    """An alert for a comment a safety rule flagged; clinicians are emailed after the commit.

    A comment given as a survey answer carries its response too, so the patient's
    thank-you page shows where to get help now.
    """
    return _raise([
        Alert(response_id=item.response_id, patient_id=item.patient_id,
              service_id=item.service_id, feedback_item_id=item.id,
              kind=kind or f"comment-{item.safety_category or 'danger'}",
              created_at=now or utcnow())
    ], notify)[0]


def _raise(alerts: list[Alert], notify: bool) -> list[Alert]:
    """Store the alerts with their audit events; email clinicians once the transaction commits."""
    if not alerts:
        return []
    db.session.add_all(alerts)
    db.session.flush()
    for alert in alerts:
        detail: dict[str, Any] = {"kind": alert.kind}
        if alert.feedback_item_id:
            detail["feedback_item"] = alert.feedback_item_id
        record("create", "alert", alert.id, patient_id=alert.patient_id, **detail)
    if notify:
        after_commit(notify_alerts, [a.id for a in alerts])
    return alerts


def recipients(service_id: int) -> list[User]:
    """The service's active clinicians and safeguarding leads; the admins when it has none,
    so no alert goes unseen."""
    clinicians = db.session.scalars(
        select(User).join(service_member, service_member.c.user_id == User.id)
        .where(service_member.c.service_id == service_id,
               User.role.in_(("clinician", "safeguarding")),
               User.active.is_(True))
        .order_by(User.id)
    ).all()
    if clinicians:
        return list(clinicians)
    return list(db.session.scalars(
        select(User).where(User.role == "admin", User.active.is_(True)).order_by(User.id)
    ).all())


def notify_alerts(alert_ids: list[int], now: datetime | None = None) -> int:
    """Email the clinicians about each alert; commits. Returns the emails sent.

    Only a link goes in the email: no name, score or answer. A failure is kept
    on the alert and retried by the ``alerts.renotify`` job.
    """
    now = now or utcnow()
    sent = 0
    for alert in db.session.scalars(select(Alert).where(Alert.id.in_(alert_ids))):
        if alert.acknowledged_at is not None:
            continue
        link = f"{current_app.config['BASE_URL']}/alerts/{alert.id}"
        errors = []
        people = recipients(alert.service_id)
        if not people:
            errors.append("nobody to notify: the service has no clinician and there is no admin")
        messages = []
        for user in people:
            with force_locale(user.language or current_app.config["BABEL_DEFAULT_LOCALE"]):
                messages.append(mail.build_message(
                    user.email,
                    _("Engage: a safety alert needs your review"),
                    render_template("alerts/email.txt", link=link),
                ))
        for user, error in zip(people, mail.send_many(messages), strict=True):
            if error is None:
                sent += 1
            else:
                errors.append(f"{user.email}: {error}")
        alert.notify_count += 1
        alert.notified_at = now
        alert.notify_error = "; ".join(errors) or None
        if errors:
            current_app.logger.error("alert %s not fully notified: %s", alert.id, errors)
    db.session.commit()
    return sent


def renotify_unacknowledged(now: datetime | None = None) -> int:
    """Email again about every alert still open ``ALERT_RENOTIFY_MINUTES`` after the last email.

    Each alert is claimed with a conditional UPDATE, so two scheduler processes
    running this together email about it once.
    """
    now = now or utcnow()
    cutoff = now - timedelta(minutes=current_app.config["ALERT_RENOTIFY_MINUTES"])
    due = db.session.scalars(
        select(Alert.id).where(
            Alert.acknowledged_at.is_(None),
            or_(Alert.notified_at.is_(None), Alert.notified_at <= cutoff),
        )
    ).all()
    claimed = []
    for alert_id in due:
        won = claim(
            update(Alert)
            .where(Alert.id == alert_id, Alert.acknowledged_at.is_(None),
                   or_(Alert.notified_at.is_(None), Alert.notified_at <= cutoff))
            .values(notified_at=now)
        )
        if won:
            claimed.append(alert_id)
    db.session.commit()
    return notify_alerts(claimed, now) if claimed else 0


def acknowledge(alert: Alert, user: User, note: str | None, now: datetime | None = None) -> bool:
    """Record who acknowledged the alert and when; False if someone already had."""
    won = claim(
        update(Alert)
        .where(Alert.id == alert.id, Alert.acknowledged_at.is_(None))
        .values(acknowledged_at=now or utcnow(), acknowledged_by_id=user.id,
                acknowledgement_note=(note or "").strip() or None)
    )
    db.session.refresh(alert)
    if not won:
        return False
    record("acknowledge", "alert", alert.id, patient_id=alert.patient_id)
    return True


def open_alerts_for(user: User) -> list[Alert]:
    query = select(Alert).where(Alert.acknowledged_at.is_(None)).order_by(Alert.created_at)
    if user.role != "admin":
        query = query.where(Alert.service_id.in_([s.id for s in user.services]))
    return list(db.session.scalars(query).all())


# --- crisis contacts ---------------------------------------------------------------------

#: A phone number as people write it: a leading +, then digits, spaces and - ( ) . only.
PHONE = re.compile(r"^\+?[\d\s().-]+$")


class CrisisContactError(ValueError):
    """Input that cannot be saved; ``errors`` maps a field to what is wrong with it."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors = dict(errors)
        super().__init__("; ".join(f"{k}: {v}" for k, v in self.errors.items()))


def crisis_contacts_for(service: Service | int | None, language: str) -> CrisisContacts:
    """What a patient of ``service`` reading in ``language`` is shown after a safety alert.

    The service's contacts in that language and those for every language; when the service
    has none of them, the organisation-wide ones chosen the same way; when nothing is
    configured, the built-in lines of ``CRISIS_REGION``. The region's emergency number
    comes first whatever is configured, so the page always has a number to call. Words
    of built-in lines are in ``language``.
    """
    region = current_app.config["CRISIS_REGION"]
    service_id = service.id if isinstance(service, Service) else service
    with force_locale(language):
        emergency, defaults = built_in(region)
    lists: list[tuple[int | None, Source]] = [(None, "organisation")]
    if service_id is not None:
        lists.insert(0, (service_id, "service"))
    for list_id, source in lists:
        rows = db.session.scalars(
            select(CrisisContact)
            .where(CrisisContact.service_id.is_(None) if list_id is None
                   else CrisisContact.service_id == list_id,
                   or_(CrisisContact.language == language, CrisisContact.language.is_(None)))
            .order_by(CrisisContact.position, CrisisContact.id)
        ).all()
        if rows:
            return CrisisContacts(emergency, tuple(_line(row) for row in rows), source, region)
    return CrisisContacts(emergency, defaults, "region", region)


def _line(contact: CrisisContact) -> CrisisLine:
    return CrisisLine(name=contact.name, phone=contact.phone, text=contact.text,
                      hours=contact.hours, note=contact.note, contact_id=contact.id)


def crisis_contact_lists(service_ids: Iterable[int]) -> dict[int | None, list[CrisisContact]]:
    """The organisation-wide list (key None) and each service's, in the order patients see."""
    ids = list(service_ids)
    lists: dict[int | None, list[CrisisContact]] = {None: [], **{i: [] for i in ids}}
    rows = db.session.scalars(
        select(CrisisContact)
        .where(or_(CrisisContact.service_id.is_(None), CrisisContact.service_id.in_(ids)))
        .order_by(CrisisContact.position, CrisisContact.id)
    )
    for row in rows:
        lists[row.service_id].append(row)
    return lists


def save_crisis_contact(
    contact: CrisisContact | None, *, service_id: int | None, language: str | None,
    name: str, phone: str | None, text: str | None, hours: str, note: str | None = None,
    position: int | str | None = None,
) -> CrisisContact:
    """Create (``contact`` None) or update a crisis contact; audited.

    Raises :class:`CrisisContactError` naming each field that is wrong. A blank
    ``position`` puts a new contact at the end of its list and leaves an old one where
    it is.
    """
    name, hours = (name or "").strip(), (hours or "").strip()
    phone, text = (phone or "").strip() or None, (text or "").strip() or None
    note, language = (note or "").strip() or None, (language or "").strip() or None
    errors: dict[str, str] = {}
    if service_id is not None and db.session.get(Service, service_id) is None:
        errors["service"] = _("Choose a service from the list.")
    if language is not None and language not in current_app.config["LANGUAGES"]:
        errors["language"] = _("Choose a language from the list.")
    if not name:
        errors["name"] = _("Enter the name patients will recognise, e.g. Samaritans.")
    elif len(name) > 120:
        errors["name"] = _("Keep the name to %(max)d characters or fewer.", max=120)
    if phone is not None:
        if not (PHONE.match(phone) and 3 <= len(digits(phone).lstrip("+")) <= 20):
            errors["phone"] = _("Enter a phone number as patients should dial it, e.g. "
                                "116 123 or +44 113 496 0000.")
        elif len(phone) > 40:
            errors["phone"] = _("Keep the phone number to %(max)d characters or fewer.",
                                max=40)
    if text is not None and len(text) > 120:
        errors["text"] = _("Keep the text line to %(max)d characters or fewer.", max=120)
    if phone is None and text is None:
        errors["phone"] = _("Enter a phone number or a text line (or both): patients need a "
                            "way to reach this line.")
    if not hours:
        errors["hours"] = _("Say when someone answers, e.g. 24 hours, every day.")
    elif len(hours) > 120:
        errors["hours"] = _("Keep the hours to %(max)d characters or fewer.", max=120)
    if note is not None and len(note) > 200:
        errors["note"] = _("Keep the note to %(max)d characters or fewer.", max=200)
    order: int | None = None
    if isinstance(position, int):
        order = position
    elif (position or "").strip():
        try:
            order = int(str(position).strip())
        except ValueError:
            errors["position"] = _("Enter a whole number, e.g. 1, 2 or 3.")
    if order is not None and not -10_000 <= order <= 10_000:
        errors["position"] = _("Enter a whole number between -10000 and 10000.")
    if errors:
        raise CrisisContactError(errors)
    created = contact is None
    if order is None and (contact is None or contact.service_id != service_id):
        order = next_crisis_position(service_id)
    if contact is None:
        contact = CrisisContact()
        db.session.add(contact)
    contact.service_id, contact.language, contact.name = service_id, language, name
    contact.phone, contact.text, contact.hours, contact.note = phone, text, hours, note
    if order is not None:
        contact.position = order
    db.session.flush()
    record("create" if created else "update", "crisis_contact", contact.id,
           service=service_id, language=language, name=name, phone=phone, text=text)
    return contact


def next_crisis_position(service_id: int | None) -> int:
    """One after the last contact of the service's list (or the organisation-wide list)."""
    last = db.session.scalar(
        select(func.max(CrisisContact.position)).where(
            CrisisContact.service_id.is_(None) if service_id is None
            else CrisisContact.service_id == service_id))
    return 1 if last is None else last + 1


def delete_crisis_contact(contact: CrisisContact) -> None:
    """Delete a crisis contact; audited with what it was, since the row is gone."""
    record("delete", "crisis_contact", contact.id, service=contact.service_id,
           language=contact.language, name=contact.name, phone=contact.phone,
           text=contact.text)
    db.session.delete(contact)
    db.session.flush()
