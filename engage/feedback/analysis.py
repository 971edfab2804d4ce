"""What the text tells us: themes, sentiment, urgency and personal details, for one comment.

The theme model and the safety rules in force live in the database (the newest
saved rule set; the active trained model) and fall back to the ones shipped with
Engage. Each process keeps the parsed versions in memory and asks the database
only which version is current, so a model switched on by an admin reaches every
web worker at its next comment.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import OperationalError, ProgrammingError

from engage.extensions import db
from engage.feedback.text.model import Prediction, ThemeModel, default_model
from engage.feedback.text.pii import PiiSpan, find_pii, redact
from engage.feedback.text.safety import Match, SafetyResult, SafetyRules, default_rules

_lock = threading.Lock()
#: Parsed once per process, keyed by what identifies the stored row's content (an id alone
#: can come back for other content after a rollback on SQLite).
_models: dict[tuple[int, str], ThemeModel] = {}
_rules: dict[tuple[int, Any], SafetyRules] = {}


@dataclass(frozen=True)
class Analysis:
    prediction: Prediction
    model_version: str
    safety: SafetyResult
    rules_version: str
    pii: list[PiiSpan] = field(default_factory=list)
    redacted: str = ""

    def as_json(self, text: str) -> dict[str, Any]:
        """The ``engage feedback classify`` contract."""
        return {
            "themes": [{"theme": name, "confidence": round(score, 4)}
                       for name, score in self.prediction.themes],
            "sentiment": self.prediction.sentiment_label,
            "sentiment_score": self.prediction.sentiment,
            "sentiment_confidence": round(self.prediction.sentiment_confidence, 4),
            "level": self.safety.level,
            "reason": self.safety.reason,
            "category": self.safety.category,
            "safety_matches": [_match_json(m) for m in self.safety.matches],
            "urgent": self.safety.urgent,
            "urgent_reason": self.safety.reason if self.safety.urgent else None,
            "urgent_category": self.safety.category if self.safety.urgent else None,
            "urgent_matches": [_match_json(m) for m in self.safety.matches
                               if m.level == "urgent"],
            "pii": [{"kind": s.kind, "text": s.text, "start": s.start, "end": s.end}
                    for s in self.pii],
            "redacted": self.redacted,
            "model_version": self.model_version,
            "rules_version": self.rules_version,
        }


def _match_json(m: Match) -> dict[str, Any]:
    out: dict[str, Any] = {"rule": m.rule, "level": m.level, "phrase": m.phrase,
                           "text": m.text, "start": m.start, "end": m.end}
    if m.anchor:
        out["near"] = {"anchor": m.anchor, "text": m.anchor_text}
    return out


_ready: set[str] = set()
#: Staff names change rarely; read them again after this many seconds.
NAMES_TTL = 60.0
_names: dict[str, tuple[float, list[str]]] = {}


def _database_ready() -> bool:
    """False when the tables do not exist yet (``engage feedback classify`` before
    ``engage db upgrade``): the shipped model and rules still answer. Asked once per
    database and process: tables do not go away."""
    url = str(db.engine.url)
    if url in _ready:
        return True
    try:
        with db.session.begin_nested():
            db.session.execute(select(1).select_from(db.metadata.tables["theme_model"]).limit(1))
    except (OperationalError, ProgrammingError):
        return False
    _ready.add(url)
    return True


def _cached(cache: dict[Any, Any], key: Any, load: Any) -> Any:
    """The parsed value for ``key``, loading it (and forgetting any other) when new."""
    with _lock:
        value = cache.get(key)
    if value is None:
        value = load()
        with _lock:
            cache.clear()  # one version in memory at a time
            cache[key] = value
    return value


def active_model() -> tuple[ThemeModel, int | None]:
    """The model in force and its database id (None: the shipped default)."""
    from engage.feedback.models import ThemeModelRecord

    if not _database_ready():
        return default_model(), None
    row = db.session.execute(
        select(ThemeModelRecord.id, ThemeModelRecord.version)
        .where(ThemeModelRecord.status == "active").limit(1)).first()
    if row is None:
        return default_model(), None
    def load() -> ThemeModel:
        record = db.session.get(ThemeModelRecord, row.id)
        assert record is not None
        return ThemeModel.from_parts(record.manifest, record.arrays)

    return _cached(_models, (row.id, row.version), load), row.id


def active_rules() -> tuple[SafetyRules, int | None]:
    """The newest saved safety rules and their id (None: the shipped file)."""
    from engage.feedback.models import SafetyRuleSet

    if not _database_ready():
        return default_rules(), None
    row = db.session.execute(
        select(SafetyRuleSet.id, SafetyRuleSet.created_at)
        .order_by(SafetyRuleSet.id.desc()).limit(1)).first()
    if row is None:
        return default_rules(), None
    def load() -> SafetyRules:
        record = db.session.get(SafetyRuleSet, row.id)
        assert record is not None
        return SafetyRules.from_dict(record.rules)

    return _cached(_rules, (row.id, row.created_at), load), row.id


def known_names() -> list[str]:
    """Staff names, for the PII finder: comments often name the nurse or doctor."""
    from engage.accounts.models import User

    if not _database_ready():
        return []
    url = str(db.engine.url)
    cached = _names.get(url)
    if cached is not None and time.monotonic() - cached[0] < NAMES_TTL:
        return cached[1]
    names: list[str] = []
    for full in db.session.scalars(select(User.name).where(User.name != "")):
        names.extend(part for part in full.split() if len(part) > 1)
    names = sorted(set(names))
    _names[url] = (time.monotonic(), names)
    return names


def analyse(text: str, question: str | None = None, language: str | None = None, *,
            extra_names: list[str] | tuple[str, ...] = ()) -> Analysis:
    """Themes, sentiment, safety level and PII of one comment, with the model and rules in
    force."""
    return analyse_many([(text, question, language)], extra_names=extra_names)[0]


def analyse_many(comments: Sequence[tuple[str, str | None, str | None]], *,
                 extra_names: list[str] | tuple[str, ...] = ()) -> list[Analysis]:
    """:func:`analyse` for many ``(text, question, language)`` at once: the theme model
    reads them in one pass, which is most of the saving."""
    model, _model_id = active_model()
    rules, rules_id = active_rules()
    rules_version = rules.version if rules_id is None else f"{rules.version}#{rules_id}"
    names = [*known_names(), *extra_names]
    predictions = model.predict([c[0] for c in comments], [c[1] for c in comments])
    out = []
    for (text, _question, language), prediction in zip(comments, predictions, strict=True):
        spans = find_pii(text, language, extra_names=names)
        out.append(Analysis(
            prediction=prediction, model_version=model.version,
            safety=rules.check(text, language), rules_version=rules_version,
            pii=spans, redacted=redact(text, spans)))
    return out
