"""A patient answering through their link in a real browser: with JavaScript off,
with the keyboard only, switching language, and moving to another device."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest
from playwright.sync_api import Locator, Page, expect

if TYPE_CHECKING:
    from tests.browser.conftest import Link

pytestmark = pytest.mark.browser

FREQUENCY = ["Not at all", "Several days", "More than half the days", "Nearly every day"]
DIFFICULTY = ["Not difficult at all", "Somewhat difficult", "Very difficult",
              "Extremely difficult"]
#: PHQ-9 question number -> index of the option chosen (its score, for 1-9).
#: The total is 10 ("moderate"); question 9 stays at 0 so no safety alert is raised.
PHQ9 = {1: 1, 2: 2, 3: 3, 4: 0, 5: 1, 6: 2, 7: 1, 8: 0, 9: 0}
PHQ9_TITLE_ES = "Cuestionario sobre la salud del paciente-9 (PHQ-9)"
PHQ9_Q1_ES = "Poco interés o placer en hacer cosas"


def question(page: Page, n: int) -> Locator:
    """Question ``n``'s fieldset, found by its legend the way a screen reader names it."""
    return page.get_by_role("group", name=re.compile(rf"^Question {n} of \d+ "))


def options(n: int) -> list[str]:
    return DIFFICULTY if n == 10 else FREQUENCY


def choose(page: Page, n: int, index: int) -> None:
    """Tap the label of an answer, as a patient on a phone does."""
    question(page, n).get_by_text(options(n)[index], exact=True).click()


def expect_chosen(page: Page, n: int, index: int) -> None:
    radio = question(page, n).get_by_role("radio", name=options(n)[index], exact=True)
    expect(radio).to_be_checked()


def error_bar(fieldset: Locator) -> str:
    """The width of the red bar that marks a question with an error."""
    return str(fieldset.evaluate("el => getComputedStyle(el).borderInlineStartWidth"))


def press(page: Page, name: str) -> None:
    page.get_by_role("button", name=name, exact=True).click()


def test_phq9_without_javascript_on_a_phone(
    make_link: Callable[..., Link], new_page: Callable[..., Page],
    read_response: Callable[[int], dict[str, Any]],
) -> None:
    link = make_link("phq-9", language="en")
    page = new_page(js=False)
    assert page.goto(link.url).status == 200  # type: ignore[union-attr]
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Patient Health Questionnaire-9 (PHQ-9)")
    expect(page.get_by_role("radio", name="I am the patient")).to_be_checked()
    press(page, "Start")

    # Page 1: questions 1-3.
    expect(page).to_have_url(f"{link.url}/q/1")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Page 1 of 4")
    for n in (1, 2, 3):
        choose(page, n, PHQ9[n])
    press(page, "Next")

    # Page 2: question 6 left unanswered is refused, in place.
    expect(page).to_have_url(f"{link.url}/q/2")
    choose(page, 4, PHQ9[4])
    choose(page, 5, PHQ9[5])
    press(page, "Next")
    expect(page).to_have_url(f"{link.url}/q/2")
    expect(page).to_have_title(re.compile(r"^Error: Question 4 of 10"))
    summary = page.locator(".error-summary")
    expect(summary).to_have_attribute("role", "alert")
    expect(summary.get_by_role("heading")).to_have_text("There is a problem")
    problem = summary.get_by_role("link")
    expect(problem).to_have_count(1)
    expect(problem).to_have_text("Question 6: Please choose an answer.")
    expect(problem).to_have_attribute("href", "#phq9-6-0")
    # The link leads to question 6's first answer, which says what is wrong.
    q6 = question(page, 6)
    expect(q6.get_by_role("radio").first).to_have_id("phq9-6-0")
    expect(q6).to_have_accessible_description("Error: Please choose an answer.")
    expect(q6.locator(".error")).to_be_visible()
    assert error_bar(q6) == "5px"
    for n in (4, 5):
        expect(question(page, n)).not_to_have_accessible_description(re.compile("Error"))
        assert error_bar(question(page, n)) == "0px"
        expect_chosen(page, n, PHQ9[n])  # what was chosen is not lost
    page.evaluate("window.scrollTo(0, 0)")
    problem.click()
    expect(page).to_have_url(f"{link.url}/q/2#phq9-6-0")
    expect(page.locator("#phq9-6-0")).to_be_in_viewport()
    choose(page, 6, PHQ9[6])
    press(page, "Next")

    # Page 3: questions 7-9.
    expect(page).to_have_url(f"{link.url}/q/3")
    for n in (7, 8, 9):
        choose(page, n, PHQ9[n])
    press(page, "Next")

    # Page 4 (question 10, optional); Back once keeps page 3's answers.
    expect(page).to_have_url(f"{link.url}/q/4")
    press(page, "Back")
    expect(page).to_have_url(f"{link.url}/q/3")
    for n in (7, 8, 9):
        expect_chosen(page, n, PHQ9[n])
    press(page, "Next")
    expect(page).to_have_url(f"{link.url}/q/4")
    choose(page, 10, 1)
    press(page, "Check your answers")

    # Review: every answer listed, nothing missing.
    expect(page).to_have_url(f"{link.url}/review")
    expect(page.get_by_role("heading", level=1)).to_have_text("Check your answers")
    expect(page.locator(".error-summary")).to_have_count(0)
    rows = page.locator(".answers > div")
    expect(rows).to_have_count(11)  # who is answering, then the 10 questions
    expect(rows.nth(0).locator("dd")).to_contain_text("The patient")
    for n in range(1, 11):
        index = PHQ9.get(n, 1)
        expect(rows.nth(n).locator("dt")).to_contain_text(f"{n}. ")
        expect(rows.nth(n).locator("dd")).to_contain_text(options(n)[index])
    press(page, "Send my answers")

    expect(page).to_have_url(f"{link.url}/done")
    expect(page.get_by_role("heading", level=1)).to_have_text("Thank you")
    expect(page.get_by_role("alert")).to_have_count(0)  # no "if you need help now"

    saved = read_response(link.invitation_id)
    assert saved["submitted"] and saved["invitation_status"] == "completed"
    assert saved["respondent"] == "self"
    assert saved["total"] == 10
    assert saved["band"] == "moderate"
    assert saved["complete"] is True
    assert set(saved["answers"]) == {f"phq9-{n}" for n in range(1, 11)}

    # The link is spent: opening it again says so.
    assert page.goto(link.url).status == 410  # type: ignore[union-attr]


