"""Survey instruments (FHIR Questionnaires plus data-driven scoring rules) and their public API.

Instruments live in ``surveys/instruments/<id>.json`` (a FHIR R4 Questionnaire) beside
``<id>.scoring.json`` (rules, see :mod:`surveys.scoring`). They are loaded once, on first use.

>>> import surveys
>>> phq9 = surveys.get("phq-9")
>>> phq9.score({f"phq9-{i}": 3 for i in range(1, 10)}).band
'severe'

This package imports nothing from Flask or ``engage``.
"""

from __future__ import annotations

import builtins
import copy
import functools
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from types import MappingProxyType
from typing import Any

from surveys import fhir
from surveys.scoring import Rules, RulesError, Score

__all__ = [
    "LANGUAGES",
    "Instrument",
    "InvalidAnswer",
    "Item",
    "Option",
    "RulesError",
    "Score",
    "UnknownInstrument",
    "all",
    "fft_percent_positive",
    "get",
]

#: Languages every built-in instrument is translated into; English is the source language.
LANGUAGES = ("en", "es", "ar")

#: What an answer may be: an option's numeric value, its code, the value as text, or free text.
AnswerValue = int | float | str | None


class UnknownInstrument(KeyError):
    """No instrument has that id."""


class InvalidAnswer(ValueError):
    """An answer does not fit its item; ``link_id`` names the item."""

    def __init__(self, link_id: str, message: str) -> None:
        super().__init__(f"{link_id}: {message}")
        self.link_id = link_id


def _pick(texts: Mapping[str, str], lang: str) -> str:
    return texts.get(lang) or texts.get("en", "")


def _frozen(texts: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(texts))


@dataclass(frozen=True)
class Option:
    """One answer option of a choice item."""

    code: str
    value: int | float
    display: str
    system: str = field(default="", repr=False)
    _displays: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    def display_in(self, lang: str) -> str:
        """The option's label in ``lang``, falling back to English."""
        return _pick(self._displays, lang) or self.display


@dataclass(frozen=True)
class Item:
    """One answerable question (groups are flattened, display items left out)."""

    link_id: str
    code: str | None
    text: str
    type: str
    required: bool
    scored: bool
    _options: tuple[Option, ...] = field(default=(), repr=False)
    _texts: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    @property
    def options(self) -> list[Option]:
        """Answer options in questionnaire order; ``[]`` for free-text items."""
        return list(self._options)

    def text_in(self, lang: str) -> str:
        """The question text in ``lang``, falling back to English."""
        return _pick(self._texts, lang) or self.text

    def option(self, value_or_code: int | float | str) -> Option:
        """Find an option by numeric value, by that value written as text ("2"), or by code.

        Raises InvalidAnswer (naming this item) when nothing matches.
        """
        if not self._options:
            raise InvalidAnswer(self.link_id, "is a free-text item and has no options")
        if isinstance(value_or_code, str):
            for opt in self._options:
                if opt.code == value_or_code:
                    return opt
            number = _parse_number(value_or_code)
        elif isinstance(value_or_code, bool) or not isinstance(value_or_code, int | float):
            number = None
        else:
            number = value_or_code
        if number is not None:
            for opt in self._options:
                if opt.value == number:
                    return opt
        values = ", ".join(str(o.value) for o in self._options)
        shown = repr(value_or_code) if isinstance(value_or_code, str) else str(value_or_code)
        raise InvalidAnswer(self.link_id, f"{shown} is not one of the options ({values})")


def _parse_number(text: str) -> float | None:
    try:
        number = float(text.strip())
    except ValueError:
        return None
    return number if math.isfinite(number) else None


