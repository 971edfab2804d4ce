"""Who may do what: the role table and the single check every request passes.

Each view declares what it needs with :func:`require` (or :func:`public`);
:func:`enforce_permissions` runs before every request and refuses any endpoint
that declared nothing, so a forgotten declaration fails closed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import abort, current_app, redirect, request, url_for
from flask_login import current_user

F = TypeVar("F", bound=Callable[..., Any])

ROLES = ("admin", "staff", "clinician", "safeguarding", "safety_officer", "council")

#: Triage of feedback: staff and clinicians both read, theme, route and answer comments.
FEEDBACK = frozenset({"feedback.view", "feedback.triage", "feedback.create", "feedback.reply",
                      "feedback.export"})

#: What a clinician may do; a safeguarding lead does the same for the services they belong to.
CLINICAL = frozenset(
    {"responses.view", "patients.view", "alerts.view", "alerts.acknowledge",
     "invitations.create", "protocols.view", "enrolments.manage"}
) | FEEDBACK

#: What each role may do. Admins may do everything, including ``protocols.manage``,
#: ``themes.manage``, ``teams.manage``, ``models.manage``, ``safety.manage`` and
#: ``audit.view`` (the audit log, /audit).
ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "admin": frozenset({"*"}),
    "staff": frozenset(
        {"responses.view", "patients.view", "alerts.view", "invitations.create",
         "protocols.view", "enrolments.manage"}
    ) | FEEDBACK,
    "clinician": CLINICAL,
    # Reads the comments waiting for a safety review in their services (the daily digest
    # goes to them) and is alerted about urgent comments like the clinicians.
    "safeguarding": CLINICAL,
    # The clinical safety officer: edits the safety rules and the crisis contacts, reads
    # the misses and false alarms (redacted wording only). Sees no patient record.
    "safety_officer": frozenset({"safety.manage", "crisis.manage"}),
    "council": frozenset({"council.view"}),
    # Not staff roles: what an API key acts as (engage/api), by its scope; never a user's.
    "integrator-read": frozenset({"enrolments.view", "protocols.view"}),
    "integrator-write": frozenset(
        {"enrolments.create", "enrolments.view", "enrolments.withdraw", "protocols.view"}
    ),
}

_ATTR = "_engage_permission"
PUBLIC = "public"
LOGGED_IN = "logged-in"


def require(permission: str) -> Callable[[F], F]:
    """Declare the permission a view needs."""

    def decorate(view: F) -> F:
        setattr(view, _ATTR, permission)
        return view

    return decorate


def public(view: F) -> F:
    """Declare a view open to anyone (login page, patient links with their token)."""
    setattr(view, _ATTR, PUBLIC)
    return view


def has_permission(user: Any, permission: str) -> bool:
    if permission == PUBLIC:
        return True
    if not (user and user.is_authenticated and user.active):
        return False
    if permission == LOGGED_IN:
        return True
    granted = ROLE_PERMISSIONS.get(user.role, frozenset())
    return "*" in granted or permission in granted


def can_see_service(user: Any, service_id: int) -> bool:
    """Admins see every service; everyone else the services they belong to."""
    if user.role == "admin":
        return True
    return any(s.id == service_id for s in user.services)


def is_api_request() -> bool:
    """Whether this request is for the JSON API, which authenticates by key only."""
    return request.path.startswith("/api/")


def enforce_permissions() -> Any:
    if request.endpoint is None or request.endpoint == "static":
        return None
    view = current_app.view_functions[request.endpoint]
    permission = getattr(view, _ATTR, None)
    if permission is None:
        current_app.logger.error("endpoint %s declares no permission", request.endpoint)
        abort(403)
    if has_permission(current_user, permission):
        return None
    if not current_user.is_authenticated:
        if is_api_request():
            abort(401)  # an API client has no login page to go to
        return redirect(url_for("accounts.login", next=request.full_path))
    abort(403)
