"""The safety pages in a real browser, under the app's real CSP: a comment's safety form,
and the clinical safety officer's misses page (axe-core, a phone-sized screen)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Watched, strict_axe

pytestmark = pytest.mark.browser

PASSWORD = "correct-horse-battery"


@dataclass(frozen=True)
class Safety:
    base: str
    review_id: int
    plain_id: int


@pytest.fixture
def safety(committed_db: Any, live_server: str) -> Safety:
    """A service with a safeguarding lead, a safety officer, a comment flagged for review,
    and an ordinary one that staff raised (a miss)."""
    from engage.accounts.services import create_user
    from engage.feedback.safeguarding import set_safety_level
    from engage.feedback.services import intake
    from engage.org.services import create_service

    service = create_service("safety-pages", "Riverside Ward")
    lead = create_user("lead@example.org", "safeguarding", PASSWORD, name="Lee Lead",
                       services=[service])
    create_user("cso@example.org", "safety_officer", PASSWORD, name="Cass Officer")
    review = intake(service=service, source="web", notify=False,
                    text="She was left soiled for hours on the ward")
    plain = intake(service=service, source="web", notify=False,
                   text="My dad has gone very quiet since the new carer started visiting")
    set_safety_level(plain, "review", lead, "Withdrawn since a new carer")
    made = Safety(live_server, review.id, plain.id)
    committed_db.session.commit()
    committed_db.session.remove()
    return made


def log_in(page: Page, base: str, email: str) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()


def test_a_lead_lowers_a_review_comment_with_a_reason_by_keyboard(
    safety: Safety, strict_page: Callable[[], Watched], axe_source: str,
) -> None:
    watched = strict_page()
    page = watched.page
    log_in(page, safety.base, "lead@example.org")
    expect(page).to_have_url(f"{safety.base}/feedback?safety=1")
    page.goto(f"{safety.base}/feedback/items/{safety.review_id}")
    expect(page.locator("mark.review-mark")).to_contain_text("soiled")
    assert not strict_axe(page, axe_source)

    # Without a reason: refused, the choice kept, the error announced beside the field.
    page.get_by_label("No safety concern").check()
    page.get_by_role("button", name="Change the safety level").click()
    expect(page.locator("#safety-reason-error")).to_contain_text("Say why")
    expect(page.get_by_label("No safety concern")).to_be_checked()
    assert not strict_axe(page, axe_source)
    # A page with a form error answers 400 (so its request rolls back): expected here.
    watched.problems = [p for p in watched.problems if "status of 400" not in p]

    # With a reason, typed after moving there by keyboard.
    page.locator("#safety-reason").focus()
    page.keyboard.type("Seen the ward sister: changed at once, not neglect")
    page.get_by_role("button", name="Change the safety level").click()
    expect(page.locator("#safety-h")).to_contain_text("No safety concern")
    expect(page.locator("#history")).to_be_visible()
    expect(page.get_by_text("Seen the ward sister: changed at once, not neglect")).to_be_visible()
    watched.assert_clean()


@pytest.mark.parametrize("width", [1280, 360])
def test_the_misses_page_is_accessible_and_fits_a_phone(
    width: int, safety: Safety, strict_page: Callable[[], Watched], axe_source: str,
) -> None:
    watched = strict_page()
    page = watched.page
    page.set_viewport_size({"width": width, "height": 800})
    log_in(page, safety.base, "cso@example.org")
    expect(page).to_have_url(f"{safety.base}/feedback/safety/misses")
    chart = page.get_by_role("img", name="Misses and false alarms per month, the last "
                                         "twelve months")
    expect(chart).to_be_visible()
    expect(page.locator("table tbody tr")).to_have_count(12)
    expect(page.get_by_text("Withdrawn since a new carer")).to_be_visible()
    violations = strict_axe(page, axe_source)
    assert not violations, violations
    wide = page.evaluate("document.scrollingElement.scrollWidth")
    assert wide <= width, f"the page is {wide}px wide on a {width}px screen"

    page.get_by_role("link", name="Try it in the rule editor").click()
    expect(page.locator("#try_text")).to_have_value(
        "My dad has gone very quiet since the new carer started visiting")
    expect(page.get_by_text("No safety concern: no rule fired.")).to_be_visible()
    watched.assert_clean()
