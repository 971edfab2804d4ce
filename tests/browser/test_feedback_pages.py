"""The feedback pages in a real browser: the public "Tell us about your care" page
and the staff triage inbox.

The public page is checked like the survey pages (axe-core in English, Spanish and
Arabic, a 320 px screen, JavaScript off) with selectors that do not depend on the
page's language. The staff pages run under the app's real Content-Security-Policy
(no ``bypass_csp``): axe-core goes in through DevTools evaluation, which the policy
does not govern, so the same page also shows that nothing of the app's own is
refused by it.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import (
    Locator,
    Page,
    expect,
)

from tests.browser.conftest import Watched, strict_axe

pytestmark = pytest.mark.browser

PASSWORD = "correct-horse-battery"
URGENT_TEXT = "I want to end my life"
#: Comments the shipped theme model gives suggestions to (the fixture checks it).
THEMED = [
    "I waited four hours in the waiting room to be seen",
    "The nurses were kind and the ward was clean",
    "The doctor explained everything clearly and listened to me",
]

_seq = itertools.count(1)


@dataclass(frozen=True)
class Place:
    """A service's public feedback page."""

    service_id: int
    url: str


@pytest.fixture
def tell_us(committed_db: Any, live_server: str) -> Place:
    from engage.org.services import create_service

    n = next(_seq)
    service = create_service(f"tell-us-{n}", f"Riverside Orthopaedics {n}")
    place = Place(service.id, f"{live_server}/tell-us/{service.slug}")
    committed_db.session.commit()
    committed_db.session.remove()  # no read snapshot left open (see make_link)
    return place


def comments(db: Any, service_id: int) -> list[dict[str, Any]]:
    """The service's feedback items as the server left them, oldest first."""
    from sqlalchemy import select

    from engage.feedback.models import FeedbackItem

    try:
        return [
            {"id": i.id, "text": i.text, "source": i.source, "language": i.language,
             "respondent": i.respondent, "email": i.contact_email,
             "consent": i.contact_consent, "urgency": i.urgency,
             "themes_confirmed_at": i.themes_confirmed_at}
            for i in db.session.scalars(select(FeedbackItem).where(
                FeedbackItem.service_id == service_id).order_by(FeedbackItem.id))
        ]
    finally:
        db.session.remove()


def send(page: Page) -> None:
    page.locator("form button[type=submit]").click()


def expect_errors(page: Page, *fields: str) -> None:
    """The page came back with exactly these fields in the error summary."""
    summary = page.locator(".error-summary")
    expect(summary).to_be_visible()
    expect(summary.locator("a")).to_have_count(len(fields))
    for name in fields:
        expect(summary.locator(f'a[href="#{name}"]')).to_have_count(1)
        expect(page.locator(f"#{name}")).to_have_attribute("aria-invalid", "true")


def expect_thanks(page: Page, place: Place, language: str) -> None:
    expect(page).to_have_url(re.compile(rf"^{re.escape(place.url)}/thanks/[^?]+\?lang={language}$"))
    expect(page.locator("html")).to_have_attribute("lang", language)
    expect(page.locator(".panel h1")).to_be_visible()


# --- the public page -----------------------------------------------------------------------

