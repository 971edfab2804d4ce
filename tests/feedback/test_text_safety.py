"""The urgent-comment rules: recall on phrasings, false alarms, offsets, validation, syntax."""

from __future__ import annotations

import copy
import csv
import json
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engage.feedback.text.safety import (
    CATEGORIES,
    RuleError,
    SafetyRules,
    default_rules,
    normalise,
    validate_rules,
)

CASES = json.loads((Path(__file__).parent / "data" / "safety_cases.json").read_text("utf-8"))
RULES_FILE = (
    Path(__file__).parents[2] / "engage" / "feedback" / "text" / "data" / "safety_rules.json"
)
TRAIN_CSV = Path(__file__).parents[3] / "shared" / "data" / "feedback-themes" / "train.csv"

URGENT = [
    (category, lang, text)
    for category, by_lang in CASES["urgent"].items()
    for lang, texts in by_lang.items()
    for text in texts
]
ORDINARY = [(lang, text) for lang, texts in CASES["not_urgent"].items() for text in texts]
REVIEW = [
    (category, lang, text)
    for category, by_lang in CASES["review"].items()
    for lang, texts in by_lang.items()
    for text in texts
]


def rules_with(*phrases: str, exclusions: list[str] | None = None) -> SafetyRules:
    rule: dict[str, Any] = {
        "id": "test",
        "category": "danger",
        "description": "a test rule",
        "phrases": {"en": list(phrases)},
    }
    if exclusions:
        rule["exclusions"] = {"en": exclusions}
    return SafetyRules.from_dict({"version": "t", "rules": [rule]})


# --- recall and false alarms on hand-written phrasings ----------------------------------


def test_case_list_covers_every_category_and_language_broadly() -> None:
    assert len(URGENT) >= 150
    by_lang = {lang: sum(1 for _, la, _ in URGENT if la == lang) for lang in ("en", "es", "ar")}
    assert by_lang["es"] >= 25 and by_lang["ar"] >= 25, by_lang
    assert {c for c, _, _ in URGENT} | {c for c, _, _ in REVIEW} == set(CATEGORIES)


@pytest.mark.parametrize(("category", "lang", "text"), URGENT, ids=lambda v: str(v)[:40])
def test_urgent_phrasing_is_flagged_with_its_category(category: str, lang: str, text: str) -> None:
    result = default_rules().check(text, lang)
    assert result.urgent, text
    assert result.category == category, (text, result.reason, result.matches)
    assert result.reason is not None and result.matches


@pytest.mark.parametrize(("category", "lang", "text"), REVIEW, ids=lambda v: str(v)[:40])
def test_review_phrasing_reaches_a_person_with_its_category(
    category: str, lang: str, text: str
) -> None:
    result = default_rules().check(text, lang)
    assert result.level == "review", (text, result.level, result.reason)
    assert result.category == category, (text, result.reason, result.matches)


@pytest.mark.parametrize(("lang", "text"), ORDINARY, ids=lambda v: str(v)[:40])
def test_ordinary_comment_is_not_flagged(lang: str, text: str) -> None:
    result = default_rules().check(text, lang)
    assert not result.urgent, [(m.rule, m.text, m.phrase) for m in result.matches]
    assert result.reason is None and result.category is None and result.matches == ()


@pytest.mark.parametrize(
    "text",
    [
        "I'm not saying I want to end it all but...",
        "I would never hurt myself, but sometimes I wish I wasn't here",
        "not suicidal, just tired of living",
        "I don't want to kill myself, don't worry",
        "No quiero hacerme daño, pero no quiero vivir",
        "لست انتحاريا",
    ],
)
def test_negated_and_hedged_phrasings_are_still_flagged(text: str) -> None:
    assert default_rules().check(text).category == "self-harm"


def test_declared_language_is_only_a_hint() -> None:
    rules = default_rules()
    assert rules.check("اريد ان اموت", language="en").urgent
    assert rules.check("me quiero matar", language="ar").urgent
    assert rules.check("I want to die", language="es").urgent
    assert rules.check("I want to die", language=None).urgent


def test_mixed_language_comment_reports_each_language() -> None:
    result = default_rules().check("The ward was fine. Pero mi marido me pega. يضربني")
    assert result.category == "abuse"
    assert {m.text for m in result.matches} >= {"me pega", "يضربني"}


