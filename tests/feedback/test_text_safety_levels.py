"""The two-level screen: review rules, anchors, urgent-if, misspellings, and the phrasing sets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from engage.feedback.text.safety import (
    DEFAULT_WINDOW,
    Level,
    RuleError,
    SafetyRules,
    default_rules,
    validate_rules,
)
from engage.feedback.text.spelling import Speller, known_words, within_one_edit

BENCH_DATA = Path(__file__).parents[2] / "bench" / "data"


def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((BENCH_DATA / name).read_text("utf-8"))
    return data


def development() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Phrasings and look-alikes the rules were written against (never the held-out ones)."""
    phrasings: list[dict[str, Any]] = []
    lookalikes: list[dict[str, Any]] = []
    for name in ("safety_development.json", "safety_independent.json",
                 "safety_independent_2.json", "safety_independent_3.json"):
        data = _load(name)
        phrasings += [p for p in data["phrasings"] if p.get("split") != "held-out"]
        lookalikes += [p for p in data["lookalikes"] if p.get("split") != "held-out"]
    return phrasings, lookalikes


PHRASINGS, LOOKALIKES = development()


def anchored(**rule: Any) -> SafetyRules:
    base: dict[str, Any] = {"id": "r", "category": "neglect", "description": "d",
                            "level": "review", "near": ["person"],
                            "phrases": {"en": ["soiled"]}}
    base.update(rule)
    return SafetyRules.from_dict({
        "version": "t",
        "anchors": [{"id": "person", "description": "a person", "phrases": {"en": ["she|he"]}},
                    {"id": "now", "description": "now", "phrases": {"en": ["right now"]}}],
        "rules": [base],
    })


# --- levels ----------------------------------------------------------------------------------


def test_every_development_phrasing_reaches_a_person() -> None:
    rules = default_rules()
    missed = [p["text"] for p in PHRASINGS if not rules.check(p["text"], p["language"]).flagged]
    assert not missed, missed
    assert len(PHRASINGS) >= 450


def test_clear_risk_to_life_is_always_urgent_in_the_development_sets() -> None:
    rules = default_rules()
    expected = [p for p in PHRASINGS if p["expect"] == "urgent"]
    not_urgent = [p["text"] for p in expected
                  if not rules.check(p["text"], p["language"]).urgent]
    assert not not_urgent, not_urgent
    assert len(expected) >= 40


def test_look_alikes_are_never_urgent() -> None:
    rules = default_rules()
    urgent = [p["text"] for p in LOOKALIKES if rules.check(p["text"], p["language"]).urgent]
    assert not urgent, urgent


@pytest.mark.parametrize("text", [
    "She was left soiled for hours",
    "he was lying on the floor in his own mess for hours",
    "used needles left lying around in the children's play area",
])
def test_the_issues_examples_are_flagged_for_review(text: str) -> None:
    result = default_rules().check(text)
    assert result.level == Level.REVIEW, (result.level, result.reason)
    assert result.reason and result.reason.startswith("review-")


def test_urgent_outranks_review_and_reason_names_the_urgent_rule() -> None:
    result = default_rules().check("She was left soiled for hours and says she wants to die")
    assert result.level == Level.URGENT and result.reason == "suicide"
    assert {m.level for m in result.matches} == {"urgent", "review"}


def test_a_review_concern_happening_now_is_urgent() -> None:
    rules = default_rules()
    assert rules.check("The night nurse is drunk, she can hardly stand").level == "review"
    now = rules.check("The night nurse is drunk, she can hardly stand. Please send someone now")
    assert now.level == "urgent" and now.reason == "review-impaired-staff"


# --- anchors -----------------------------------------------------------------------------------


def test_an_anchored_phrase_needs_its_anchor_within_the_window() -> None:
    rules = anchored(window=2)
    assert rules.check("she was soiled").level == "review"
    assert rules.check("soiled linen trolley").level == "none"
    assert rules.check("she said the linen was really soiled").level == "none"  # 4 words apart
    match = rules.check("she was soiled").matches[0]
    assert (match.anchor, match.anchor_text) == ("person", "she")


def test_the_default_window_is_six_words() -> None:
    rules = anchored()
    far = "she " + "x " * DEFAULT_WINDOW + "soiled"
    assert rules.check(far).level == "review"
    assert rules.check("she " + "x " * (DEFAULT_WINDOW + 1) + "soiled").level == "none"


def test_urgent_if_raises_a_review_match_when_the_anchor_is_anywhere() -> None:
    rules = anchored(urgent_if=["now"])
    assert rules.check("she was soiled").level == "review"
    assert rules.check("right now. A long time later she was soiled").level == "urgent"


