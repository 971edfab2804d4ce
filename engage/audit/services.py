"""Writing audit events. Call these in the same transaction as the view or change."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask import has_request_context, request
from flask_login import current_user

from engage.audit.models import AuditEvent
from engage.extensions import db


def _who(actor: str | None) -> tuple[int | None, str, str | None]:
    ip = request.remote_addr if has_request_context() else None
    if has_request_context() and current_user and current_user.is_authenticated:
        # An API key is not a user: it names itself (``api:<prefix>``).
        return current_user.id, actor or str(getattr(current_user, "audit_actor", "user")), ip
    return None, actor or ("web" if has_request_context() else "cli"), ip


def record(
    action: str,
    object_type: str,
    object_id: int | None = None,
    *,
    patient_id: int | None = None,
    actor: str | None = None,
    **detail: Any,
) -> AuditEvent:
    """Add one audit event to the current transaction and return it."""
    user_id, who, ip = _who(actor)
    event = AuditEvent(
        user_id=user_id, actor=who, action=action, object_type=object_type,
        object_id=object_id, patient_id=patient_id, ip=ip, detail=detail,
    )
    db.session.add(event)
    return event


def record_views(object_type: str, patient_ids: Iterable[int], **detail: Any) -> None:
    """One ``view`` event per patient shown on a list page, in a single insert."""
    user_id, who, ip = _who(None)
    rows = [
        {"user_id": user_id, "actor": who, "action": "view", "object_type": object_type,
         "object_id": None, "patient_id": pid, "ip": ip, "detail": detail}
        for pid in sorted(set(patient_ids))
    ]
    if rows:
        db.session.execute(db.insert(AuditEvent), rows)
