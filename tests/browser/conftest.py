"""Fixtures for real-browser tests of the patient pages.

The app is served by a real HTTP server in a thread and driven by Debian's
chromium through Playwright's sync API. The server runs in another thread, so
these tests use ``committed_db`` (real commits) and never ``db``/``client`` or
the factory fixtures, whose rolled-back transaction the server cannot see.

Fixture names avoid ``browser``, ``context``, ``page`` and ``playwright``: the
pytest-playwright plugin, when installed, gives those names a meaning of its own.
"""

from __future__ import annotations

import itertools
import logging
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    ViewportSize,
    sync_playwright,
)
from werkzeug.serving import make_server

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
#: The patient pages are designed for phones first.
PHONE = {"width": 360, "height": 740}
#: axe-core rule tags checked on every page.
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]

_seq = itertools.count(1)


@pytest.fixture(scope="session")
def live_server(app: Flask) -> Iterator[str]:
    """The app on a real HTTP server; yields its base URL."""
    werkzeug_log = logging.getLogger("werkzeug")
    old_level = werkzeug_log.level
    werkzeug_log.setLevel(logging.WARNING)  # no line per request in failure output
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
        werkzeug_log.setLevel(old_level)


@pytest.fixture(autouse=True)
def three_questions_a_page(app: Flask) -> Iterator[None]:
    """The tests know which questions share a page (PHQ-9: 3 + 3 + 3 + 1)."""
    old = app.config["SURVEY_PAGE_SIZE"]
    app.config["SURVEY_PAGE_SIZE"] = 3
    yield
    app.config["SURVEY_PAGE_SIZE"] = old


@pytest.fixture(scope="session")
def chromium() -> Iterator[Browser]:
    """One headless chromium for the whole session."""
    executable = shutil.which(CHROMIUM)
    if executable is None:
        if os.environ.get("CI"):
            # CI installs chromium (.ci/run); a skip there would hide every browser test.
            pytest.fail(f"{CHROMIUM} is not installed")
        pytest.skip(f"{CHROMIUM} is not installed")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, headless=True,
                                     args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@dataclass(frozen=True)
class Link:
    """A patient's invitation link, as sent in their message."""

    url: str
    token: str
    invitation_id: int


@pytest.fixture
def make_link(committed_db: Any, live_server: str) -> Callable[..., Link]:
    """``make_link(instrument_id="phq-9", language="en") -> Link``, committed."""
    from engage.org.services import create_service
    from engage.patients.services import get_or_create_patient
    from engage.survey.services import create_invitation

    def make(instrument_id: str = "phq-9", language: str = "en") -> Link:
        n = next(_seq)
        service = create_service(f"browser-{n}", f"Riverside Clinic {n}")
        patient, _ = get_or_create_patient(service, f"BRW{n:06d}", language=language)
        invitation, token = create_invitation(patient, service, instrument_id,
                                              language=language)
        invitation_id = invitation.id
        committed_db.session.commit()
        # No transaction may stay open in this thread: on SQLite (WAL) a stale read
        # snapshot here makes the next write fail with "database is locked".
        committed_db.session.remove()
        return Link(f"{live_server}/s/{token}", token, invitation_id)

    return make