def test_reason_is_the_first_rule_in_file_order() -> None:
    result = default_rules().check("My husband hits me and I want to die")
    assert result.reason == "suicide"
    assert {m.rule for m in result.matches} >= {"suicide", "abuse-physical"}


@pytest.mark.parametrize("text", ["", "   ", "!!!", "...", "\u064b\u0640"])
def test_empty_or_punctuation_only_text_is_not_urgent(text: str) -> None:
    assert not default_rules().check(text).urgent


def test_default_rules_are_parsed_once() -> None:
    assert default_rules() is default_rules()


# --- offsets into the original text -----------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Honestly... I want to KILL my-self!!", "KILL my-self"),
        ("My dad's carer hits him.", "hits him"),
        ("I can't take it anymore", "can't take it anymore"),
        ("Ayer mi hija dijo: «Quiero morirme».", "Quiero morirme"),
        ("No quiero vivir así, ¿entiendes?", "No quiero vivir"),
        ("أنا أُرِيدُ أَنْ أَمُوتَ الآن", "أُرِيدُ أَنْ أَمُوتَ"),
        ("قال: أريـــد أن أمـــوت.", "أريـــد أن أمـــوت"),
        ("زوجي يضربني كل يوم", "يضربني"),
        ("Ｉ ｗａｎｔ ｔｏ ｄｉｅ", "ｗａｎｔ ｔｏ ｄｉｅ"),
    ],
)
def test_match_offsets_point_at_the_phrase_in_the_original(text: str, expected: str) -> None:
    result = default_rules().check(text)
    assert result.urgent
    spans = [(m.start, m.end, m.text) for m in result.matches]
    for start, end, matched in spans:
        assert text[start:end] == matched
    assert expected in [matched for _, _, matched in spans], spans


def test_offsets_survive_decomposed_accents_and_trailing_marks() -> None:
    text = "Sufri\u0301 abuso\u0301 en casa"  # combining accents, not precomposed
    result = default_rules().check(text)
    (match,) = [m for m in result.matches if m.rule == "abuse-general"]
    assert match.text == "abuso\u0301"


def test_normalisation_folds_case_accents_punctuation_and_arabic_forms() -> None:
    assert normalise("  Daño,   ¿MÁS?  ") == "dano mas"
    assert normalise("don't") == "dont"
    assert normalise("self-harm") == "self harm"
    assert normalise("إِسَاءَة") == normalise("اساءه")
    assert normalise("أنا آسف إلى مستشفى") == "انا اسف الي مستشفي"
    assert normalise("١٢٣") == "123"


# --- the real comments -------------------------------------------------------------------

# Comment IDs from train.csv that a clinician should read, reviewed one by one (see
# docs/safety-rules.md): suicidal thoughts, self-harm, abuse, neglect, violence, an overdose.
MUST_FLAG = {
    "NHFT 49 - Q1",  # child with self-harm history wanted to die
    "NHFT 476 - Q1",  # "I want to end my life EVERY SINGLE DAY"
    "NHFT 803 - Q1",  # "if I get to the point of ending my life"
    "NHFT 1216 - Q1",  # suicidal thoughts every day
    "NHFT 1217 - Q1",
    "NHFT 1710 - Q1",  # terrible suicidal thoughts
    "NHFT 1738 - Q1",  # "I did and had to be resuscitated"
    "NHFT 1856 - Q1",  # "no longer had suicidal thoughts" (negated: still read)
    "NHFT 1891 - Q1",  # "Did cut myself cause of her"
    "NHFT 1899 - Q1",  # "I was suicidal and got left to deal with it alone"
    "NHFT 1921 - Q1",  # suicidal intentions (labelled Safeguarding concerns)
    "NHFT 1986 - Q2",  # "would drive you to suicide"
    "NHFT 1039 - Q1",  # "I am hopeless for the future", in crisis (labelled Feeling safe)
    "NHFT 1940 - Q1",  # "I'll be dead by then" (17-month mental health wait)
    "NEAS 111 583 - Q3",  # accidental paracetamol overdose
    "NHFT 1645 - Q1",  # "three situations of violence towards me" (labelled Feeling safe)
    "NHFT 1443 - Q2",  # a patient tried to attack me; threats reported to police
    "NHFT 1938 - Q1",  # sexual assault
    "NHFT 1944 - Q1",  # long-term historic abuse
    "NHFT 1914 - Q1",  # domestic and childhood abuse
    "NHFT 455 - Q1",  # trauma and abuse
    "NEAS 111 1066 - Q1",  # daughter with an abusive partner
    "NHFT 64 - Q1",  # kept among violent men, humiliation
    "NHFT 1753 - Q1",  # safeguarding report: elderly man covered in pressure sores
    "NHFT 1701 - Q1",  # safeguarding, abuse, neglect
    "NHFT 1231 - Q1",  # man died of neglect; bullying
    "NHFT 801 - Q1",  # bedridden, suffered through their neglect
    "NHFT 1793 - Q1",  # medical neglect, starved
    "NHFT 1962 - Q1",  # neglect and poor treatment
}
# Flagged on purpose though a reader may find nothing to act on: they name abuse,
# negligence, safeguarding or belittling outright, and a person should decide.
ACCEPTED_FLAGS = {
    "NHFT 1373 - Q1",  # "stop belittling people and calling them names"
    "NHFT 1386 - Q1",  # "stop shouting at us"
    "NHFT 1175 - Q1",  # "Negligence, intolerance, deception"
    "NHFT 1339 - Q1",  # "an investigation into hospital negligence"
    "NHFT 1443 - Q1",  # "classes as NHS safeguarding"
}
# Rows labelled "Safeguarding concerns?" or "Feeling safe" that are flagged; the other
# labelled rows are praise ("I felt safe") and must stay quiet.
LABELLED_FLAGGED = {"NHFT 1921 - Q1", "NHFT 1753 - Q1", "NHFT 1645 - Q1", "NHFT 1039 - Q1"}
#: Measured 0 unreviewed flags in 4,993 (2026-12-03); room for a few after a rule change.
MAX_FALSE_ALARM_RATE = 0.002
#: Measured 34 of 4,993 flagged (0.68%), nearly all warranted.
MAX_FLAG_RATE = 0.01


