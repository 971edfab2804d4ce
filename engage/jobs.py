"""Every periodic job, declared once with a stable id. Run only by ``engage scheduler``.

Each job opens its own app context and commits itself, and is safe to run in
two scheduler processes at once: the rows it works on are claimed in the database.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask


@dataclass(frozen=True)
class Job:
    id: str
    func: Callable[[], object]
    #: Seconds between runs.
    every: int
    description: str


def _renotify_alerts() -> object:
    from engage.alerts.services import renotify_unacknowledged

    return renotify_unacknowledged()


def _expire() -> object:
    from engage.core.db import utcnow
    from engage.delivery.services import expire_closed

    return expire_closed(utcnow())


def _plan() -> object:
    from engage.core.db import utcnow
    from engage.delivery.services import plan_messages

    return plan_messages(utcnow())


def _send() -> object:
    from engage.core.db import utcnow
    from engage.delivery.services import send_due

    return send_due(utcnow())


def _feedback_intake() -> object:
    from engage.feedback.services import intake_pending

    return intake_pending()


def _feedback_digest() -> object:
    from engage.feedback.digest import send_digests

    return send_digests()


def _safety_digest() -> object:
    from engage.feedback.safety_digest import send_safety_digests

    return send_safety_digests()


def _retention() -> object:
    from engage.retention.services import scheduled_run

    return scheduled_run()


def _themes_retrain() -> object:
    from engage.feedback.learning import retrain_if_due

    return retrain_if_due()


def _purge_login_throttle() -> object:
    from engage.accounts.sessions import purge_sessions
    from engage.accounts.throttle import purge
    from engage.extensions import db

    removed = purge() + purge_sessions()
    db.session.commit()
    return removed


JOBS: tuple[Job, ...] = (
    Job("invitations.expire", _expire, 300,
        "Mark invitations whose answer window closed unanswered as expired."),
    Job("messages.plan", _plan, 60,
        "Queue first messages and reminders that are due (one per patient)."),
    Job("messages.send", _send, 60,
        "Claim due messages and send them by email or SMS, retrying failures."),
    Job("alerts.renotify", _renotify_alerts, 300,
        "Email clinicians again about safety alerts nobody has acknowledged."),
    Job("feedback.intake", _feedback_intake, 300,
        "Take in free-text answers that a submit could not (themes, safety, PII)."),
    Job("feedback.digest", _feedback_digest, 3600,
        "Email each improvement team its weekly digest, once, after the week ends."),
    Job("safety.digest", _safety_digest, 900,
        "Email each service's safeguarding leads, once a day, the comments waiting for a "
        "safety review."),
    Job("themes.retrain", _themes_retrain, 60,
        "Train a candidate theme model when an admin asked or enough staff confirmations "
        "came in."),
    Job("retention.apply", _retention, 3600,
        "Once a day, remove what is past its retention period (ENGAGE_RETENTION_*_DAYS)."),
    Job("logins.purge", _purge_login_throttle, 3600,
        "Forget failed-login counts that can no longer lock anything (a day quiet), and "
        "staff sessions that started more than 90 days ago."),
)


def run_job(app: Flask, job: Job) -> object:
    with app.app_context():
        try:
            return job.func()
        except Exception:
            app.logger.exception("job %s failed", job.id)
            from engage.extensions import db

            db.session.rollback()
            raise
        finally:
            from engage.extensions import db

            db.session.remove()


def build_scheduler(app: Flask, *, background: bool = False):  # type: ignore[no-untyped-def]
    """An APScheduler scheduler with every job of :data:`JOBS` added."""
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.schedulers.blocking import BlockingScheduler

    cls = BackgroundScheduler if background else BlockingScheduler
    scheduler = cls(timezone="UTC", job_defaults={"coalesce": True, "max_instances": 1})
    for job in JOBS:
        scheduler.add_job(run_job, "interval", seconds=job.every, args=(app, job),
                          id=job.id, name=job.description, replace_existing=True)
    return scheduler
