"""Helpers every template can call: permissions, labels, versioned static URLs."""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path
from typing import Any

from flask import Flask, current_app, g, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user

import surveys
from engage.core.permissions import has_permission

#: i18n: names of safety alert rules, shown to clinicians
ALERT_LABELS = {
    "self-harm": _l("Possible risk of self-harm (PHQ-9 question 9)"),
    "comment-self-harm": _l("A comment suggests possible self-harm or suicide"),
    "comment-abuse": _l("A comment suggests possible abuse"),
    "comment-neglect": _l("A comment suggests possible neglect"),
    "comment-safeguarding": _l("A comment raises a safeguarding concern"),
    "comment-danger": _l("A comment suggests someone may be in immediate danger"),
    "comment-environment": _l("A comment describes an unsafe place"),
    "comment-impaired-staff": _l("A comment suggests a member of staff was impaired at work"),
    "comment-staff": _l("Staff marked a comment urgent"),
}
#: i18n: invitation statuses, shown to staff
STATUS_LABELS = {
    "scheduled": _l("Scheduled"), "sent": _l("Sent"), "reminded": _l("Reminded"),
    "completed": _l("Completed"), "expired": _l("Expired"), "cancelled": _l("Cancelled"),
    "failed": _l("Failed"),
}


def init_app(app: Flask) -> None:
    app.jinja_env.globals.update(
        has_permission=has_permission,
        static_url=static_url,
        instrument_by_id=surveys.get,
        alert_label=lambda kind: str(ALERT_LABELS.get(kind, kind)),
        status_label=lambda status: str(STATUS_LABELS.get(status, status)),
        relationship_label=relationship_label,
    )
    app.context_processor(_open_alert_count)


def relationship_label(value: str | None) -> str:
    from engage.survey.views import relationship_labels

    return relationship_labels().get(value or "", value or "")


@cache
def _file_hash(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]


def static_url(filename: str) -> str:
    """A URL that changes with the file's content, so it can be cached for a year."""
    path = Path(current_app.static_folder or "") / filename
    return url_for("static", filename=filename, v=_file_hash(str(path)))


def _open_alert_count() -> dict[str, Any]:
    if g.get("error_page"):
        return {}  # an error page must render even when the database cannot answer
    if not (current_user and current_user.is_authenticated
            and has_permission(current_user, "alerts.view")):
        return {}
    from sqlalchemy import func, select

    from engage.alerts.models import Alert
    from engage.extensions import db

    query = select(func.count()).select_from(Alert).where(Alert.acknowledged_at.is_(None))
    if current_user.role != "admin":
        query = query.where(Alert.service_id.in_([s.id for s in current_user.services]))
    return {"open_alert_count": db.session.scalar(query) or 0}
