"""The thank-you page after a safety alert, in a real browser: where to get help now, with
numbers to tap, in English, Spanish and Arabic, on a 320 px screen, without JavaScript."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser

_seq = itertools.count(1)
#: PHQ-9 answered with question 9 above zero: a safety alert.
RISK = {f"phq9-{n}": "LA6569-3" for n in range(1, 10)} | {"phq9-10": "LA6572-7"}


@pytest.fixture
def risky_link(committed_db: Any, live_server: str) -> Callable[..., str]:
    """``risky_link(language, answered=True)``: the address of a PHQ-9 for a service with
    crisis contacts of its own, with answers (question 9 above zero) saved but not sent."""
    from engage.alerts.services import save_crisis_contact
    from engage.org.services import create_service
    from engage.patients.services import get_or_create_patient
    from engage.survey.services import create_invitation, save_answers, start_response

    def make(language: str = "en", answered: bool = True) -> str:
        n = next(_seq)
        service = create_service(f"crisis-{n}", f"Riverside Clinic {n}")
        save_crisis_contact(None, service_id=service.id, language=None,
                            name="Riverside crisis line", phone="0113 496 0000", text=None,
                            hours="24/7", note="Riverside")
        save_crisis_contact(None, service_id=service.id, language=None, name="Riverside text",
                            phone=None, text="RIVER 85258", hours="24/7")
        patient, _ = get_or_create_patient(service, f"CRS{n:06d}", language=language)
        invitation, token = create_invitation(patient, service, "phq-9", language=language)
        if answered:
            save_answers(start_response(invitation), RISK)
        committed_db.session.commit()
        committed_db.session.remove()  # no read transaction left open (see make_link)
        return f"{live_server}/s/{token}"

    return make


def send(page: Page, url: str) -> None:
    """Send the saved answers from the review page, as the patient would."""
    page.goto(f"{url}/review")
    page.locator("form button[type=submit]").first.click()
    expect(page).to_have_url(f"{url}/done")


def check_tap_targets(page: Page, what: str) -> None:
    calls = page.locator(".urgent a[href^='tel:'], .urgent a[href^='sms:']")
    boxes = [link.bounding_box() for link in calls.all()]
    assert len(boxes) == 3, f"{what}: want the emergency number, a phone and a text link"
    for box in boxes:
        assert box and box["height"] >= 44 and box["width"] >= 44, (
            f"{what}: a number to tap is {box}, want at least 44 x 44 px")


def test_without_javascript_an_item_9_answer_ends_on_numbers_to_call(
    risky_link: Callable[..., str], new_page: Callable[..., Page],
) -> None:
    url = risky_link("en", answered=False)
    page = new_page(js=False)
    page.goto(url)
    page.get_by_role("button", name="Start", exact=True).click()
    for number in range(1, 5):
        expect(page).to_have_url(f"{url}/q/{number}")
        for fieldset in page.locator("fieldset").all():
            # "Several days" for question 9, the first answer for the others
            risky = fieldset.locator("input[name='phq9-9']").count() > 0
            fieldset.locator("label").nth(1 if risky else 0).click()
        page.locator("button[value=next]").click()  # Next, or Check your answers
    expect(page).to_have_url(f"{url}/review")
    page.get_by_role("button", name="Send my answers", exact=True).click()
    expect(page).to_have_url(f"{url}/done")
    box = page.get_by_role("alert")
    expect(box).to_contain_text("If a life is in danger now, call 999")
    expect(box.get_by_role("link", name="999")).to_have_attribute("href", "tel:999")
    expect(box.get_by_role("link", name="Call 0113 496 0000")).to_have_attribute(
        "href", "tel:01134960000")
    expect(box.get_by_role("link", name="RIVER 85258")).to_have_attribute("href", "sms:85258")
    check_tap_targets(page, "without JavaScript")


@pytest.mark.parametrize("language", ["en", "es", "ar"])
def test_the_page_with_contacts_has_no_axe_violations_and_fits_320px(
    language: str, risky_link: Callable[..., str], new_page: Callable[..., Page],
    axe_violations: Callable[[Page], str],
) -> None:
    url = risky_link(language)
    page = new_page()
    send(page, url)
    expect(page.locator("html")).to_have_attribute("lang", language)
    expect(page.get_by_role("alert").locator("a[href='tel:999']")).to_be_visible()
    violations = axe_violations(page)
    assert not violations, f"axe-core violations in {language!r}:\n{violations}"

    page.set_viewport_size({"width": 320, "height": 640})
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 320, f"{language}: the page is {width}px wide on a 320px screen"
    check_tap_targets(page, language)


def test_numbers_read_left_to_right_in_arabic(
    risky_link: Callable[..., str], new_page: Callable[..., Page],
) -> None:
    url = risky_link("ar")
    page = new_page()
    send(page, url)
    expect(page.locator("html")).to_have_attribute("dir", "rtl")
    number = page.get_by_role("alert").get_by_text("0113 496 0000", exact=True)
    expect(number).to_be_visible()
    # Where "0113" and "0000" are drawn: in right-to-left text without dir="ltr" on the
    # number, the groups would be laid out right to left, "0000 496 0113".
    first, last = number.evaluate("""el => {
        const text = el.firstChild, box = (a, b) => {
            const r = document.createRange(); r.setStart(text, a); r.setEnd(text, b);
            return r.getBoundingClientRect().left; };
        return [box(0, 4), box(text.length - 4, text.length)]; }""")
    assert first < last, "the phone number's groups are in the wrong order in Arabic"