@pytest.fixture
def new_page(chromium: Browser, committed_db: Any) -> Iterator[Callable[..., Page]]:
    """``new_page(js=True, width=360, height=740) -> Page``, blank, in a new context.

    Each call is another device: a browser context sharing no cookies or history
    with the others. All are closed after the test, before ``committed_db``
    empties the tables.
    """
    contexts: list[BrowserContext] = []

    def make(*, js: bool = True, width: int = PHONE["width"],
             height: int = PHONE["height"]) -> Page:
        context = chromium.new_context(
            java_script_enabled=js, viewport={"width": width, "height": height},
            locale="en-GB",
            # The app's CSP forbids inline scripts, and axe-core is injected as one.
            bypass_csp=True,
        )
        context.set_default_timeout(5_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def read_response(committed_db: Any) -> Callable[[int], dict[str, Any]]:
    """``read_response(invitation_id)``: the invitation's response as the server left it."""
    from engage.survey.models import Invitation

    def read(invitation_id: int) -> dict[str, Any]:
        session = committed_db.session
        try:
            invitation = session.get(Invitation, invitation_id)
            assert invitation is not None
            response = invitation.response
            assert response is not None, "no response was started"
            return {
                "invitation_status": invitation.status,
                "language": invitation.language,
                "submitted": response.submitted_at is not None,
                "respondent": response.respondent,
                "total": response.total,
                "band": response.band,
                "complete": response.complete,
                "answers": response.answer_map(),
            }
        finally:
            session.remove()  # end the read transaction (see make_link)

    return read


@pytest.fixture(scope="session")
def axe_source() -> str:
    import axe_playwright_python

    return (Path(axe_playwright_python.__file__).parent / "axe.min.js").read_text("utf-8")


@pytest.fixture
def axe_violations(axe_source: str) -> Callable[[Page], str]:
    """``axe_violations(page)``: axe-core's violations on the page, one per line
    with the failing nodes' selectors; empty when there are none."""

    def run(page: Page) -> str:
        if not page.evaluate("typeof window.axe !== 'undefined'"):
            page.add_script_tag(content=axe_source)
        result = page.evaluate(
            "tags => axe.run(document, {runOnly: {type: 'tag', values: tags},"
            " resultTypes: ['violations']})",
            AXE_TAGS,
        )
        lines = []
        for v in result["violations"]:
            lines.append(f"- {v['id']} ({v['impact']}): {v['help']} <{v['helpUrl']}>")
            for node in v["nodes"]:
                summary = " ".join(node["failureSummary"].split())
                lines.append(f"    at {node['target']}: {summary}")
        return "\n".join(lines)

    return run


# --- staff pages under the app's real Content-Security-Policy ----------------------------

DESKTOP: ViewportSize = {"width": 1280, "height": 800}


@dataclass
class Watched:
    """A page under the app's real CSP, with what went wrong on it."""

    page: Page
    problems: list[str] = field(default_factory=list)

    def assert_clean(self) -> None:
        assert not self.problems, "errors in the browser:\n" + "\n".join(self.problems)


@pytest.fixture
def strict_page(chromium: Browser, committed_db: Any) -> Iterator[Callable[[], Watched]]:
    """``strict_page() -> Watched``: a desktop page that enforces the app's CSP and records
    script errors, console errors (a refused inline script or style is one) and failed
    requests."""
    contexts: list[BrowserContext] = []

    def make() -> Watched:
        context = chromium.new_context(viewport=DESKTOP, locale="en-GB")
        context.set_default_timeout(5_000)
        contexts.append(context)
        watched = Watched(context.new_page())

        def console(message: ConsoleMessage) -> None:
            url = message.location.get("url", "")
            if message.type == "error" and not url.endswith("/favicon.ico"):
                watched.problems.append(f"console: {message.text} ({url})")

        watched.page.on("pageerror", lambda error: watched.problems.append(f"script: {error}"))
        watched.page.on("console", console)
        return watched

    yield make
    for context in contexts:
        context.close()


def strict_axe(page: Page, axe_source: str) -> str:
    """axe-core's violations, as the conftest's ``axe_violations`` lists them.

    Evaluated through DevTools, which the page's CSP does not govern (a script tag,
    as ``axe_violations`` adds, would be refused)."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(axe_source)
    result = page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags},"
        " resultTypes: ['violations']})", AXE_TAGS)
    lines = []
    for v in result["violations"]:
        lines.append(f"- {v['id']} ({v['impact']}): {v['help']} <{v['helpUrl']}>")
        for node in v["nodes"]:
            lines.append(f"    at {node['target']}: {' '.join(node['failureSummary'].split())}")
    return "\n".join(lines)