@pytest.mark.parametrize(("language", "direction"), [("en", "ltr"), ("es", "ltr"), ("ar", "rtl")])
def test_public_pages_have_no_axe_violations(
    language: str, direction: str, tell_us: Place, new_page: Callable[..., Page],
    axe_violations: Callable[[Page], str], committed_db: Any,
) -> None:
    page = new_page()
    found: dict[str, str] = {}

    def check(what: str) -> None:
        page.wait_for_load_state()  # the new page's stylesheet too, for the contrast rules
        found[what] = axe_violations(page)

    response = page.goto(f"{tell_us.url}?lang={language}")
    assert response is not None and response.status == 200
    expect(page.locator("html")).to_have_attribute("lang", language)
    expect(page.locator("html")).to_have_attribute("dir", direction)
    check("form")

    send(page)  # nothing typed
    expect_errors(page, "text")
    check("form with the comment missing")

    page.locator("#text").fill("The physiotherapy helped a lot")
    page.locator("#email").fill("pat@example.org")
    send(page)  # contact details without the tick
    expect_errors(page, "consent")
    expect(page.locator("html")).to_have_attribute("lang", language)
    check("form with contact details but no consent")

    page.locator("#consent").check()
    send(page)
    expect_thanks(page, tell_us, language)
    expect(page.locator(".urgent")).to_have_count(0)
    check("thank-you page")

    page.goto(f"{tell_us.url}?lang={language}")
    page.locator("#text").fill(URGENT_TEXT)
    send(page)
    expect_thanks(page, tell_us, language)
    expect(page.get_by_role("alert")).to_be_visible()
    if language == "en":
        expect(page.get_by_role("alert")).to_contain_text("If you need help now")
    check("urgent thank-you page")

    assert [(c["language"], c["consent"], c["urgency"])
            for c in comments(committed_db, tell_us.service_id)] == [
        (language, True, "normal"), (language, False, "urgent")]
    problems = "\n".join(f"{what}:\n{v}" for what, v in found.items() if v)
    assert not problems, f"axe-core violations in {language!r}:\n{problems}"


def text_gaps(page: Page, selector: str) -> dict[str, float]:
    """How far the first line of an element's text is from its box's left and right."""
    return page.locator(selector).evaluate("""el => {
        const range = document.createRange();
        range.selectNodeContents(el);
        const line = range.getClientRects()[0], box = el.getBoundingClientRect();
        return {left: line.left - box.left, right: box.right - line.right};
    }""")


@pytest.mark.parametrize(("language", "start", "end"),
                         [("ar", "right", "left"), ("en", "left", "right")])
def test_fields_start_on_the_side_the_language_reads_from(
    language: str, start: str, end: str, tell_us: Place, new_page: Callable[..., Page],
) -> None:
    page = new_page()
    page.goto(f"{tell_us.url}?lang={language}")
    expect(page.locator("html")).to_have_attribute("dir", "rtl" if language == "ar" else "ltr")

    # The comment's label and box line up on the side where the language's lines start.
    label = text_gaps(page, "label[for=text]")
    assert label[start] < 1 and label[end] > 40, f"label text not at the {start}: {label}"
    textarea = page.locator("#text")
    want = "rtl" if language == "ar" else "ltr"
    assert textarea.evaluate("el => getComputedStyle(el).direction") == want, (
        "an empty comment box must start typing on the language's side")
    label_box, box = page.locator("label[for=text]").bounding_box(), textarea.bounding_box()
    assert label_box and box
    assert abs(label_box["x"] + (label_box["width"] if start == "right" else 0)
               - box["x"] - (box["width"] if start == "right" else 0)) < 1

    # Radio buttons and the consent box sit at the start of their label.
    for input_id in ("respondent-patient", "respondent-family", "consent"):
        control = page.locator(f"#{input_id}").bounding_box()
        text = text_gaps(page, f"label[for={input_id}]")
        label_box = page.locator(f"label[for={input_id}]").bounding_box()
        assert control and label_box
        if start == "right":
            assert control["x"] > label_box["x"] + label_box["width"] - text["right"], (
                f"#{input_id} is not right of its label's text")
        else:
            assert control["x"] + control["width"] < label_box["x"] + text["left"], (
                f"#{input_id} is not left of its label's text")

    # A field with an error is marked on its start side.
    send(page)
    expect_errors(page, "text")
    bar = page.locator(".field.has-error").first.evaluate(
        "el => [getComputedStyle(el).borderLeftWidth, getComputedStyle(el).borderRightWidth]")
    assert bar == (["0px", "5px"] if start == "right" else ["5px", "0px"])