@pytest.mark.parametrize(("change", "expected"), [
    ({"level": "later"}, "'level' is 'later'; it must be urgent or review"),
    ({"near": ["place"]}, "'near' names the anchor 'place', which is not in 'anchors'"),
    ({"near": "person"}, "'near' must be a list of anchor ids"),
    ({"window": 40}, "'window' must be a whole number of words from 1 to 15"),
    ({"urgent_if": ["soon"]}, "'urgent_if' names the anchor 'soon'"),
    ({"level": "urgent", "urgent_if": ["now"]}, "'urgent_if' only means something for a review"),
])
def test_rule_options_are_validated(change: dict[str, Any], expected: str) -> None:
    rule: dict[str, Any] = {"id": "r", "category": "neglect", "description": "d",
                            "level": "review", "near": ["person"], "phrases": {"en": ["soiled"]}}
    rule.update(change)
    data = {"version": "t", "rules": [rule],
            "anchors": [{"id": "person", "description": "p", "phrases": {"en": ["she"]}},
                        {"id": "now", "description": "n", "phrases": {"en": ["now"]}}]}
    problems = validate_rules(data)
    assert any(expected in p for p in problems), problems


def test_anchors_are_validated() -> None:
    data = {"version": "t", "rules": [{"id": "r", "category": "neglect", "description": "d",
                                       "phrases": {"en": ["x"]}}],
            "anchors": [{"id": "Person!", "phrases": {"en": ["("]}}, {"id": "a"}]}
    problems = "\n".join(validate_rules(data))
    assert "anchor 1 ('Person!'): 'id' must be lower-case" in problems
    assert "anchor 1 ('Person!'): 'description' must say what the anchor is" in problems
    assert "'(' without a matching ')'" in problems
    assert "anchor 2 ('a'): 'phrases' is missing" in problems
    with pytest.raises(RuleError):
        SafetyRules.from_dict(data)


def test_levels_anchors_and_urgent_if_round_trip() -> None:
    rules = anchored(window=3, urgent_if=["now"])
    again = SafetyRules.from_dict(rules.to_dict())
    assert again == rules and again.to_dict() == rules.to_dict()
    assert rules.to_dict()["rules"][0]["urgent_if"] == ["now"]


def test_an_optional_word_after_a_gap_widens_it() -> None:
    rules = SafetyRules.from_dict({"version": "t", "rules": [{
        "id": "r", "category": "danger", "description": "d",
        "phrases": {"en": ["left ~1 (all alone)? crying", "tied up ~2 (for hours)?"]}}]})
    assert rules.check("left a baby crying").urgent
    assert rules.check("left baby all alone crying").urgent  # ~1 widened to ~3
    assert rules.check("left the baby alone crying").urgent
    assert not rules.check("left the poor baby all alone crying").urgent
    assert rules.check("he was tied up").urgent


# --- misspellings -------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "level"), [
    ("im feeling sucidal again", "urgent"),
    ("sometimes I want to hurt myslf", "urgent"),
    ("she was negelcted on that ward", "urgent"),
    ("she was left soild for hours", "review"),
])
def test_misspelt_rule_words_are_read_as_meant(text: str, level: str) -> None:
    result = default_rules().check(text)
    assert result.level == level, (text, result)
    assert result.corrections
    # The highlight still points at what the patient typed.
    typed = {text[m.start:m.end] for m in result.matches}
    assert any(c.typed in " ".join(typed).lower() for c in result.corrections), typed


@pytest.mark.parametrize("text", [
    "I was amused by the porter's jokes",   # amused is not abused
    "the food was spoiled",                 # spoiled is not soiled
    "we cruised through the appointment",   # cruised is not bruised
    "the nurse clapped when I walked",       # clapped is not slapped
])
def test_everyday_words_are_never_corrected(text: str) -> None:
    result = default_rules().check(text)
    assert result.level == "none" and not result.corrections, result


def test_speller_reads_one_edit_and_only_unknown_words() -> None:
    speller = Speller(["suicidal", "kill", "neglect"], ["neglect"], known=frozenset({"amused"}))
    assert speller.read_as("sucidal") == "suicidal"         # a dropped letter
    assert speller.read_as("suicdial") == "suicidal"        # two letters swapped
    assert speller.read_as("kil") == "kill"                  # short: a dropped letter only
    assert speller.read_as("kilt") is None                   # short: no other edit
    assert speller.read_as("negelcted") == "neglected"       # a stem keeps its ending
    assert speller.read_as("amused") is None                 # a known word stays
    assert speller.read_as("a" * 60) is None                 # not a word at all


def test_long_words_may_take_two_slips_short_ones_not() -> None:
    speller = Speller(["intoxicated", "neglect", "suicidal"], known=frozenset())
    assert speller.read_as("intoxcatd") == "intoxicated"     # two letters dropped
    assert speller.read_as("sucidial") == "suicidal"          # a swap and a drop
    assert speller.read_as("neglcet") == "neglect"            # 7 letters: one swap, fine
    assert speller.read_as("nglcet") is None                  # 6 letters: two slips, no


def test_within_one_edit() -> None:
    assert within_one_edit("abc", "abc") and within_one_edit("abc", "abd")
    assert within_one_edit("abc", "ab") and within_one_edit("abc", "acb")
    assert not within_one_edit("abc", "cab") and not within_one_edit("abc", "a")


def test_known_words_cover_english_and_spanish() -> None:
    words = known_words()
    assert {"amused", "spoiled", "cruise", "enfermera", "espera"} <= words
    assert "sucidal" not in words and len(words) > 80_000