@pytest.fixture(scope="module")
def real_comments() -> list[dict[str, str]]:
    if not TRAIN_CSV.exists():
        pytest.skip(f"{TRAIN_CSV} is not there (shared/ data is not in every checkout)")
    with TRAIN_CSV.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def test_false_alarm_rate_on_real_comments_stays_low(
    real_comments: list[dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    rules = default_rules()
    results = {row["Comment ID"]: rules.check(row["FFT answer"]) for row in real_comments}
    flagged = {cid: result for cid, result in results.items() if result.urgent}
    false_alarms = set(flagged) - MUST_FLAG - ACCEPTED_FLAGS
    rate = len(false_alarms) / len(real_comments)
    with capsys.disabled():
        print(
            f"\n{len(flagged)} of {len(real_comments)} real comments flagged; "
            f"{len(false_alarms)} false alarms ({rate:.2%})"
        )
        for cid in sorted(false_alarms):
            print("  false alarm:", cid, [(m.rule, m.text) for m in flagged[cid].matches])
    assert set(flagged) >= MUST_FLAG, sorted(MUST_FLAG - set(flagged))
    assert rate <= MAX_FALSE_ALARM_RATE, sorted(false_alarms)
    assert len(flagged) / len(real_comments) <= MAX_FLAG_RATE


def test_labelled_safeguarding_and_feeling_safe_rows(
    real_comments: list[dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    rules = default_rules()
    labelled = [
        row
        for row in real_comments
        if row["Safeguarding concerns?"] == "1" or row["Feeling safe"] == "1"
    ]
    flagged = {row["Comment ID"] for row in labelled if rules.check(row["FFT answer"]).urgent}
    with capsys.disabled():
        print(f"\n{len(flagged)} of {len(labelled)} labelled rows flagged: {sorted(flagged)}")
    assert flagged == LABELLED_FLAGGED


# --- the rule file: validation and round trip --------------------------------------------


def test_shipped_rules_round_trip_exactly() -> None:
    data = json.loads(RULES_FILE.read_text("utf-8"))
    assert validate_rules(data) == []
    rules = SafetyRules.from_dict(data)
    assert rules.to_dict() == data
    again = SafetyRules.from_dict(rules.to_dict())
    assert again == rules
    assert SafetyRules.from_json(json.dumps(rules.to_dict())).to_dict() == data


def test_shipped_rules_use_every_category_and_unique_ids() -> None:
    rules = default_rules()
    assert {r.category for r in rules.rules} == set(CATEGORIES)
    assert len({r.id for r in rules.rules}) == len(rules.rules)
    assert rules.version


def test_round_trip_keeps_notes_and_omits_empty_exclusions() -> None:
    data = {
        "version": "1",
        "notes": "n",
        "rules": [
            {
                "id": "a",
                "category": "neglect",
                "description": "d",
                "notes": "why",
                "phrases": {"en": ["left alone"], "ar": ["اهمال"]},
            }
        ],
    }
    assert SafetyRules.from_dict(copy.deepcopy(data)).to_dict() == data


def valid() -> dict[str, Any]:
    return {
        "version": "1",
        "rules": [
            {
                "id": "self-harm",
                "category": "self-harm",
                "description": "d",
                "phrases": {"en": ["hurt myself"]},
            }
        ],
    }


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d["rules"][0].update(category="violence"), "'category' is 'violence'"),
        (lambda d: d["rules"][0].update(id="Self Harm"), "'id' must be lower-case"),
        (lambda d: d["rules"].append(copy.deepcopy(d["rules"][0])), "used by an earlier rule"),
        (lambda d: d["rules"][0].update(description=""), "'description' must say"),
        (lambda d: d["rules"][0].pop("phrases"), "'phrases' is missing"),
        (lambda d: d["rules"][0].update(phrases={"en": []}), "has no phrases"),
        (lambda d: d["rules"][0].update(phrases={"en": "hurt myself"}), "must be a list"),
        (lambda d: d["rules"][0].update(phrases={"English": ["x y"]}), "not a language code"),
        (lambda d: d["rules"][0].update(exclusion={"en": ["x"]}), "unknown key 'exclusion'"),
        (lambda d: d.update(version=""), "'version' must be"),
        (lambda d: d.update(rules=[]), "'rules' must be a non-empty list"),
        (lambda d: d.update(colour="red"), "unknown top-level key 'colour'"),
        (lambda d: d["rules"][0]["phrases"]["en"].append(3), "must be text"),
        (lambda d: d["rules"][0]["phrases"]["en"].append("hurt myself"), "appears twice"),
    ],
)
def test_validation_names_the_rule_and_the_problem(change: Any, expected: str) -> None:
    data = valid()
    change(data)
    problems = validate_rules(data)
    assert any(expected in p for p in problems), problems
    with pytest.raises(RuleError) as err:
        SafetyRules.from_dict(data)
    assert expected in str(err.value)


@pytest.mark.parametrize(
    ("phrase", "expected"),
    [
        ("want to (die", "'(' without a matching ')'"),
        ("want to die)", "')' without a matching '('"),
        ("want ... ", "must come between two words"),
        ("... die", "must come after a word"),
        ("want ~20 die", "between ~1 and ~10"),
        ("want ~3 ~2 die", "two gaps in a row"),
        ("*", "matches any word"),
        ("!!!", "no letters or digits"),
        ("(a|) b", "empty alternative"),
        ("die|", "empty alternative"),
        ("really? ", "at least one word that is not optional"),
        ("re:(unclosed", "not a valid regular expression"),
        ("re:x*", "matches empty text"),
        ("", "empty phrase"),
        ("want(to) die", "put a space"),
    ],
)
def test_bad_phrases_are_explained(phrase: str, expected: str) -> None:
    data = valid()
    data["rules"][0]["phrases"]["en"] = [phrase]
    problems = validate_rules(data)
    assert len(problems) == 1
    assert "rule 1 ('self-harm') phrases.en[0]" in problems[0]
    assert expected in problems[0], problems


def test_every_problem_is_listed_at_once() -> None:
    data = valid()
    data["rules"][0]["category"] = "x"
    data["rules"][0]["phrases"]["en"] = ["(bad", "fine", "also (bad"]
    data["rules"].append({"id": "two", "category": "abuse", "description": "", "phrases": {}})
    with pytest.raises(RuleError) as err:
        SafetyRules.from_dict(data)
    assert len(err.value.problems) == 5, err.value.problems
    assert any(p.startswith("rule 2 ('two')") for p in err.value.problems)


@pytest.mark.parametrize("bad", [None, [], "rules", 3])
def test_non_object_rule_files_are_refused(bad: Any) -> None:
    assert validate_rules(bad)


def test_invalid_json_says_where() -> None:
    with pytest.raises(RuleError, match="line 1, column"):
        SafetyRules.from_json('{"version": "1", "rules": [}')


# --- phrase syntax -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("phrase", "hits", "misses"),
    [
        ("kill myself", ["I'll KILL myself!", "kill,   myself"], ["skill myself", "killmyself"]),
        ("suicid*", ["suicidal", "Suicide"], ["presuicide"]),
        ("*harm*", ["selfharming", "harm"], ["hurt"]),
        ("want ... die", ["want to die", "want to just die", "want so much to die"], []),
        ("want ... die", [], ["want to really really just die"]),
        ("want ~1 die", ["want to die"], ["want to just die"]),
        ("hit|hits me", ["hit me", "hits me"], ["hitting me"]),
        ("(end it all|end my life)", ["end it all", "end my life"], ["end it"]),
        ("(he|she) (will|might)? hurt me", ["he hurt me", "she might hurt me"], ["he may hurt me"]),
        ("really? want to die", ["really want to die", "want to die"], []),
        ("re:\\bdie+\\b", ["dieee"], ["died"]),
        ("dano", ["daño", "DAÑO"], []),
        ("can't cope", ["cant cope", "can’t cope"], ["can t cope"]),
    ],
)
def test_phrase_syntax(phrase: str, hits: list[str], misses: list[str]) -> None:
    rules = rules_with(phrase)
    for text in hits:
        assert rules.check(text).urgent, (phrase, text)
    for text in misses:
        assert not rules.check(text).urgent, (phrase, text)


