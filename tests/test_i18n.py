"""Translations: every catalogue complete and well-formed, compiled at start-up, used by pages."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from engage.core.i18n import compile_catalogues

ROOT = Path(__file__).resolve().parent.parent
PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def catalogue(lang: str):  # type: ignore[no-untyped-def]
    with open(ROOT / "translations" / lang / "LC_MESSAGES" / "messages.po", "rb") as fh:
        return read_po(fh, locale=lang)


def test_catalogues_follow_the_template():
    with open(ROOT / "translations" / "messages.pot", "rb") as fh:
        template = read_po(fh)
    wanted = {m.id if isinstance(m.id, str) else m.id[0] for m in template if m.id}
    for lang in ("en", "es", "ar"):
        have = {m.id if isinstance(m.id, str) else m.id[0] for m in catalogue(lang) if m.id}
        assert wanted <= have, f"{lang} lacks {sorted(wanted - have)[:5]}"


@pytest.mark.parametrize("lang", ["es", "ar"])
def test_every_message_is_translated_with_the_same_placeholders(lang):
    problems = []
    for message in catalogue(lang):
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        if message.fuzzy or not all(strings):
            problems.append(f"untranslated or fuzzy: {ids[0]!r}")
            continue
        wanted = set(PLACEHOLDER.findall(" ".join(ids)))
        for string in strings:
            # a plural form may leave out the count (Arabic's "one" and "two")
            got = set(PLACEHOLDER.findall(string))
            if not got <= wanted or (len(ids) == 1 and got != wanted):
                problems.append(f"placeholders differ: {ids[0]!r} -> {string!r}")
    assert problems == []


def test_catalogues_are_compiled_at_start_up(app):
    out = Path(app.config["BABEL_TRANSLATION_DIRECTORIES"])
    for lang in ("es", "ar"):
        assert (out / lang / "LC_MESSAGES" / "messages.mo").exists()


def test_compiling_is_skipped_when_up_to_date_and_redone_when_stale(tmp_path):
    first = compile_catalogues(ROOT / "translations", tmp_path)
    assert len(first) == 3
    assert compile_catalogues(ROOT / "translations", tmp_path) == []


def test_staff_pages_follow_the_browser_language(client):
    spanish = client.get("/login", headers={"Accept-Language": "es-ES,es;q=0.9"})
    assert 'lang="es"' in spanish.get_data(as_text=True)
    assert "Iniciar sesión" in spanish.get_data(as_text=True) or "Entrar" in spanish.get_data(
        as_text=True)
    arabic = client.get("/login", headers={"Accept-Language": "ar"}).get_data(as_text=True)
    assert 'dir="rtl"' in arabic


def test_css_uses_logical_properties_so_rtl_mirrors():
    for name in ("patient.css", "staff.css"):
        css = (ROOT / "engage" / "static" / name).read_text()
        physical = re.findall(r"(?:margin|padding|border)-(?:left|right)\b|\b(?:left|right)\s*:|"
                              r"text-align\s*:\s*(?:left|right)", css)
        assert physical == [], f"{name} uses physical properties: {physical}"


def test_no_fstring_inside_gettext():
    offenders = []
    for path in (ROOT / "engage").rglob("*.py"):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"\b_l?\(\s*f[\"']", line):
                offenders.append(f"{path}:{number}")
    assert offenders == []


def test_the_template_has_every_message_the_code_uses(tmp_path):
    """A string added to the code or templates but never extracted would stay English
    in every language without any other test noticing."""
    from babel.messages.frontend import CommandLineInterface

    out = tmp_path / "fresh.pot"
    CommandLineInterface().run([
        "pybabel", "-q", "extract", "-F", str(ROOT / "pyproject.toml"), "-k", "_l",
        "-k", "lazy_gettext", "-o", str(out), str(ROOT)])
    with out.open("rb") as fh:
        fresh = {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(fh) if m.id}
    with open(ROOT / "translations" / "messages.pot", "rb") as fh:
        kept = {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(fh) if m.id}
    assert fresh <= kept, f"run the extraction in docs/i18n.md: {sorted(fresh - kept)[:5]}"
