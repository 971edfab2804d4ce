"""How the patient pages render: axe-core, narrow screens, right-to-left.

Selectors here do not depend on the page's language, so the same checks run
on the English, Spanish and Arabic pages.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import Page, expect

if TYPE_CHECKING:
    from tests.browser.conftest import Link

pytestmark = pytest.mark.browser


def submit(page: Page) -> None:
    """Press the form's main button (Start, Continue, Next, Send)."""
    page.locator("form button[type=submit]").first.click()


def answer_page(page: Page) -> None:
    """Choose the first answer of every question on the page, then Next."""
    for fieldset in page.locator("fieldset").all():
        fieldset.locator("label").first.click()
    submit(page)


def test_english_pages_have_no_axe_violations(
    make_link: Callable[..., Link], new_page: Callable[..., Page],
    axe_violations: Callable[[Page], str], live_server: str,
) -> None:
    link = make_link("phq-9", language="en")
    page = new_page()
    found: dict[str, str] = {}

    def check(what: str) -> None:
        found[f"{what} ({page.url})"] = axe_violations(page)

    def go(url: str) -> int:
        response = page.goto(url)
        assert response is not None
        return response.status

    assert go(link.url) == 200
    check("start page")
    submit(page)
    expect(page).to_have_url(f"{link.url}/q/1")
    check("question page")
    submit(page)  # nothing chosen
    expect(page.locator(".error-summary")).to_be_visible()
    check("question page with errors")
    assert go(f"{link.url}/review") == 200
    expect(page.locator(".error-summary")).to_be_visible()
    check("review page with questions unanswered")
    for number in range(1, 5):
        go(f"{link.url}/q/{number}")
        answer_page(page)
    expect(page).to_have_url(f"{link.url}/review")
    expect(page.locator(".error-summary")).to_have_count(0)
    check("review page")
    submit(page)
    expect(page).to_have_url(f"{link.url}/done")
    check("thank-you page")
    assert go(link.url) == 410
    check("completed link (410)")
    assert go(f"{live_server}/s/no-such-link") == 404
    check("unknown link (404)")

    problems = "\n".join(f"{what}:\n{v}" for what, v in found.items() if v)
    assert not problems, "axe-core violations (fix the templates or CSS):\n" + problems


@pytest.mark.parametrize("language", ["ar", "es"])
def test_translated_pages_have_no_axe_violations(
    language: str, make_link: Callable[..., Link], new_page: Callable[..., Page],
    axe_violations: Callable[[Page], str],
) -> None:
    link = make_link("phq-9", language=language)
    page = new_page()
    page.goto(link.url)
    expect(page.locator("html")).to_have_attribute("lang", language)
    start = axe_violations(page)
    submit(page)
    expect(page).to_have_url(f"{link.url}/q/1")
    question = axe_violations(page)
    assert not (start or question), (
        f"axe-core violations in {language!r}:\nstart page:\n{start}\nquestion page:\n{question}")


@pytest.mark.parametrize("language", ["en", "ar"])
def test_320px_screen_needs_no_sideways_scrolling_and_has_big_targets(
    language: str, make_link: Callable[..., Link], new_page: Callable[..., Page],
) -> None:
    link = make_link("phq-9", language=language)
    page = new_page(width=320, height=640)

    def check(what: str) -> None:
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 320, f"{what}: the page is {width}px wide on a 320px screen"
        options = page.locator(".opt label")
        heights = [box["height"] for box in
                   (label.bounding_box() for label in options.all()) if box]
        assert heights, f"{what}: no answer options found"
        assert len(heights) == options.count(), f"{what}: an answer option is not shown"
        assert min(heights) >= 44, f"{what}: answer options {heights}px tall, want >= 44"

    page.goto(link.url)
    check("start page")
    submit(page)
    expect(page).to_have_url(f"{link.url}/q/1")
    check("question page")
    submit(page)  # nothing chosen: the error summary and error styles widen nothing
    expect(page.locator(".error-summary")).to_be_visible()
    check("question page with errors")
    page.goto(f"{link.url}/review")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 320, f"review page: the page is {width}px wide on a 320px screen"


@pytest.mark.parametrize(("language", "direction"), [("ar", "rtl"), ("en", "ltr")])
def test_radio_buttons_sit_at_the_start_of_the_line(
    language: str, direction: str, make_link: Callable[..., Link],
    new_page: Callable[..., Page],
) -> None:
    link = make_link("phq-9", language=language)
    page = new_page()
    page.goto(link.url)
    expect(page.locator(f"html[dir={direction}][lang={language}]")).to_have_count(1)

    def check(what: str) -> None:
        for option in page.locator(".opt").all():
            radio = option.locator("input[type=radio]").bounding_box()
            label = option.locator("label").bounding_box()
            assert radio and label, f"{what}: an answer option is not shown"
            centre = label["x"] + label["width"] / 2
            # Inside the label's box, on the side where the language's lines start.
            assert label["x"] <= radio["x"] <= label["x"] + label["width"] - radio["width"]
            if direction == "rtl":
                assert radio["x"] > centre, f"{what}: radio not on the right in {language}"
            else:
                assert radio["x"] + radio["width"] < centre, (
                    f"{what}: radio not on the left in {language}")

    check("start page")
    submit(page)
    expect(page).to_have_url(f"{link.url}/q/1")
    check("question page")
