"""A comment read whole: its themes and sentiment (the model), its safety level (the
rules) and the personal details in it, in the shape ``engage feedback classify`` prints.

The caller brings the model, rules and staff names in force (see
:mod:`engage.feedback.in_force`): this module reads no database and imports no Flask.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from engage.feedback.text.model import Prediction, ThemeModel
from engage.feedback.text.pii import PiiSpan, find_pii, redact
from engage.feedback.text.safety import Match, SafetyResult, SafetyRules

#: A comment as it arrives: its text, the question it answers, its language (hints both).
Comment = tuple[str, str | None, str | None]


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


def read_comments(comments: Sequence[Comment], model: ThemeModel, rules: SafetyRules, *,
                  rules_version: str | None = None, names: Sequence[str] = ()
                  ) -> list[Analysis]:
    """Every comment's :class:`Analysis`. The model reads them in one pass (most of the
    saving over one at a time); ``names`` are staff names the PII finder also looks for;
    ``rules_version`` defaults to the rules' own."""
    predictions = model.predict([c[0] for c in comments], [c[1] for c in comments])
    out = []
    for (text, _question, language), prediction in zip(comments, predictions, strict=True):
        spans = find_pii(text, language, extra_names=names)
        out.append(Analysis(
            prediction=prediction, model_version=model.version,
            safety=rules.check(text, language), rules_version=rules_version or rules.version,
            pii=spans, redacted=redact(text, spans)))
    return out
