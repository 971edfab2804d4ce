"""What a flood of the public feedback page can store: each form once, one alert for the
same urgent text from the same place, and at most ``ENGAGE_PUBLIC_MAX_PER_HOUR`` comments
an hour for a service (the per-address rate limit in ``engage/core/limits.py`` comes first).

Patient safety first: a repeated urgent comment is still stored, screened and shown as
urgent in the inbox; it only joins the open alert of the first instead of emailing the
clinicians again. Only keyed hashes are kept (an address or a text cannot be read back or
guessed from them without the secret key).
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta

from flask import current_app, request
from sqlalchemy import delete, func, select

from engage.alerts.models import Alert
from engage.core.db import utcnow
from engage.extensions import db
from engage.feedback.models import FeedbackItem, PublicSubmission
from engage.org.models import Service

#: Rows are kept this long: beyond it their form has expired (a day) and their hour passed.
KEEP = timedelta(hours=25)


def _keyed(kind: str, value: str) -> str:
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()


def token_hash(form_token: str) -> str:
    """What identifies one served form (its signed one-time value)."""
    return _keyed("public-form", form_token)


def source_hash(service: Service) -> str:
    """The client's address with the service: the same place, not a person."""
    return _keyed("public-source", f"{service.id}:{request.remote_addr or ''}")


def text_hash(text: str) -> str:
    """The comment folded (case and spacing), so a repeat with another capital still matches."""
    return _keyed("public-text", " ".join(text.casefold().split()))


def sent_before(form_hash: str) -> PublicSubmission | None:
    """The earlier sending of this very form, if there was one."""
    return db.session.scalar(select(PublicSubmission)
                             .where(PublicSubmission.token_hash == form_hash))


def over_ceiling(service: Service, now: datetime | None = None) -> bool:
    """True when the service has taken ``PUBLIC_MAX_PER_HOUR`` comments in the last hour."""
    now = now or utcnow()
    taken = db.session.scalar(
        select(func.count()).select_from(PublicSubmission)
        .where(PublicSubmission.service_id == service.id,
               PublicSubmission.created_at > now - timedelta(hours=1))) or 0
    return taken >= int(current_app.config["PUBLIC_MAX_PER_HOUR"])


def open_repeat_alert(source: str, text: str, now: datetime | None = None) -> Alert | None:
    """The open alert raised (or joined) by the same text from the same place within
    ``PUBLIC_REPEAT_MINUTES``; None when there is none (a new alert is then raised)."""
    now = now or utcnow()
    since = now - timedelta(minutes=int(current_app.config["PUBLIC_REPEAT_MINUTES"]))
    return db.session.scalar(
        select(Alert)
        .join(PublicSubmission, PublicSubmission.alert_id == Alert.id)
        .where(PublicSubmission.source_hash == source,
               PublicSubmission.text_hash == text,
               PublicSubmission.created_at > since,
               Alert.acknowledged_at.is_(None))
        .order_by(PublicSubmission.created_at.desc()).limit(1))


def claim(service: Service, form_hash: str, source: str, text: str,
          now: datetime | None = None) -> PublicSubmission:
    """Record this sending before the comment is stored; flushed, so a second sending of
    the same form at the same moment fails on the unique ``token_hash``
    (``IntegrityError``). Rows past :data:`KEEP` are removed on the way."""
    now = now or utcnow()
    db.session.execute(delete(PublicSubmission).where(
        PublicSubmission.service_id == service.id,
        PublicSubmission.created_at < now - KEEP))
    row = PublicSubmission(service_id=service.id, token_hash=form_hash, source_hash=source,
                           text_hash=text, created_at=now)
    db.session.add(row)
    db.session.flush()
    return row


def settle(row: PublicSubmission, item: FeedbackItem, repeat_of: Alert | None) -> None:
    """Link the sending to its comment and to the alert it raised or joined."""
    row.feedback_item_id = item.id
    if item.urgency == "urgent":
        raised = db.session.scalar(select(Alert.id).where(Alert.feedback_item_id == item.id))
        row.alert_id = raised or (repeat_of.id if repeat_of is not None else None)
    db.session.flush()
