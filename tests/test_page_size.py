"""Patient pages stay tiny: HTML + CSS at most 14 KB compressed; one cacheable CSS file."""

from __future__ import annotations

import gzip
import re

import pytest

from tests.helpers import form_token_from

BUDGET = 14 * 1024


def css_link(html: str) -> str:
    links = re.findall(r'<link rel="stylesheet" href="([^"]+)"', html)
    assert len(links) == 1, links
    return links[0]


def weight(client, html: str) -> int:
    with client.get(css_link(html)) as response:
        css = response.data
    return len(gzip.compress(html.encode(), 9)) + len(gzip.compress(css, 9))


@pytest.mark.parametrize("lang", ["en", "es", "ar"])
def test_every_patient_page_is_within_budget(client, make_invitation, lang):
    _, token = make_invitation("phq-9", language=lang)
    base = f"/s/{token}"
    pages = {}
    start = client.get(base)
    pages["start"] = start
    client.post(base, data={"respondent": "self", "form_token": form_token_from(start)})
    for n in range(1, 5):
        pages[f"q{n}"] = client.get(f"{base}/q/{n}")
    pages["error"] = client.post(f"{base}/q/1", data={"form_token": form_token_from(start),
                                                      "action": "next"})
    pages["review"] = client.get(f"{base}/review")
    pages["unknown"] = client.get("/s/unknown-token")
    for name, page in pages.items():
        html = page.get_data(as_text=True)
        size = weight(client, html)
        assert size <= BUDGET, f"{name} ({lang}) is {size} bytes"
        assert "<script" not in html, f"{name} needs no JavaScript"


def test_css_is_versioned_and_cached_for_a_long_time(client, make_invitation):
    _, token = make_invitation("phq-9")
    href = css_link(client.get(f"/s/{token}").get_data(as_text=True))
    assert "?v=" in href
    with client.get(href) as css:
        assert css.status_code == 200
        assert "max-age=31536000" in css.headers["Cache-Control"]
