"""The audit viewer in a real browser, under the app's real CSP: on a phone-sized screen,
filtered, with an error, and checked by axe-core."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PHONE, Watched, strict_axe
from tests.browser.test_safety_pages import log_in

pytestmark = pytest.mark.browser

PASSWORD = "correct-horse-battery"


@pytest.fixture
def audited(committed_db: Any, live_server: str) -> str:
    from engage.accounts.services import create_user
    from engage.audit.models import AuditEvent
    from engage.org.services import create_service
    from engage.patients.services import get_or_create_patient

    service = create_service("audit-pages", "Audit Ward")
    create_user("ig-admin@example.org", "admin", PASSWORD, name="Ida Governance")
    patient, _created = get_or_create_patient(service, "MRN-AUDIT-1")
    start = datetime(2027, 3, 1, 9, tzinfo=UTC)
    for n in range(60):
        committed_db.session.add(AuditEvent(
            actor="cli", action="view" if n % 2 else "update", object_type="patient",
            object_id=patient.id, patient_id=patient.id, ip="192.0.2.44",
            at=start + timedelta(minutes=n), detail={"fields": ["email", "phone"]}))
    committed_db.session.commit()
    committed_db.session.remove()
    return live_server


def test_an_admin_filters_the_audit_log_on_a_phone(
    audited: str, strict_page: Callable[[], Watched], axe_source: str,
) -> None:
    watched = strict_page()
    page = watched.page
    page.set_viewport_size({"width": PHONE["width"], "height": PHONE["height"]})
    log_in(page, audited, "ig-admin@example.org")
    page.get_by_role("link", name="Audit log").click()
    expect(page.get_by_role("heading", name="Audit log")).to_be_visible()

    page.get_by_label("Patient reference").fill("MRN-AUDIT-1")
    page.get_by_label("Action").fill("update")
    page.get_by_role("button", name="Show").click()
    rows = page.locator("table.audit tbody tr")
    expect(rows).to_have_count(30)
    expect(rows.first).to_contain_text("MRN-AUDIT-1")
    # The page never scrolls sideways, the admin's long menu included (it wraps); the
    # table scrolls inside its region.
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert page.evaluate("document.querySelector('.table-wrap').clientWidth") <= PHONE["width"]
    assert not strict_axe(page, axe_source)

    page.get_by_label("Client address").fill("not an address")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#ip-error")).to_contain_text("Enter an address like")
    expect(page.get_by_label("Client address")).to_have_value("not an address")
    assert not strict_axe(page, axe_source)
    watched.problems = [p for p in watched.problems if "status of 400" not in p]
    watched.assert_clean()