@pytest.mark.parametrize("language", ["en", "es", "ar"])
def test_320px_screen_needs_no_sideways_scrolling_and_has_big_targets(
    language: str, tell_us: Place, new_page: Callable[..., Page],
) -> None:
    page = new_page(width=320, height=640)

    def fits(what: str) -> None:
        page.wait_for_load_state()
        width = page.evaluate("document.scrollingElement.scrollWidth")
        assert width <= 320, f"{what}: the page is {width}px wide on a 320px screen"

    def big_targets(what: str) -> None:
        page.wait_for_load_state()
        small = []
        button = page.locator("form button[type=submit]").bounding_box()
        assert button, f"{what}: no Send button"
        if button["width"] < 44 or button["height"] < 44:
            small.append(f"Send {button['width']:.0f}x{button['height']:.0f}")
        controls = page.locator("input[type=radio], input[type=checkbox]")
        assert controls.count() == 5, f"{what}: want 4 radio buttons and 1 checkbox"
        for control in controls.all():
            input_id = control.get_attribute("id")
            # The control or its label (a tap on it ticks the box) is the target.
            boxes = [control.bounding_box(),
                     page.locator(f"label[for={input_id}]").bounding_box()]
            if not any(b and b["width"] >= 44 and b["height"] >= 44 for b in boxes):
                small.append(f"#{input_id} {boxes}")
        for link in page.locator(".langs a").all():
            box = link.bounding_box()
            if not box or box["width"] < 44 or box["height"] < 44:
                small.append(f"language link {link.get_attribute('hreflang')} {box}")
        assert not small, f"{what}: targets smaller than 44x44 px: {small}"

    page.goto(f"{tell_us.url}?lang={language}")
    fits("form")
    big_targets("form")
    page.locator("#text").fill("Parking was impossible " * 30)
    page.locator("#email").fill("a.very.long.address.for.testing@example.org")
    send(page)
    expect_errors(page, "consent")
    fits("form with errors")
    big_targets("form with errors")
    page.locator("#text").fill(URGENT_TEXT)
    page.locator("label[for=consent]").click()  # tapping the label ticks the box
    expect(page.locator("#consent")).to_be_checked()
    send(page)
    expect_thanks(page, tell_us, language)
    expect(page.locator(".urgent")).to_be_visible()
    fits("urgent thank-you page")


def test_a_comment_sent_without_javascript_arrives(
    tell_us: Place, new_page: Callable[..., Page], committed_db: Any,
) -> None:
    page = new_page(js=False)
    page.goto(tell_us.url)
    expect(page.locator("html")).to_have_attribute("lang", "en")
    page.get_by_label("Your comments").fill("The physiotherapist was patient and kind.")
    page.get_by_text("I am a family member", exact=True).click()
    page.get_by_label("Email address").fill("pat@example.org")
    page.get_by_role("button", name="Send").click()

    # Contact details without the tick: refused, and everything typed is kept.
    expect_errors(page, "consent")
    expect(page.get_by_label("Your comments")).to_have_value(
        "The physiotherapist was patient and kind.")
    expect(page.get_by_role("radio", name="I am a family member")).to_be_checked()
    expect(page.get_by_label("Email address")).to_have_value("pat@example.org")
    assert comments(committed_db, tell_us.service_id) == []

    page.get_by_text(re.compile("^I agree that .* may contact me")).click()
    page.get_by_role("button", name="Send").click()
    expect_thanks(page, tell_us, "en")
    expect(page.get_by_text("We will reply using the details you gave us.")).to_be_visible()
    [item] = comments(committed_db, tell_us.service_id)
    assert {k: item[k] for k in ("text", "source", "language", "respondent", "email",
                                 "consent")} == {
        "text": "The physiotherapist was patient and kind.", "source": "web",
        "language": "en", "respondent": "family", "email": "pat@example.org",
        "consent": True}


