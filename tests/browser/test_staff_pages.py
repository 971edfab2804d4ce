"""From invitation to first login, in a real browser under the app's CSP: an admin invites
a clinician, the email's link sets a password (a common one refused), the clinician logs
in, sees their session on the account page and logs out; every page passes axe-core and the
link's page fits a 360 px phone."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Watched, strict_axe

pytestmark = pytest.mark.browser

PASSWORD = "correct-horse-battery"
NEW_PASSWORD = "lantern-otter-quarry-9"


@pytest.fixture
def admin(committed_db: Any, live_server: str) -> str:
    from engage.accounts.services import create_user
    from engage.org.services import create_service

    create_service("staff-pages", "Riverside Ward")
    create_user("boss@example.org", "admin", PASSWORD, name="Bea Boss")
    committed_db.session.commit()
    committed_db.session.remove()
    return live_server


def resend(committed_db: Any, email: str) -> None:
    from sqlalchemy import select

    from engage.accounts.lifecycle import resend_invitation
    from engage.accounts.models import User
    from engage.core.db import run_after_commit

    user = committed_db.session.scalar(select(User).where(User.email == email))
    resend_invitation(user)
    committed_db.session.commit()
    run_after_commit()
    committed_db.session.remove()


def open_link(committed_db: Any, messages: list[Any]) -> str:
    """The token of the one emailed link that still works (the first may arrive late)."""
    from engage.accounts.lifecycle import find_token

    tokens = [found.group(1) for m in messages
              if (found := re.search(r"http://\S+/password/(\S+)",
                                     m.get_body(("plain",)).get_content()))]
    working = [t for t in tokens if find_token(t) is not None]
    committed_db.session.remove()
    assert len(working) == 1, tokens
    return working[0]


def log_in(page: Page, base: str, email: str, password: str) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("button", name="Log out", exact=True)).to_be_visible()


def test_an_invited_clinician_sets_a_password_and_logs_in(
    admin: str, smtp: Any, strict_page: Callable[[], Watched],
    new_page: Callable[..., Page], axe_source: str, committed_db: Any,
) -> None:
    base = admin
    watched = strict_page()
    page = watched.page
    log_in(page, base, "boss@example.org", PASSWORD)
    page.get_by_role("link", name="Staff", exact=True).click()
    expect(page).to_have_url(f"{base}/staff")
    assert not strict_axe(page, axe_source)
    page.get_by_role("link", name="Invite someone").click()
    page.get_by_label("Email address").fill("cleo@example.org")
    page.get_by_label("Name").fill("Cleo Clinician")
    page.get_by_label("Role").select_option("clinician")
    page.get_by_label("Services").select_option(label="Riverside Ward")
    assert not strict_axe(page, axe_source)
    page.get_by_role("button", name="Send the invitation").click()
    expect(page.locator(".flash")).to_contain_text("Invitation sent to cleo@example.org")
    expect(page.locator("table")).to_contain_text("Invited")
    watched.assert_clean()
    page.context.close()

    # The invitation email leaves once the server has closed the response, which Werkzeug's
    # test server does only when the browser lets the connection go (tests/test_accounts.py
    # checks that email through the web). Here the admin's "send it again" is done directly,
    # so the link arrives now; the first link stops working.
    resend(committed_db, "cleo@example.org")
    path = open_link(committed_db, smtp.messages)

    phone = new_page(js=False)
    phone.goto(f"{base}/password/{path}")
    expect(phone.get_by_role("heading", level=1)).to_have_text("Set up your account")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 360
    phone.get_by_label("New password", exact=True).fill("password1234")
    phone.get_by_label("The new password again").fill("password1234")
    phone.get_by_role("button", name="Save the password").click()
    expect(phone.locator(".error-summary")).to_contain_text("too common")
    phone.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    phone.get_by_label("The new password again").fill(NEW_PASSWORD)
    phone.get_by_role("button", name="Save the password").click()
    expect(phone.locator(".flash")).to_contain_text("Your password is set")

    clinician = strict_page()
    log_in(clinician.page, base, "cleo@example.org", NEW_PASSWORD)
    clinician.page.get_by_role("link", name="cleo@example.org").click()
    expect(clinician.page).to_have_url(f"{base}/account")
    expect(clinician.page.locator("#sessions ~ div table")).to_contain_text("This session")
    assert not strict_axe(clinician.page, axe_source)
    clinician.page.get_by_role("button", name="Log out", exact=True).click()
    expect(clinician.page.get_by_role("heading", level=1)).to_have_text("Log in")
    clinician.assert_clean()

    # the admin's list now shows the clinician as active, with a last login
    watched = strict_page()
    page = watched.page
    log_in(page, base, "boss@example.org", PASSWORD)
    page.goto(f"{base}/staff?status=active")
    row = page.locator("tr", has_text="Cleo Clinician")
    expect(row).to_contain_text("Active")
    expect(row).not_to_contain_text("Never")
    watched.assert_clean()