def test_arabic_words_match_with_attached_prefixes_unless_marked_exact() -> None:
    rules = SafetyRules.from_dict(
        {
            "version": "1",
            "rules": [
                {
                    "id": "a",
                    "category": "neglect",
                    "description": "d",
                    "phrases": {"ar": ["اهمال"]},
                },
                {"id": "b", "category": "abuse", "description": "d", "phrases": {"ar": ["=عنف"]}},
            ],
        }
    )
    assert rules.check("والإهمال").reason == "a"
    assert rules.check("بالاهمال الشديد").reason == "a"
    assert rules.check("عنف").reason == "b"
    assert not rules.check("والعنف").urgent


def test_exclusion_removes_only_matches_it_contains() -> None:
    rules = rules_with("kill*", exclusions=["killing time", "(pain|wait) ~2 killing me"])
    assert not rules.check("killing time at the clinic").urgent
    assert not rules.check("the wait was killing me").urgent
    text = "killing time, then I thought about killing myself"
    result = rules.check(text)
    assert [m.text for m in result.matches] == ["killing"]
    assert result.matches[0].start == text.rindex("killing")


def test_raw_regex_runs_over_normalised_text_on_word_boundaries() -> None:
    rules = rules_with("re:kill(ing)? (my|me)self")
    assert rules.check("I'm Killing MYSELF").urgent
    assert not rules.check("skilling myself").urgent