@pytest.mark.parametrize("js", [False, True], ids=["no-js", "js"])
def test_error_summary_is_announced_and_its_links_move_focus_to_the_field(
    js: bool, tell_us: Place, new_page: Callable[..., Page],
) -> None:
    page = new_page(js=js)
    page.goto(tell_us.url)

    def follow_the_summary_to(field_id: str) -> None:
        expect_errors(page, field_id)  # the new page, not the one Send was pressed on
        page.wait_for_load_state()
        expect(page).to_have_title(re.compile(r"^Error: "))
        summary = page.locator(".error-summary")
        # It takes focus as the page loads (autofocus: no script needed), so a screen
        # reader reads it first.
        expect(summary).to_be_focused()
        assert summary.get_attribute("role") == "alert"
        summary.locator(f'a[href="#{field_id}"]').click()
        expect(page.locator(f"#{field_id}")).to_be_focused()

    send(page)
    follow_the_summary_to("text")
    page.keyboard.type("The ward was noisy at night.")
    page.locator("#email").fill("pat@example.org")
    send(page)
    follow_the_summary_to("consent")
    page.keyboard.press("Space")  # the field the link went to takes the keyboard
    expect(page.locator("#consent")).to_be_checked()


def test_a_second_press_of_send_keeps_one_comment(
    tell_us: Place, new_page: Callable[..., Page], committed_db: Any,
) -> None:
    """The second press arrives after the first was taken in (a double tap on a slow
    line): the same form again finds the comment and shows the same thank-you page."""
    page = new_page()
    page.goto(tell_us.url)
    page.locator("#text").fill("The physiotherapy helped a lot")
    with page.expect_request(lambda r: r.method == "POST") as posted:
        send(page)
    expect_thanks(page, tell_us, "en")
    thanks = urlsplit(page.url)

    request = posted.value  # the same form, sent again
    again = page.request.post(request.url, data=request.post_data,
                              headers={"Content-Type": request.headers["content-type"]},
                              max_redirects=0)
    assert again.status == 303
    assert again.headers["location"] == f"{thanks.path}?{thanks.query}"
    assert [c["text"] for c in comments(committed_db, tell_us.service_id)] == [
        "The physiotherapy helped a lot"]


def test_send_back_and_send_again_keeps_one_comment(
    tell_us: Place, new_page: Callable[..., Page], committed_db: Any,
) -> None:
    page = new_page()
    page.goto(tell_us.url)
    page.locator("#text").fill("The physiotherapy helped a lot")
    send(page)
    expect_thanks(page, tell_us, "en")
    page.go_back()
    expect(page.locator("#text")).to_have_value("The physiotherapy helped a lot")
    send(page)
    expect_thanks(page, tell_us, "en")
    assert [c["text"] for c in comments(committed_db, tell_us.service_id)] == [
        "The physiotherapy helped a lot"]


def test_language_links_switch_the_form_its_errors_and_the_thank_you_page(
    tell_us: Place, new_page: Callable[..., Page], committed_db: Any,
) -> None:
    page = new_page()
    page.goto(tell_us.url)
    expect(page.locator("html")).to_have_attribute("lang", "en")

    page.locator(".langs a[hreflang=es]").click()
    expect(page).to_have_url(f"{tell_us.url}?lang=es")
    expect(page.locator("html")).to_have_attribute("lang", "es")
    expect(page.locator(".langs a[aria-current]")).to_have_attribute("hreflang", "es")

    send(page)  # the page with errors stays in Spanish and its links still work
    expect_errors(page, "text")
    expect(page.locator("html")).to_have_attribute("lang", "es")
    page.locator(".langs a[hreflang=ar]").click()
    expect(page).to_have_url(f"{tell_us.url}?lang=ar")
    expect(page.locator("html")).to_have_attribute("dir", "rtl")

    page.locator("#text").fill(URGENT_TEXT)
    send(page)
    expect_thanks(page, tell_us, "ar")
    page.locator(".langs a[hreflang=en]").click()
    expect_thanks(page, tell_us, "en")  # the same thank-you page, in English now
    expect(page.get_by_role("alert")).to_contain_text("If you need help now")
    assert [c["language"] for c in comments(committed_db, tell_us.service_id)] == ["ar"]


