"""The daily email to each service's safeguarding leads: comments waiting for a safety review.

Sent by the ``safety.digest`` job from ``SAFETY_DIGEST_HOUR`` (UTC) each day, once per
service and day, when the service has any open comment at the ``review`` level. Like
an alert email it carries links and counts, never the words of a comment. Claimed by
inserting its :class:`SafetyDigest` row, so two scheduler processes send it once; a
failed send is tried again at the next run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from flask import current_app, render_template
from flask_babel import force_locale, ngettext
from sqlalchemy import select

from engage.accounts.models import User
from engage.core import mail
from engage.core.db import utcnow
from engage.extensions import db
from engage.feedback.digest import claim_digest, deliver
from engage.feedback.models import OPEN_STATUSES, FeedbackItem, SafetyDigest
from engage.feedback.text.safety import Level
from engage.org.models import Service, service_member


@dataclass
class SafetyDigestContent:
    service: Service
    day: date
    items: list[FeedbackItem] = field(default_factory=list)
    now: datetime = field(default_factory=utcnow)

    @property
    def overdue(self) -> int:
        return sum(1 for i in self.items if i.due_at < self.now)


def waiting(service_id: int) -> list[FeedbackItem]:
    """Open comments of the service at the ``review`` level, oldest target first."""
    return list(db.session.scalars(
        select(FeedbackItem).where(FeedbackItem.service_id == service_id,
                                   FeedbackItem.urgency == Level.REVIEW.value,
                                   FeedbackItem.status.in_(OPEN_STATUSES))
        .order_by(FeedbackItem.due_at, FeedbackItem.id)))


def leads(service_id: int) -> list[User]:
    """The service's active safeguarding leads; its clinicians when it has none; the
    admins when it has neither, so a concern always reaches a named person."""
    for roles in (("safeguarding",), ("clinician",)):
        people = db.session.scalars(
            select(User).join(service_member, service_member.c.user_id == User.id)
            .where(service_member.c.service_id == service_id, User.role.in_(roles),
                   User.active.is_(True)).order_by(User.id)).all()
        if people:
            return list(people)
    return list(db.session.scalars(
        select(User).where(User.role == "admin", User.active.is_(True)).order_by(User.id)))


def render(content: SafetyDigestContent, user: User) -> Any:
    base = current_app.config["BASE_URL"]
    language = user.language or current_app.config["BABEL_DEFAULT_LOCALE"]
    context = {"d": content, "base": base,
               "queue_url": f"{base}/feedback?safety=1&service={content.service.id}"}
    with force_locale(language):
        subject = ngettext(
            "Engage: %(num)s comment waiting for a safety review in %(service)s",
            "Engage: %(num)s comments waiting for a safety review in %(service)s",
            len(content.items), service=content.service.name)
        return mail.build_message(
            user.email, subject, render_template("feedback/safety_digest_email.txt", **context),
            headers={"Content-Language": language})


def _due_from(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC) + timedelta(
        hours=current_app.config["SAFETY_DIGEST_HOUR"])


def send_safety_digests(now: datetime | None = None) -> int:
    """The ``safety.digest`` job: each service with comments waiting for a safety review
    gets today's email, once. Returns the digests sent. Commits."""
    now = now or utcnow()
    day = now.astimezone(UTC).date()
    if now < _due_from(day):
        return 0
    sent = 0
    waiting_services = db.session.scalars(
        select(FeedbackItem.service_id).where(FeedbackItem.urgency == Level.REVIEW.value,
                                              FeedbackItem.status.in_(OPEN_STATUSES))
        .distinct()).all()
    for service_id in sorted(waiting_services):
        if not _claim(service_id, day, now):
            continue
        service = db.session.get(Service, service_id)
        assert service is not None
        content = SafetyDigestContent(service=service, day=day, items=waiting(service_id),
                                      now=now)
        messages = [render(content, user) for user in leads(service_id)]
        # Tried again at the next run when nobody is there: a concern must reach someone.
        sent += deliver(SafetyDigest, (service_id, day), messages, now=now,
                        what=f"safety digest for {service.slug}",
                        nobody=("failed", "nobody to send to: no lead, clinician or admin"),
                        items=len(content.items))
    return sent


def _claim(service_id: int, day: date, now: datetime) -> bool:
    """Take the service's digest for the day: a new row, or one whose last try failed."""
    return claim_digest(SafetyDigest, now, service_id=service_id, day=day)
