"""Bad input, refused or cleaned in one place: control and bidi characters, invalid UTF-8,
and the base class of every form (which cleans each text field and caps its length).

Why here and not in each view: a NUL byte reaches PostgreSQL as an error (a 500), a 100 KB
string overflows a ``VARCHAR(n)`` (another 500), and an invisible right-to-left override
can make a comment read differently to the staff member than what was stored. Every way in
(WTForms forms, the patient survey pages, the public feedback page, the JSON API) goes
through the functions below.
"""

from __future__ import annotations

import re
from functools import cached_property
from typing import Any
from urllib.parse import unquote_to_bytes

from flask import Flask, Request, abort, request
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from markupsafe import Markup
from werkzeug.datastructures import MultiDict
from wtforms import Form, StringField, TextAreaField
from wtforms.fields.core import UnboundField
from wtforms.validators import Length

#: Formatting characters that reorder text on screen: the embeddings and overrides
#: (U+202A-U+202E) and the isolates (U+2066-U+2069). The plain marks U+200E, U+200F and
#: U+061C stay: they cannot reorder a run of text, and Arabic writers use them.
BIDI_CONTROLS = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
#: C0 and C1 control characters (NUL included), DEL, the bidi controls above, and the
#: non-characters U+FFFE/U+FFFF; tab, line feed and carriage return are added back for
#: multi-line text.
_LINE_BAD = re.compile("[\x00-\x1f\x7f-\x9f" + BIDI_CONTROLS + "\ufffe\uffff]")
_TEXT_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f" + BIDI_CONTROLS + "\ufffe\uffff]")
#: Lone surrogates cannot be encoded as UTF-8 (psycopg and SQLite's driver both refuse them).
_SURROGATES = re.compile("[\ud800-\udfff]")

#: Longest value a single-line field takes when its form declares no limit of its own.
LINE_MAX = 255
#: Longest value a multi-line field takes when its form declares no limit of its own.
TEXT_MAX = 10_000


def clean_line(value: str | None) -> str | None:
    """``value`` without control, bidi-override or unencodable characters (single line).

    Line breaks become spaces, so a pasted name or reference keeps its word boundaries.
    """
    if not value:
        return value
    value = value.replace("\r\n", " ").replace("\n", " ").replace("\r", " ").replace("\t", " ")
    return _SURROGATES.sub("", _LINE_BAD.sub("", value))


def clean_text(value: str | None) -> str | None:
    """``value`` without control (except tab and line breaks), bidi-override or unencodable
    characters (multi-line text: comments, notes, replies)."""
    if not value:
        return value
    return _SURROGATES.sub("", _TEXT_BAD.sub("", value))


def has_bad_characters(value: str, multiline: bool = True) -> bool:
    """True when :func:`clean_text` (or :func:`clean_line`) would change ``value``: the API
    refuses such a value rather than change what an integrating system sent."""
    pattern = _TEXT_BAD if multiline else _LINE_BAD
    return bool(pattern.search(value) or _SURROGATES.search(value))