# --- the staff triage inbox ----------------------------------------------------------------

@dataclass(frozen=True)
class Inbox:
    base: str
    service_id: int
    ids: list[int]  #: the comments with suggested themes, oldest first
    urgent_id: int


@pytest.fixture
def inbox(committed_db: Any, live_server: str) -> Inbox:
    """A service with a member of staff and four comments: one urgent with contact details,
    three with suggested themes received a day apart (so the inbox lists them in order)."""
    from engage.accounts.services import create_user
    from engage.feedback.services import Contact, intake
    from engage.org.services import create_service

    service = create_service(f"triage-{next(_seq)}", "Riverside Orthopaedics")
    create_user("sam@example.org", "staff", PASSWORD, name="Sam Staff", services=[service])
    start = datetime.now(UTC) - timedelta(days=5)
    items = [intake(service=service, text=text, source="web", notify=False,
                    received_at=start + timedelta(days=n)) for n, text in enumerate(THEMED)]
    assert all(item.themes for item in items), "the theme model suggested nothing"
    urgent = intake(
        service=service, source="web", notify=False,
        text=f"{URGENT_TEXT}. John Smith, 07700 900123, john.smith@example.org",
        contact=Contact(name="John Smith", email="john.smith@example.org", consent=True))
    assert urgent.urgency == "urgent"
    made = Inbox(live_server, service.id, [item.id for item in items], urgent.id)
    committed_db.session.commit()
    committed_db.session.remove()
    return made


def log_in(page: Page, base: str) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("Email").fill("sam@example.org")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()


def rows(page: Page) -> Locator:
    return page.locator("table.inbox tr.row")


def arrive(page: Page, url: str | re.Pattern[str]) -> None:
    """Wait for the page a key led to, and for its script: a key pressed before
    triage.js runs would be lost."""
    expect(page).to_have_url(url)
    page.wait_for_load_state("domcontentloaded")  # deferred scripts have run by then


def test_the_csp_is_enforced_in_the_strict_page(
    inbox: Inbox, strict_page: Callable[[], Watched],
) -> None:
    """Without this, the staff tests below could pass with a policy that refuses nothing."""
    watched = strict_page()
    log_in(watched.page, inbox.base)
    page = watched.page
    page.goto(f"{inbox.base}/feedback")
    with (page.expect_console_message(lambda m: "Content Security Policy" in m.text),
          pytest.raises(PlaywrightError)):
        page.add_script_tag(content="window.inlineRan = true")
    assert page.evaluate("window.inlineRan === undefined")


def test_staff_feedback_pages_have_no_axe_violations(
    inbox: Inbox, strict_page: Callable[[], Watched], axe_source: str,
) -> None:
    watched = strict_page()
    page = watched.page
    found: dict[str, str] = {}
    log_in(page, inbox.base)

    page.goto(f"{inbox.base}/feedback")
    expect(rows(page)).to_have_count(4)
    page.keyboard.press("j")
    expect(rows(page).first).to_be_focused()
    page.keyboard.press("?")
    expect(page.locator("#keys dl")).to_be_visible()
    found["inbox, a row current, shortcuts shown"] = strict_axe(page, axe_source)

    page.goto(f"{inbox.base}/feedback/items/{inbox.urgent_id}")
    expect(page.locator("mark.danger-mark")).to_be_visible()
    expect(page.locator("#reply-body")).to_be_visible()
    found["an urgent comment with personal details and a reply form"] = strict_axe(
        page, axe_source)

    page.goto(f"{inbox.base}/feedback/items/{inbox.ids[1]}")
    expect(page.locator("[data-key=c]")).to_be_visible()
    found["a comment with suggested themes"] = strict_axe(page, axe_source)

    problems = "\n".join(f"{what}:\n{v}" for what, v in found.items() if v)
    assert not problems, "axe-core violations on the staff pages:\n" + problems
    watched.assert_clean()