def test_gad2_with_the_keyboard_only(
    make_link: Callable[..., Link], new_page: Callable[..., Page],
    read_response: Callable[[int], dict[str, Any]],
) -> None:
    link = make_link("gad-2", language="en")
    page = new_page()
    page.goto(link.url)
    outlines: list[str] = []

    def tab_to(selector: str) -> None:
        """Press Tab until the focused element matches ``selector``."""
        for _ in range(30):
            page.keyboard.press("Tab")
            if page.evaluate("s => document.activeElement.matches(s)", selector):
                # A keyboard user must see where they are.
                outlines.append(page.evaluate(
                    "() => { const s = getComputedStyle(document.activeElement);"
                    " return `${s.outlineStyle} ${s.outlineWidth}`; }"))
                assert not outlines[-1].startswith("none"), (
                    f"no visible focus on {selector}: outline {outlines[-1]}")
                return
        raise AssertionError(f"Tab never reached {selector}")

    def checked(name: str) -> str | None:
        return page.evaluate(
            "n => document.querySelector(`input[name='${n}']:checked`)?.id ?? null", name)

    tab_to("input[name=respondent]")
    assert checked("respondent") == "respondent-self"
    tab_to("form button[type=submit]")
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{link.url}/q/1")

    tab_to("input[name='gad2-1']")  # the first answer: focused, not yet chosen
    assert checked("gad2-1") is None
    page.keyboard.press("Space")
    assert checked("gad2-1") == "gad2-1-0"
    page.keyboard.press("ArrowDown")
    assert checked("gad2-1") == "gad2-1-1"
    tab_to("input[name='gad2-2']")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    assert checked("gad2-2") == "gad2-2-2"
    tab_to("button[value=next]")
    page.keyboard.press("Enter")

    expect(page).to_have_url(f"{link.url}/review")
    tab_to("form button[type=submit]")
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{link.url}/done")
    expect(page.get_by_role("heading", level=1)).to_have_text("Thank you")

    assert outlines, "focus was never checked"
    saved = read_response(link.invitation_id)
    assert saved["submitted"]
    assert (saved["total"], saved["band"]) == (3, "positive")


def test_chosen_language_stays_with_the_link(
    make_link: Callable[..., Link], new_page: Callable[..., Page],
) -> None:
    link = make_link("phq-9", language="en")
    page = new_page()
    page.goto(link.url)
    expect(page.locator("html")).to_have_attribute("lang", "en")
    page.get_by_role("navigation", name="Language").get_by_role("link", name="Español").click()

    def expect_spanish(page: Page) -> None:
        expect(page.locator("html")).to_have_attribute("lang", "es")
        expect(page.locator("html")).to_have_attribute("dir", "ltr")
        expect(page.get_by_role("heading", level=1)).to_have_text(PHQ9_TITLE_ES)
        expect(page.locator(".langs a[hreflang=es]")).to_have_attribute("aria-current", "true")
        expect(page.locator(".langs a[hreflang=en]")).not_to_have_attribute(
            "aria-current", "true")

    expect_spanish(page)
    # Another device, opening the link as sent (no ?lang=): still Spanish.
    other = new_page()
    other.goto(link.url)
    expect_spanish(other)
    other.locator("form button[type=submit]").click()
    expect(other).to_have_url(f"{link.url}/q/1")
    expect(other.locator("html")).to_have_attribute("lang", "es")
    expect(other.locator("#phq9-1-0").locator("xpath=ancestor::fieldset")).to_contain_text(
        PHQ9_Q1_ES)


def test_answers_follow_the_link_to_another_device(
    make_link: Callable[..., Link], new_page: Callable[..., Page],
) -> None:
    link = make_link("phq-9", language="en")
    phone = new_page()
    phone.goto(link.url)
    phone.get_by_text("I am answering for someone else").click()
    phone.get_by_label("If you are answering for someone else").select_option("parent")
    press(phone, "Start")
    expect(phone).to_have_url(f"{link.url}/q/1")
    for n, index in ((1, 3), (2, 2), (3, 1)):
        choose(phone, n, index)
    press(phone, "Next")
    expect(phone).to_have_url(f"{link.url}/q/2")

    laptop = new_page(width=1280, height=800)
    laptop.goto(link.url)
    expect(laptop.get_by_role("radio", name="I am answering for someone else")).to_be_checked()
    expect(laptop.get_by_label("If you are answering for someone else")).to_have_value("parent")
    press(laptop, "Continue")
    expect(laptop).to_have_url(f"{link.url}/q/2")  # the first page still to answer
    press(laptop, "Back")
    expect(laptop).to_have_url(f"{link.url}/q/1")
    for n, index in ((1, 3), (2, 2), (3, 1)):
        expect_chosen(laptop, n, index)