@dataclass(frozen=True)
class Instrument:
    """A loaded instrument: its Questionnaire, answerable items and scoring rules. Read-only."""

    id: str
    version: str
    url: str
    code: str | None
    title: str
    copyright: str
    publisher: str
    _items: tuple[Item, ...] = field(repr=False)
    _rules: Rules = field(repr=False, compare=False)
    _questionnaire: Mapping[str, Any] = field(repr=False, compare=False)
    _titles: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)
    _descriptions: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    @property
    def items(self) -> list[Item]:
        """Answerable items in questionnaire order."""
        return list(self._items)

    def title_in(self, lang: str) -> str:
        return _pick(self._titles, lang) or self.title

    def description_in(self, lang: str) -> str:
        """The instructions / preamble in ``lang`` (English fallback); ``""`` if none."""
        return _pick(self._descriptions, lang)

    def item(self, link_id: str) -> Item:
        for item in self._items:
            if item.link_id == link_id:
                return item
        raise KeyError(link_id)

    def band_label(self, band_id: str, lang: str = "en") -> str:
        """Label of a band (e.g. ``"moderately-severe"``) in ``lang``; KeyError if unknown."""
        return self._rules.band_label(band_id, lang)

    def to_fhir(self) -> dict[str, Any]:
        """The FHIR R4 Questionnaire JSON (a deep copy; safe to modify)."""
        return copy.deepcopy(dict(self._questionnaire))

    def resolve(self, answers: Mapping[str, AnswerValue]) -> dict[str, Option | str | None]:
        """Validate answers and return ``{link_id: Option | text | None}`` for every item, in order.

        Raises InvalidAnswer for unknown link ids and for values that fit no option.
        """
        known = {item.link_id for item in self._items}
        for link_id in answers:
            if link_id not in known:
                raise InvalidAnswer(str(link_id), f"is not an item of {self.id}")
        resolved: dict[str, Option | str | None] = {}
        for item in self._items:
            raw = answers.get(item.link_id)
            if item.type == "text":
                if raw is not None and not isinstance(raw, str):
                    raise InvalidAnswer(item.link_id, f"expects text, not {type(raw).__name__}")
                resolved[item.link_id] = raw if raw and raw.strip() else None
            elif raw is None or (isinstance(raw, str) and not raw.strip()):
                resolved[item.link_id] = None
            else:
                resolved[item.link_id] = item.option(raw)
        return resolved

    def score(self, answers: Mapping[str, AnswerValue]) -> Score:
        """Score answers keyed by link id (option value or code; None/absent = unanswered)."""
        resolved = self.resolve(answers)
        values: dict[str, int | float | None] = {}
        for item in self._items:
            if item.type == "choice":
                answer = resolved[item.link_id]
                values[item.link_id] = answer.value if isinstance(answer, Option) else None
        # ``all`` is redefined below as part of the public API.
        complete = builtins.all(resolved[i.link_id] is not None for i in self._items if i.required)
        return self._rules.evaluate(values, complete=complete)

    def questionnaire_response(
        self,
        answers: Mapping[str, AnswerValue],
        *,
        authored: datetime,
        subject: str | None = None,
        language: str = "en",
        source_relationship: str | None = None,
    ) -> dict[str, Any]:
        """A completed FHIR R4 QuestionnaireResponse for these answers.

        Item text and answer displays are in ``language`` (what the respondent saw).
        ``authored`` must be timezone-aware; ``subject`` is a reference such as "Patient/1";
        ``source_relationship`` (e.g. "carer") says someone answered on the subject's behalf.
        """
        if language not in LANGUAGES:
            raise ValueError(f"language must be one of {LANGUAGES}, not {language!r}")
        parts: list[fhir.ResponseAnswer] = []
        for link_id, answer in self.resolve(answers).items():
            if answer is None:
                continue
            item = self.item(link_id)
            if isinstance(answer, Option):
                coding = {
                    "system": answer.system,
                    "code": answer.code,
                    "display": answer.display_in(language),
                }
                parts.append(fhir.ResponseAnswer(link_id, item.text_in(language), coding=coding))
            else:
                parts.append(fhir.ResponseAnswer(link_id, item.text_in(language), string=answer))
        return fhir.questionnaire_response(
            questionnaire=f"{self.url}|{self.version}",
            answers=parts,
            authored=authored,
            language=language,
            subject=subject,
            source_relationship=source_relationship,
        )