# --- robustness and speed --------------------------------------------------------------------

_NOISE = st.text(
    alphabet=st.sampled_from(list("abc XYZ,.!?'-\n\t\u064b\u0640éñ٣أإآة")), max_size=60
)


@settings(max_examples=200, deadline=None)
@given(before=_NOISE, after=_NOISE)
def test_a_planted_phrase_is_always_found_at_its_offsets(before: str, after: str) -> None:
    phrase = "KILL myself"
    text = f"{before} {phrase} {after}"
    result = default_rules().check(text)
    assert result.urgent
    for m in result.matches:
        assert 0 <= m.start < m.end <= len(text)
        assert text[m.start : m.end] == m.text
    assert any(m.start == len(before) + 1 and m.text == phrase for m in result.matches)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_check_never_raises_and_offsets_are_in_range(text: str) -> None:
    for m in default_rules().check(text).matches:
        assert 0 <= m.start < m.end <= len(text) and text[m.start : m.end] == m.text


def test_long_texts_without_spaces_stay_fast() -> None:
    rules = default_rules()
    for text in ("a" * 50_000, "ا" * 50_000, ("kill " * 10_000), "suicid" * 5_000):
        start = time.perf_counter()
        rules.check(text)
        assert time.perf_counter() - start < 2.0


def test_typical_comment_is_checked_quickly() -> None:
    rules = default_rules()
    comments = [
        "The nurse on the ward was lovely but the wait in A&E was far too long for my mum.",
        "La enfermera fue muy amable pero la espera en urgencias fue demasiado larga.",
        "كانت الممرضة لطيفة جدا لكن الانتظار في الطوارئ كان طويلا جدا",
    ]
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(100):
            for c in comments:
                rules.check(c)
        best = min(best, (time.perf_counter() - start) / 300)
    # Measured about 0.1 ms; the bound only catches a pathological slowdown on a busy machine.
    assert best < 0.002