def clean_json(value: Any) -> Any:
    """A copy of decoded JSON with every string cleaned as multi-line text."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, list):
        return [clean_json(v) for v in value]
    if isinstance(value, dict):
        return {clean_line(str(k)): clean_json(v) for k, v in value.items()}
    return value


# --- forms -----------------------------------------------------------------------------

def _length_message(maximum: int) -> Any:
    return _l("Use %(max)d characters or fewer.", max=maximum)


def max_length(maximum: int) -> Length:
    """A length limit with Engage's message; ``maximum`` is what the field's column holds.
    Rendered fields also get ``maxlength``, so a browser stops at it."""
    return Length(max=maximum, message=_length_message(maximum))


def _bind_field(form: Any, unbound_field: Any, options: dict[str, Any]) -> Any:
    """Add the cleaning filter and, when the field declares none, a length limit."""
    field_class = unbound_field.field_class
    if not issubclass(field_class, StringField):
        return unbound_field.bind(form=form, **options)
    multiline = issubclass(field_class, TextAreaField)
    args = list(unbound_field.args)
    validators = list((args[1] if len(args) > 1 else unbound_field.kwargs.get("validators"))
                      or ())
    del args[1:2]
    if not any(isinstance(v, Length) and v.max not in (None, -1) for v in validators):
        maximum = TEXT_MAX if multiline else LINE_MAX
        validators.append(Length(max=maximum, message=_length_message(maximum)))
    filters = [clean_text if multiline else clean_line,
               *unbound_field.kwargs.get("filters", ())]
    kwargs = {**unbound_field.kwargs, "validators": validators, "filters": filters}
    return UnboundField(field_class, *args, **kwargs).bind(form=form, **options)


class BaseForm(FlaskForm):
    """Every staff form's base: each text field is cleaned and has a length limit.

    A field keeps the :class:`~wtforms.validators.Length` it declares (which should match
    the column it is stored in: ``tests/test_input_limits.py`` checks); one that declares
    none gets :data:`LINE_MAX` or :data:`TEXT_MAX`.
    """

    class Meta:
        def bind_field(self, form: Any, unbound_field: Any, options: dict[str, Any]) -> Any:
            return _bind_field(form, unbound_field, options)


class BaseSubForm(Form):
    """The same for a form nested in another (a ``FormField`` row), which has no CSRF."""

    class Meta:
        def bind_field(self, form: Any, unbound_field: Any, options: dict[str, Any]) -> Any:
            return _bind_field(form, unbound_field, options)


# --- requests --------------------------------------------------------------------------

class CleanRequest(Request):
    """Flask's request, whose query and form values come cleaned (:func:`clean_line` for
    the query, :func:`clean_text` for form fields, which may be multi-line).

    The one place for everything that reads ``request.args`` or ``request.form`` itself
    rather than through a form class: list filters, "back" links, the patient pages. Forms
    then clean each field again by its kind (a single-line field loses line breaks too).
    """

    @cached_property
    def args(self) -> MultiDict[str, str]:  # type: ignore[override]
        raw = super().args
        return self.parameter_storage_class(
            [(clean_line(k) or "", clean_line(v) or "") for k, v in raw.items(multi=True)])

    def _load_form_data(self) -> None:
        if "form" in self.__dict__:
            return
        super()._load_form_data()
        raw = self.__dict__["form"]
        self.__dict__["form"] = self.parameter_storage_class(
            [(clean_line(k) or "", clean_text(v) or "") for k, v in raw.items(multi=True)])


_BIDI = re.compile("[" + BIDI_CONTROLS + "]")


def without_bidi_controls(value: Any) -> Any:
    """Jinja's ``finalize``: every value a template prints loses the bidi controls, so
    text stored before they were refused, or reaching the database another way (an import,
    an email reply), cannot disguise itself on a page. Markup stays Markup: removing
    characters cannot make a tag."""
    if isinstance(value, str) and _BIDI.search(value):
        cleaned = _BIDI.sub("", value)
        return Markup(cleaned) if isinstance(value, Markup) else cleaned
    return value


def clean_path_values(endpoint: str | None, values: dict[str, Any] | None) -> None:
    """The values a URL carries in its path (a slug, a token) cleaned like the query's: a
    NUL in ``/tell-us/<slug>`` must be a 404, not a failed query."""
    for key, value in (values or {}).items():
        if isinstance(value, str):
            values[key] = clean_line(value) or ""  # type: ignore[index]


def init_app(app: Flask) -> None:
    app.request_class = CleanRequest
    app.url_value_preprocessors.setdefault(None, []).insert(0, clean_path_values)
    app.jinja_env.finalize = without_bidi_controls
    # Before every other hook, the permission check included: a request that cannot even
    # be read is answered 400, whoever sends it.
    app.before_request_funcs.setdefault(None, []).insert(0, refuse_undecodable)


def _decodes(raw: bytes, plus: bool) -> bool:
    if plus:
        raw = raw.replace(b"+", b" ")
    try:
        unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def refuse_undecodable() -> None:
    """400 for a query string or form body that is not UTF-8 (Werkzeug would otherwise
    drop or half-decode it, and the view would act on what is left)."""
    if not _decodes(request.query_string, plus=True):
        abort(400)
    if request.mimetype == "application/x-www-form-urlencoded":
        body = request.get_data(cache=True)
        if not _decodes(body, plus=True):
            abort(400)

