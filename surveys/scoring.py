"""The scoring rules engine: reads ``<id>.scoring.json`` rules and turns item values into a Score.

Rules format (one JSON object per instrument, beside its Questionnaire)::

    {
      "total":   {"items": ["phq9-1", ..., "phq9-9"], "method": "sum"} | null,
      "band_by": {"item": "fft-1"},                               # optional
      "missing": {"max_missing": 2, "method": "prorate-mean-rounded"},
      "bands":   [{"id": "mild", "min": 5, "max": 9,
                   "label": {"en": "Mild", "es": "Leve", "ar": "خفيف"}}, ...],
      "alerts":  [{"id": "self-harm", "item": "phq9-9", "above": 0}],
      "source":  "free text: where the rules come from"
    }

``total``
    The items whose option values are added up into ``Score.total``; ``method`` must be
    ``"sum"`` (the only method supported). ``null`` means the instrument has no total.
``band_by``
    Optional. Absent: bands classify the total. ``{"item": link_id}``: bands classify that
    single item's option value instead (the FFT's positive / neutral / negative / don't-know
    category), and ``Score.total`` stays ``None``.
``missing``
    How many of the ``total`` items may be unanswered, and what to do then. ``max_missing: 0``
    (``method`` may be omitted or ``"none"``): any missing item makes the total unscoreable.
    ``"prorate-mean-rounded"``: with 1..max_missing items unanswered, the total is the mean of
    the answered items times the number of total items, rounded half up to a whole number
    (the same as replacing each missing item by the mean of the answered ones). With more
    missing, total and band are ``None``.
``bands``
    Inclusive ``min``..``max`` ranges with an id and a label per language. Checked when the
    instrument loads: every reachable total (or every option value of the ``band_by`` item)
    falls in exactly one band.
``alerts``
    ``{"id", "item", "above"}``: the alert is raised when that item is answered with a value
    strictly greater than ``above``, whatever the total and however many items are missing.
``source``
    Citation for the rules; not used by the engine.

Totals are computed with exact fractions, so rounding never depends on float error.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from types import MappingProxyType
from typing import Any

Number = int | float

PRORATE = "prorate-mean-rounded"
MISSING_METHODS = ("none", PRORATE)


class RulesError(ValueError):
    """A scoring rules file is malformed or does not fit its Questionnaire."""


@dataclass(frozen=True)
class Score:
    """The result of scoring one set of answers."""

    #: Sum of the total items (prorated when allowed); None when unscoreable or no total.
    total: int | float | None
    #: Id of the band the total (or ``band_by`` item) falls in; None when unscoreable.
    band: str | None
    #: Ids of the alert rules that fired, in rules order.
    alerts: list[str]
    #: True when every required item of the instrument is answered.
    complete: bool
    #: Link ids of unanswered scored items, in questionnaire order.
    missing: list[str]


@dataclass(frozen=True)
class Band:
    id: str
    min: Number
    max: Number
    labels: Mapping[str, str] = field(repr=False, compare=False)

    def contains(self, value: Number) -> bool:
        return self.min <= value <= self.max


@dataclass(frozen=True)
class AlertRule:
    id: str
    item: str
    above: Number


@dataclass(frozen=True)
class Rules:
    """Parsed scoring rules for one instrument."""

    total_items: tuple[str, ...]
    band_item: str | None
    max_missing: int
    missing_method: str
    bands: tuple[Band, ...]
    alerts: tuple[AlertRule, ...]
    source: str = ""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Rules:
        """Parse (and shape-check) a rules object as loaded from JSON."""
        allowed = {"total", "band_by", "missing", "bands", "alerts", "source"}
        unknown = set(data) - allowed
        if unknown:
            raise RulesError(f"unknown keys {sorted(unknown)}")

        total = data.get("total")
        total_items: tuple[str, ...] = ()
        if total is not None:
            method = total.get("method", "sum")
            if method != "sum":
                raise RulesError(f"total.method {method!r} is not supported, only 'sum'")
            total_items = tuple(_strings(total.get("items"), "total.items"))
            if not total_items:
                raise RulesError("total.items is empty")
            if len(set(total_items)) != len(total_items):
                raise RulesError("total.items lists an item twice")

        band_by = data.get("band_by")
        band_item = None
        if band_by is not None:
            band_item = band_by.get("item")
            if not isinstance(band_item, str):
                raise RulesError("band_by.item must be a link id")
        if not total_items and band_item is None:
            raise RulesError("rules need a total or band_by")

        missing = data.get("missing", {"max_missing": 0})
        max_missing = missing.get("max_missing", 0)
        method = missing.get("method", "none")
        if not isinstance(max_missing, int) or isinstance(max_missing, bool) or max_missing < 0:
            raise RulesError("missing.max_missing must be a non-negative integer")
        if method not in MISSING_METHODS:
            raise RulesError(f"missing.method must be one of {MISSING_METHODS}")
        if max_missing and method != PRORATE:
            raise RulesError(f"missing.max_missing > 0 needs method {PRORATE!r}")
        if max_missing >= max(len(total_items), 1):
            raise RulesError("missing.max_missing must leave at least one answered item")

        bands = tuple(
            Band(
                id=_string(b.get("id"), "bands[].id"),
                min=_number(b.get("min"), "bands[].min"),
                max=_number(b.get("max"), "bands[].max"),
                labels=MappingProxyType(dict(b.get("label") or {})),
            )
            for b in data.get("bands", [])
        )
        if not bands:
            raise RulesError("rules need at least one band")
        if len({b.id for b in bands}) != len(bands):
            raise RulesError("band ids must be unique")
        for b in bands:
            if b.min > b.max:
                raise RulesError(f"band {b.id!r}: min > max")
            if "en" not in b.labels:
                raise RulesError(f"band {b.id!r} has no English label")

        alerts = tuple(
            AlertRule(
                id=_string(a.get("id"), "alerts[].id"),
                item=_string(a.get("item"), "alerts[].item"),
                above=_number(a.get("above"), "alerts[].above"),
            )
            for a in data.get("alerts", [])
        )
        source = str(data.get("source", ""))
        return cls(total_items, band_item, max_missing, method, bands, alerts, source)

    @property
    def scored_items(self) -> frozenset[str]:
        """Items that feed the total or the band."""
        return frozenset(self.total_items) | ({self.band_item} if self.band_item else frozenset())

    @property
    def referenced_items(self) -> frozenset[str]:
        return self.scored_items | {a.item for a in self.alerts}

    def check(self, option_values: Mapping[str, Sequence[Number]]) -> None:
        """Check the rules against the instrument's choice items and their option values.

        Every referenced item must be a choice item, and the bands must cover every
        reachable total (or every value of the ``band_by`` item) exactly once.
        """
        for link_id in sorted(self.referenced_items):
            if not option_values.get(link_id):
                raise RulesError(f"{link_id}: not a choice item of this instrument")
        if self.band_item is not None:
            reachable: list[Number] = sorted(set(option_values[self.band_item]))
        else:
            reachable = self._reachable_totals(option_values)
        for value in reachable:
            hits = [b.id for b in self.bands if b.contains(value)]
            if len(hits) != 1:
                raise RulesError(f"value {value} falls in {len(hits)} bands {hits}, not exactly 1")

    def _reachable_totals(self, option_values: Mapping[str, Sequence[Number]]) -> list[Number]:
        sums: set[Fraction] = {Fraction(0)}
        for link_id in self.total_items:
            sums = {s + Fraction(v) for s in sums for v in option_values[link_id]}
        totals = set(sums)
        if self.max_missing:
            # Prorated totals are whole numbers between the lowest and highest sums.
            totals |= {Fraction(n) for n in range(math.ceil(min(sums)), math.floor(max(sums)) + 1)}
        return [_plain(t) for t in sorted(totals)]

    def band_for(self, value: Number) -> str | None:
        for band in self.bands:
            if band.contains(value):
                return band.id
        return None

    def band_label(self, band_id: str, lang: str = "en") -> str:
        for band in self.bands:
            if band.id == band_id:
                return band.labels.get(lang) or band.labels["en"]
        raise KeyError(band_id)

    def evaluate(self, values: Mapping[str, Number | None], *, complete: bool) -> Score:
        """Score already-validated item values (link id -> option value, None = unanswered)."""
        missing_total = [i for i in self.total_items if values.get(i) is None]

        total: int | float | None = None
        band: str | None = None
        if self.total_items and len(missing_total) <= self.max_missing:
            answered = [Fraction(v) for i in self.total_items if (v := values.get(i)) is not None]
            exact = sum(answered, Fraction(0))
            if missing_total:
                exact = _round_half_up(exact * len(self.total_items) / len(answered))
            total = _plain(exact)
            band = self.band_for(total)
        if self.band_item is not None:
            item_value = values.get(self.band_item)
            band = None if item_value is None else self.band_for(item_value)

        alerts = [
            a.id for a in self.alerts if (v := values.get(a.item)) is not None and v > a.above
        ]
        scored = self.scored_items
        missing = [i for i, v in values.items() if i in scored and v is None]
        return Score(total=total, band=band, alerts=alerts, complete=complete, missing=missing)


def round_half_up(value: Fraction | Number) -> int:
    """Round to the nearest whole number, halves away from zero for positives (2.5 -> 3)."""
    return int(_round_half_up(Fraction(value)))


def _round_half_up(value: Fraction) -> Fraction:
    return Fraction(math.floor(value + Fraction(1, 2)))


def _plain(value: Fraction) -> int | float:
    return int(value) if value.denominator == 1 else float(value)


def _string(value: object, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise RulesError(f"{where} must be a non-empty string")
    return value


def _strings(value: object, where: str) -> list[str]:
    if not isinstance(value, list):
        raise RulesError(f"{where} must be a list of link ids")
    return [_string(v, where) for v in value]


def _number(value: object, where: str) -> Number:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RulesError(f"{where} must be a number")
    return value
