"""Locale choice, text direction, and compiling the message catalogues at start-up."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import Flask, current_app, g, has_request_context, request
from flask_babel import get_locale
from flask_login import current_user

from engage.extensions import babel

#: The name of each shipped language in that language, for the language picker.
LANGUAGE_NAMES = {"en": "English", "es": "Español", "ar": "العربية"}
RTL_LANGUAGES = {"ar", "he", "fa", "ur"}
SOURCE_DIR = Path(__file__).resolve().parents[2] / "translations"


def init_app(app: Flask) -> None:
    out_dir = Path(app.instance_path) / "translations"
    compile_catalogues(SOURCE_DIR, out_dir)
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(out_dir)
    babel.init_app(app, locale_selector=select_locale)
    app.jinja_env.add_extension("jinja2.ext.i18n")
    app.jinja_env.policies["ext.i18n.trimmed"] = True
    app.context_processor(
        lambda: {
            "text_direction": text_direction,
            "current_language": current_language,
            "LANGUAGE_NAMES": LANGUAGE_NAMES,
        }
    )


def compile_catalogues(source: Path, out_dir: Path) -> list[Path]:
    """Compile every ``.po`` under ``source`` whose ``.mo`` is missing or stale.

    Writes through a temporary file, so web workers starting together never
    read a half-written catalogue.
    """
    written = []
    for po_path in sorted(source.glob("*/LC_MESSAGES/*.po")):
        mo_path = out_dir / po_path.relative_to(source).with_suffix(".mo")
        if mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
            continue
        mo_path.parent.mkdir(parents=True, exist_ok=True)
        with po_path.open("rb") as fh:
            catalog = read_po(fh)
        fd, tmp = tempfile.mkstemp(dir=mo_path.parent, suffix=".mo.tmp")
        with os.fdopen(fd, "wb") as out:
            write_mo(out, catalog)
        os.replace(tmp, mo_path)
        written.append(mo_path)
    return written


def supported(code: str | None) -> str | None:
    """``code`` cut to a shipped language (``es-MX`` -> ``es``), or None."""
    if not code:
        return None
    code = code.replace("_", "-").split("-")[0].lower()
    return code if code in current_app.config["LANGUAGES"] else None


def select_locale() -> str:
    """A page's own choice (set on ``g.locale``), then the user's, then the browser's."""
    chosen = g.get("locale")
    if chosen:
        return str(chosen)
    if not has_request_context():  # the CLI or a job: messages such as a service's errors
        return str(current_app.config["BABEL_DEFAULT_LOCALE"])
    if current_user and current_user.is_authenticated and current_user.language:
        return str(current_user.language)
    best = request.accept_languages.best_match(current_app.config["LANGUAGES"])
    return best or current_app.config["BABEL_DEFAULT_LOCALE"]


def current_language() -> str:
    return str(get_locale() or "en")


def text_direction(language: str | None = None) -> str:
    return "rtl" if (language or current_language()) in RTL_LANGUAGES else "ltr"
