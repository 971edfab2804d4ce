"""Every route, every role: who may reach what, checked by real requests.

``ROUTES`` names the permission each endpoint must need; ``WHO`` says, independently of
``engage.core.permissions``, which roles hold each permission. The tests fail when

- an endpoint exists that ``ROUTES`` does not list (a new route without a rule), or the
  table lists one that no longer exists;
- an endpoint declares a permission other than the table's;
- a request by any role (or by nobody) is let through or refused against the table.

Adding a route: add its endpoint to ``ROUTES`` with the permission it needs; a new
permission also needs a line in ``WHO``. docs/security.md shows the same table to readers.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask

from engage.core.permissions import LOGGED_IN, PUBLIC

STAFF_ROLES = ("admin", "staff", "clinician", "safeguarding", "safety_officer", "council")
CARE = frozenset({"admin", "staff", "clinician", "safeguarding"})
EVERYONE = frozenset(STAFF_ROLES) | {"anonymous"}

#: Which roles hold each permission (admins hold every one). Written here, not imported,
#: so that a change to the role table in the code has to be made on purpose in both places.
WHO: dict[str, frozenset[str]] = {
    PUBLIC: EVERYONE,
    LOGGED_IN: frozenset(STAFF_ROLES),
    "responses.view": CARE,
    "patients.view": CARE,
    "alerts.view": CARE,
    "alerts.acknowledge": frozenset({"admin", "clinician", "safeguarding"}),
    "invitations.create": CARE,
    "protocols.view": CARE,
    "enrolments.manage": CARE,
    "feedback.view": CARE,
    "feedback.triage": CARE,
    "feedback.create": CARE,
    "feedback.reply": CARE,
    "feedback.export": CARE,
    "council.view": frozenset({"admin", "council"}),
    "crisis.manage": frozenset({"admin", "safety_officer"}),
    "safety.manage": frozenset({"admin", "safety_officer"}),
    "protocols.manage": frozenset({"admin"}),
    "themes.manage": frozenset({"admin"}),
    "routing.manage": frozenset({"admin"}),
    "models.manage": frozenset({"admin"}),
    "templates.manage": frozenset({"admin"}),
    "teams.manage": frozenset({"admin"}),
    "users.manage": frozenset({"admin"}),
    "audit.view": frozenset({"admin"}),
}

#: Endpoint -> the permission it needs. API endpoints (under /api/) are reached with a key
#: only: no staff session opens them, whatever the role (tests/test_api_keys.py checks the
#: keys' scopes).
ROUTES: dict[str, str] = {
    # accounts
    "accounts.home": PUBLIC,
    "accounts.login": PUBLIC,
    "accounts.logout": LOGGED_IN,
    # the second factor: at login (after the password), and on the own account
    "two_factor.verify": PUBLIC,
    "two_factor.enrol": PUBLIC,
    "two_factor.account": LOGGED_IN,
    "two_factor.setup": LOGGED_IN,
    "two_factor.disable": LOGGED_IN,
    "two_factor.recovery_codes": LOGGED_IN,
    # own account, password links, the admin's staff pages
    "account.index": LOGGED_IN,
    "account.change_password": LOGGED_IN,
    "account.change_language": LOGGED_IN,
    "account.end": LOGGED_IN,
    "account.forgot": PUBLIC,
    "account.set_password": PUBLIC,
    "staff.index": "users.manage",
    "staff.invite": "users.manage",
    "staff.edit": "users.manage",
    "staff.deactivate": "users.manage",
    "staff.reactivate": "users.manage",
    "staff.reset_password": "users.manage",
    "staff.resend_invitation": "users.manage",
    "staff.unlock": "users.manage",
    "staff.reset_second_factor": "users.manage",
    # alerts and crisis contacts
    "alerts.index": "alerts.view",
    "alerts.detail": "alerts.view",
    "alerts.acknowledge_alert": "alerts.acknowledge",
    "crisis.index": "crisis.manage",
    "crisis.new": "crisis.manage",
    "crisis.edit": "crisis.manage",
    "crisis.delete": "crisis.manage",
    "crisis.preview": "crisis.manage",
    # the audit log
    "audit.index": "audit.view",
    "audit.export": "audit.view",
    # API (keys only)
    "api.list_protocols": "protocols.view",
    "api.create_enrolment": "enrolments.create",
    "api.get_enrolment": "enrolments.view",
    "api.withdraw_enrolment": "enrolments.withdraw",
    # delivery
    "delivery.unsubscribe": PUBLIC,
    # feedback
    "feedback.inbox": "feedback.view",
    "feedback.item": "feedback.view",
    "feedback.new": "feedback.create",
    "feedback.export": "feedback.export",
    "feedback.assign": "feedback.triage",
    "feedback.bulk": "feedback.triage",
    "feedback.confirm_themes": "feedback.triage",
    "feedback.note": "feedback.triage",
    "feedback.route": "feedback.triage",
    "feedback.safety_level": "feedback.triage",
    "feedback.set_status": "feedback.triage",
    "feedback.urgency": "feedback.triage",
    "feedback.reply": "feedback.reply",
    "feedback.council": "council.view",
    "safety.misses": "safety.manage",
    "tell_us.form": PUBLIC,
    "tell_us.thanks": PUBLIC,
    # feedback settings
    "feedback_admin.index": "themes.manage",
    "feedback_admin.themes": "themes.manage",
    "feedback_admin.theme": "themes.manage",
    "feedback_admin.merge": "themes.manage",
    "feedback_admin.retire": "themes.manage",
    "feedback_admin.restore": "themes.manage",
    "feedback_admin.routing": "routing.manage",
    "feedback_admin.delete_routing_rule": "routing.manage",
    "feedback_admin.model": "models.manage",
    "feedback_admin.train_model": "models.manage",
    "feedback_admin.activate_model": "models.manage",
    "feedback_admin.reject_model": "models.manage",
    "feedback_admin.shipped_model": "models.manage",
    "feedback_admin.reply_templates": "templates.manage",
    "feedback_admin.new_reply_template": "templates.manage",
    "feedback_admin.edit_reply_template": "templates.manage",
    "feedback_admin.reply_template_active": "templates.manage",
    "feedback_admin.safety": "safety.manage",
    "feedback_admin.safety_version": "safety.manage",
    "feedback_admin.restore_safety_version": "safety.manage",
    # services, patients, responses
    "org.services": "responses.view",
    "org.invite": "invitations.create",
    "patients.patient": "patients.view",
    "patients.stop_messages": "enrolments.manage",
    "patients.resume_messages": "enrolments.manage",
    "responses.service_responses": "responses.view",
    "responses.response_detail": "responses.view",
    "responses.response_fhir": "responses.view",
    # protocols and enrolment
    "scheduling.protocols": "protocols.view",
    "scheduling.protocol": "protocols.view",
    "scheduling.new_protocol": "protocols.manage",
    "scheduling.edit_protocol": "protocols.manage",
    "scheduling.set_active": "protocols.manage",
    "scheduling.enrol_patient": "enrolments.manage",
    "scheduling.import_csv": "enrolments.manage",
    "scheduling.confirm_import": "enrolments.manage",
    "scheduling.withdraw_enrolment": "enrolments.manage",
    # the patient's survey pages (their link is their key)
    "survey.start": PUBLIC,
    "survey.page": PUBLIC,
    "survey.review": PUBLIC,
    "survey.done": PUBLIC,
    # improvement teams
    "teams.index": "feedback.view",
    "teams.team": "feedback.view",
    "teams.new": "teams.manage",
    "teams.edit": "teams.manage",
}


def _endpoints(app: Flask) -> set[str]:
    return {rule.endpoint for rule in app.url_map.iter_rules() if rule.endpoint != "static"}


def test_every_route_has_a_rule_in_the_table(app: Flask) -> None:
    endpoints = _endpoints(app)
    assert sorted(endpoints - ROUTES.keys()) == [], "add these endpoints to ROUTES"
    assert sorted(ROUTES.keys() - endpoints) == [], "these endpoints no longer exist"


def test_every_permission_in_the_table_says_who_holds_it() -> None:
    api = {p for e, p in ROUTES.items() if e.startswith("api.")}
    assert sorted(set(ROUTES.values()) - api - WHO.keys()) == []


def test_every_endpoint_declares_the_permission_of_the_table(app: Flask) -> None:
    wrong = {
        endpoint: getattr(app.view_functions[endpoint], "_engage_permission", None)
        for endpoint in _endpoints(app)
        if getattr(app.view_functions[endpoint], "_engage_permission", None)
        != ROUTES.get(endpoint)
    }
    assert wrong == {}


def _requests(app: Flask) -> list[tuple[str, str, str]]:
    """(endpoint, method, url) for every route, with placeholder values in the URL.

    The placeholders name nothing that exists: the permission check comes before the view,
    so a refused role is refused either way, and an allowed one gets the view's own answer
    (a page, a 404, a form error) but never the refusal.
    """
    out = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        url = re.sub(r"<int:[^>]+>", "999999", rule.rule)
        url = re.sub(r"<(?:string:|path:)?[^>]+>", "no-such-thing", url)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            out.append((rule.endpoint, method, url))
    return sorted(out)


#: Public pages that send a visitor who is not logged in to the login page by design.
#: (The second-factor steps of a login do so when no password was given first.)
SENDS_VISITORS_TO_LOG_IN = {"accounts.home", "two_factor.verify", "two_factor.enrol"}


def _refused(response: Any, role: str, api: bool, endpoint: str) -> bool:
    if role == "anonymous" and endpoint in SENDS_VISITORS_TO_LOG_IN:
        return False
    if api:
        return response.status_code == 401
    if role == "anonymous":
        return response.status_code == 302 and "/login" in response.headers["Location"]
    return response.status_code == 403


@pytest.mark.parametrize("role", (*STAFF_ROLES, "anonymous"))
def test_each_role_reaches_exactly_what_the_table_allows(
    role: str, app: Flask, client: Any, auth: Any, make_user: Any, make_service: Any
) -> None:
    if role != "anonymous":
        user = make_user(role, services=[make_service()])
        assert auth.login(user.email).status_code == 302
    wrong = []
    for endpoint, method, url in _requests(app):
        api = url.startswith("/api/")
        # Forms are posted without their CSRF token: an allowed role gets the CSRF error
        # (400) from a view it may reach, and nothing changes.
        response = client.open(url, method=method)
        allowed = not api and (role == "admin" or role in WHO[ROUTES[endpoint]])
        refused = _refused(response, role, api, endpoint)
        if response.status_code >= 500 or allowed == refused:
            wrong.append(f"{method} {url} ({endpoint}): {response.status_code}")
    assert wrong == []


def test_the_security_page_shows_the_same_table() -> None:
    """docs/security.md's permission table: the same endpoints, permissions and roles."""
    from pathlib import Path

    page = (Path(__file__).resolve().parent.parent / "docs" / "security.md").read_text()
    shown_routes: dict[str, str] = {}
    shown_roles: dict[str, set[str]] = {}
    for line in page.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].startswith("`"):
            continue
        first = cells[0].strip("`")
        if first.startswith("api."):  # | API endpoint | permission | scope |
            shown_routes[first] = cells[1].strip("`")
        elif first in WHO:  # | permission | roles | endpoints |
            roles = set(re.findall(r"`([a-z_]+)`", cells[1]))
            shown_roles[first] = set(EVERYONE) if "everyone" in cells[1] else roles
            for endpoint in re.findall(r"`([\w.]+)`", cells[2]):
                shown_routes[endpoint] = first
    assert shown_routes == ROUTES
    expected = {
        permission: set(STAFF_ROLES) | {"anonymous"} if permission == PUBLIC
        else {r for r in STAFF_ROLES if r == "admin" or r in WHO[permission]}
        for permission in shown_roles
    }
    assert shown_roles == expected
