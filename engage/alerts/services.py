"""Raising, emailing and acknowledging safety alerts."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from flask import current_app, render_template
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import or_, select, update

from engage.accounts.models import User
from engage.alerts.models import Alert
from engage.audit.services import record
from engage.core import mail
from engage.core.db import after_commit, claim, utcnow
from engage.extensions import db
from engage.feedback.models import FeedbackItem
from engage.org.models import service_member
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
                         now: datetime | None = None) -> Alert:
    """An alert for a comment a safety rule flagged; clinicians are emailed after the commit.

    A comment given as a survey answer carries its response too, so the patient's
    thank-you page shows where to get help now.
    """
    return _raise([
        Alert(response_id=item.response_id, patient_id=item.patient_id,
              service_id=item.service_id, feedback_item_id=item.id,
              kind=f"comment-{item.urgent_category or 'danger'}", created_at=now or utcnow())
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
    """The service's active clinicians; the admins when it has none, so no alert goes unseen."""
    clinicians = db.session.scalars(
        select(User).join(service_member, service_member.c.user_id == User.id)
        .where(service_member.c.service_id == service_id, User.role == "clinician",
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
