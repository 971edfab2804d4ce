"""Small helpers for reading pages in tests."""

from __future__ import annotations

import re
from typing import Any


def csrf_from(response: Any) -> str:
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', response.get_data(as_text=True))
    assert match, "no csrf_token in the page"
    return match.group(1)


def form_token_from(response: Any) -> str:
    match = re.search(r'name="form_token" value="([^"]+)"', response.get_data(as_text=True))
    assert match, "no form_token in the page"
    return match.group(1)


def text_of(response: Any) -> str:
    """The page's text with tags removed and white space folded."""
    html = response.get_data(as_text=True)
    html = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()
