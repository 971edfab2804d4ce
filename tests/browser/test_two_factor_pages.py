"""The second factor in a real browser under the app's CSP: set up from the account page by
scanning nothing (the key typed as text), the QR code shown as an image the CSP allows, the
recovery codes, then a login that asks for the code; every page passes axe-core, and the
set-up and code pages fit a 360 px phone."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pyotp
import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Watched, strict_axe

pytestmark = pytest.mark.browser

PASSWORD = "correct-horse-battery"


@pytest.fixture
def nurse(committed_db: Any, live_server: str) -> str:
    from engage.accounts.services import create_user

    create_user("nina@example.org", "staff", PASSWORD, name="Nina Nurse")
    committed_db.session.commit()
    committed_db.session.remove()
    return live_server


def log_in(page: Page, base: str) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("Email address").fill("nina@example.org")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


def fits(page: Page) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


def test_a_nurse_sets_up_a_second_factor_and_logs_in_with_it(
    nurse: str, strict_page: Callable[[], Watched], new_page: Callable[..., Page],
    axe_source: str, committed_db: Any,
) -> None:
    base = nurse
    watched = strict_page()
    page = watched.page
    log_in(page, base)
    page.goto(f"{base}/account/two-factor")
    assert not strict_axe(page, axe_source)
    page.get_by_role("link", name="Set up a second factor").click()
    qr = page.get_by_role("img", name="QR code to scan with your authenticator app")
    expect(qr).to_be_visible()
    assert page.evaluate("img => img.naturalWidth > 0", qr.element_handle())  # CSP let it in
    assert not strict_axe(page, axe_source)
    secret = page.locator("code.link").inner_text().replace(" ", "")
    totp = pyotp.TOTP(secret)
    page.get_by_label("Code from the app").fill(totp.now())
    page.get_by_role("button", name="Turn on the second factor").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your recovery codes")
    codes = page.locator(".recovery-codes code").all_inner_texts()
    assert len(codes) == 10 and all(re.fullmatch(r"[a-z2-9]{4}(-[a-z2-9]{4}){3}", c)
                                    for c in codes)
    assert not strict_axe(page, axe_source)
    watched.assert_clean()

    phone = new_page()  # another device: the password, then the code
    log_in(phone, base)
    expect(phone).to_have_url(f"{base}/login/two-factor")
    assert fits(phone)
    assert not strict_axe(phone, axe_source)
    phone.get_by_label("Code").fill(codes[0])
    phone.get_by_role("button", name="Log in").click()
    expect(phone.locator(".flash")).to_contain_text("You used a recovery code; 9 are left")