def _build(questionnaire: dict[str, Any], rules: Rules) -> Instrument:
    instrument_id = questionnaire.get("id")
    if not isinstance(instrument_id, str):
        raise RulesError("Questionnaire has no id")
    items: list[Item] = []
    option_values: dict[str, list[int | float]] = {}
    for raw in fhir.answerable_items(questionnaire.get("item", [])):
        link_id = raw["linkId"]
        item_type = raw.get("type")
        if item_type not in ("choice", "text"):
            raise RulesError(f"{instrument_id}/{link_id}: unsupported item type {item_type!r}")
        options: list[Option] = []
        for answer_option in raw.get("answerOption", []):
            coding = answer_option["valueCoding"]
            value = fhir.ordinal_value(coding)
            if value is None:
                raise RulesError(
                    f"{instrument_id}/{link_id}: option {coding.get('code')} has no ordinalValue"
                )
            options.append(
                Option(
                    code=coding["code"],
                    value=value,
                    display=coding.get("display", ""),
                    system=coding.get("system", ""),
                    _displays=_frozen(fhir.localized(coding, "display")),
                )
            )
        if item_type == "choice":
            option_values[link_id] = [o.value for o in options]
        items.append(
            Item(
                link_id=link_id,
                code=fhir.loinc_code(raw.get("code")),
                text=raw.get("text", ""),
                type=item_type,
                required=bool(raw.get("required", False)),
                scored=link_id in rules.scored_items,
                _options=tuple(options),
                _texts=_frozen(fhir.localized(raw, "text")),
            )
        )
    if len({i.link_id for i in items}) != len(items):
        raise RulesError(f"{instrument_id}: duplicate linkId")
    try:
        rules.check(option_values)
    except RulesError as exc:
        raise RulesError(f"{instrument_id}: {exc}") from exc
    return Instrument(
        id=instrument_id,
        version=questionnaire.get("version", ""),
        url=questionnaire.get("url", ""),
        code=fhir.loinc_code(questionnaire.get("code")),
        title=questionnaire.get("title", ""),
        copyright=questionnaire.get("copyright", ""),
        publisher=questionnaire.get("publisher", ""),
        _items=tuple(items),
        _rules=rules,
        _questionnaire=MappingProxyType(questionnaire),
        _titles=_frozen(fhir.localized(questionnaire, "title")),
        _descriptions=_frozen(fhir.localized(questionnaire, "description")),
    )


@functools.cache
def _registry() -> Mapping[str, Instrument]:
    folder = resources.files(__name__).joinpath("instruments")
    found: dict[str, Instrument] = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".json") or entry.name.endswith(".scoring.json"):
            continue
        questionnaire = json.loads(entry.read_text(encoding="utf-8"))
        stem = entry.name.removesuffix(".json")
        rules_file = folder.joinpath(f"{stem}.scoring.json")
        try:
            rules = Rules.from_json(json.loads(rules_file.read_text(encoding="utf-8")))
        except FileNotFoundError:
            raise RulesError(f"{entry.name} has no {stem}.scoring.json beside it") from None
        except RulesError as exc:
            raise RulesError(f"{stem}.scoring.json: {exc}") from exc
        instrument = _build(questionnaire, rules)
        if instrument.id != stem:
            raise RulesError(f"{entry.name}: Questionnaire.id is {instrument.id!r}")
        found[instrument.id] = instrument
    return MappingProxyType(found)


def get(instrument_id: str) -> Instrument:
    """The instrument with that id; raises UnknownInstrument (a KeyError) otherwise."""
    try:
        return _registry()[instrument_id]
    except KeyError:
        raise UnknownInstrument(instrument_id) from None


def all() -> list[Instrument]:  # shadows the builtin on purpose: the API names it
    """Every built-in instrument, sorted by id."""
    registry = _registry()
    return [registry[k] for k in sorted(registry)]


def fft_percent_positive(ratings: Iterable[int | str | None]) -> float | None:
    """NHS England's FFT percentage positive: (very good + good) / all responses x 100.

    ``ratings`` are FFT answers (value 1..6 or code); "don't know" (6) counts as a response,
    None (unanswered) does not. Returns None when there are no responses; not rounded.
    Raises InvalidAnswer for anything that is not an FFT rating.
    """
    fft = get("fft")
    rating_item = fft.item("fft-1")
    responses = positive = 0
    for rating in ratings:
        if rating is None:
            continue
        option = rating_item.option(rating)
        responses += 1
        if fft._rules.band_for(option.value) == "positive":
            positive += 1
    if responses == 0:
        return None
    return 100 * positive / responses