def test_triage_inbox_keyboard_control(
    inbox: Inbox, strict_page: Callable[[], Watched], committed_db: Any,
) -> None:
    watched = strict_page()
    page = watched.page
    log_in(page, inbox.base)
    page.goto(f"{inbox.base}/feedback")
    order = [inbox.urgent_id, *inbox.ids]  # urgent first, then the longest waiting
    expect(rows(page)).to_have_count(4)
    assert [int(r.get_attribute("data-id") or 0) for r in rows(page).all()] == order
    current = re.compile(r"\bcurrent\b")

    def expect_current(index: int) -> None:
        expect(rows(page).nth(index)).to_have_class(current)
        expect(rows(page).nth(index)).to_be_focused()
        expect(page.locator("table.inbox tr.current")).to_have_count(1)

    # Keys typed in the search box are words, not shortcuts.
    search = page.locator("#f-q")
    search.click()
    page.keyboard.type("jjx?o")
    expect(search).to_have_value("jjx?o")
    expect(search).to_be_focused()
    expect(page.locator("table.inbox tr.current")).to_have_count(0)
    expect(page.locator("#keys")).not_to_have_attribute("open", "")
    search.fill("")
    page.locator("h1").click()  # out of the box again

    page.keyboard.press("j")
    expect_current(0)
    page.keyboard.press("j")
    page.keyboard.press("j")
    expect_current(2)
    page.keyboard.press("k")
    expect_current(1)

    box = rows(page).nth(1).locator("input[name=ids]")
    page.keyboard.press("x")
    expect(box).to_be_checked()
    expect(page.locator("input[name=ids]:checked")).to_have_count(1)
    page.keyboard.press("x")
    expect(box).not_to_be_checked()

    # Ticking a box with the mouse leaves focus on it; the shortcuts go on working.
    box.click()
    expect(box).to_be_checked()
    page.keyboard.press("j")
    expect_current(2)
    box.click()
    page.keyboard.press("k")
    expect_current(1)

    page.keyboard.press("?")
    expect(page.locator("#keys dl")).to_be_visible()
    page.keyboard.press("?")
    expect(page.locator("#keys dl")).to_be_hidden()

    # Enter opens the current comment only from its row: on another control it does
    # what that control does (here: show the shortcuts).
    page.locator("#keys summary").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#keys dl")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/feedback$"))
    page.keyboard.press("?")
    expect(page.locator("#keys dl")).to_be_hidden()
    rows(page).nth(1).focus()

    # c confirms the current row's suggested themes, and only that row's.
    assert not any(c["themes_confirmed_at"] for c in comments(committed_db, inbox.service_id))
    page.keyboard.press("c")
    expect(page.locator(".flash")).to_be_visible()
    page.wait_for_load_state("domcontentloaded")
    confirmed = {c["id"]: c["themes_confirmed_at"] is not None
                 for c in comments(committed_db, inbox.service_id)}
    assert confirmed == {i: i == order[1] for i in order}

    # o opens the current comment; there j is the next one and u the inbox.
    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("j")
    expect_current(2)
    page.keyboard.press("o")
    arrive(page, re.compile(rf"/feedback/items/{order[2]}(\?|$)"))
    page.keyboard.press("j")
    arrive(page, re.compile(rf"/feedback/items/{order[3]}(\?|$)"))
    page.keyboard.press("k")
    arrive(page, re.compile(rf"/feedback/items/{order[2]}(\?|$)"))
    page.keyboard.press("?")
    expect(page.locator("#keys dl")).to_be_visible()
    page.keyboard.press("u")
    arrive(page, re.compile(r"/feedback(\?.*)?$"))
    page.keyboard.press("j")
    expect_current(0)
    page.keyboard.press("Enter")  # as o
    arrive(page, re.compile(rf"/feedback/items/{order[0]}(\?|$)"))
    watched.assert_clean()

