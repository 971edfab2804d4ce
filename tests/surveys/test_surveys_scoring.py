"""The scoring engine: published rules, properties over random answers, rules-file checks."""

from __future__ import annotations

import random
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from survey_strategies import INSTRUMENT_IDS, answers_for, given_answer, option_answer, value_of

import surveys
from surveys.scoring import Rules, RulesError, round_half_up

PHQ9 = surveys.get("phq-9")
GAD7 = surveys.get("gad-7")
FFT = surveys.get("fft")
PHQ9_SCORED = [f"phq9-{n}" for n in range(1, 10)]
GAD7_SCORED = [f"gad7-{n}" for n in range(1, 8)]

instrument_ids = st.sampled_from(INSTRUMENT_IDS)


def spread(total: int, link_ids: list[str], top: int = 3) -> dict[str, int]:
    """Answers (each 0..top) adding up to ``total``, spread over the items."""
    answers = dict.fromkeys(link_ids, 0)
    for n in range(total):
        answers[link_ids[n % len(link_ids)]] += 1
    assert max(answers.values()) <= top
    return answers


def half_up(value: Fraction) -> int:
    """Independent round-half-up, via Decimal, to check the engine against."""
    exact = Decimal(value.numerator) / Decimal(value.denominator)
    return int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))


# --- published values --------------------------------------------------------------------


def test_phq9_all_threes_is_27_severe() -> None:
    score = PHQ9.score(dict.fromkeys(PHQ9_SCORED, 3))
    assert (score.total, score.band) == (27, "severe")
    assert score.complete and score.missing == []
    assert score.alerts == ["self-harm"]


def test_phq9_all_zeros_is_0_minimal_without_alerts() -> None:
    score = PHQ9.score(dict.fromkeys(PHQ9_SCORED, 0))
    assert (score.total, score.band, score.alerts) == (0, "minimal", [])


@pytest.mark.parametrize(
    ("total", "band"),
    [
        (4, "minimal"),
        (5, "mild"),
        (9, "mild"),
        (10, "moderate"),
        (14, "moderate"),
        (15, "moderately-severe"),
        (19, "moderately-severe"),
        (20, "severe"),
    ],
)
def test_phq9_band_boundaries(total: int, band: str) -> None:
    score = PHQ9.score(spread(total, PHQ9_SCORED))
    assert (score.total, score.band) == (total, band)


@pytest.mark.parametrize(
    ("total", "band"),
    [
        (0, "minimal"),
        (4, "minimal"),
        (5, "mild"),
        (9, "mild"),
        (10, "moderate"),
        (14, "moderate"),
        (15, "severe"),
        (21, "severe"),
    ],
)
def test_gad7_band_boundaries(total: int, band: str) -> None:
    score = GAD7.score(spread(total, GAD7_SCORED))
    assert (score.total, score.band) == (total, band)


@pytest.mark.parametrize("instrument_id", ["phq-2", "gad-2"])
@pytest.mark.parametrize(
    ("first", "second", "band"),
    [
        (0, 0, "negative"),
        (1, 1, "negative"),
        (2, 0, "negative"),
        (2, 1, "positive"),
        (3, 3, "positive"),
    ],
)
def test_two_item_screens_are_positive_at_3(
    instrument_id: str, first: int, second: int, band: str
) -> None:
    instrument = surveys.get(instrument_id)
    a, b = (i.link_id for i in instrument.items)
    score = instrument.score({a: first, b: second})
    assert (score.total, score.band) == (first + second, band)


@pytest.mark.parametrize("instrument_id", ["phq-2", "gad-2"])
def test_two_item_screens_are_not_prorated(instrument_id: str) -> None:
    instrument = surveys.get(instrument_id)
    score = instrument.score({instrument.items[0].link_id: 3})
    assert (score.total, score.band, score.complete) == (None, None, False)
    assert score.missing == [instrument.items[1].link_id]


def test_phq9_one_missing_item_rounds_half_up() -> None:
    # 8 answered items adding to 4: mean 0.5, x 9 = 4.5 -> 5 (mild). Banker's rounding gives 4.
    answers = spread(4, PHQ9_SCORED[:8])
    score = PHQ9.score(answers)
    assert (score.total, score.band) == (5, "mild")
    assert score.missing == ["phq9-9"]
    assert not score.complete


def test_phq9_two_missing_items_are_replaced_by_the_mean() -> None:
    answers = {"phq9-1": 1, "phq9-2": 1, "phq9-3": 1, "phq9-4": 1, "phq9-5": 1, "phq9-6": 1}
    answers["phq9-7"] = 2
    score = PHQ9.score(answers)  # 8 / 7 * 9 = 10.29 -> 10
    assert (score.total, score.band) == (10, "moderate")
    assert score.missing == ["phq9-8", "phq9-9"]


def test_phq9_three_missing_items_are_unscoreable() -> None:
    score = PHQ9.score(dict.fromkeys(PHQ9_SCORED[:6], 3))
    assert (score.total, score.band) == (None, None)
    assert score.missing == ["phq9-7", "phq9-8", "phq9-9"]


def test_phq9_self_harm_alert_even_when_unscoreable() -> None:
    score = PHQ9.score({"phq9-9": 1})
    assert score.alerts == ["self-harm"]
    assert (score.total, score.band, score.complete) == (None, None, False)
    assert score.missing == PHQ9_SCORED[:8]


def test_phq9_difficulty_item_is_neither_scored_nor_required() -> None:
    answers = dict.fromkeys(PHQ9_SCORED, 1)
    without = PHQ9.score(answers)
    with_difficulty = PHQ9.score({**answers, "phq9-10": 3})
    assert without == with_difficulty
    assert without.complete and without.total == 9


def test_gad7_prorates_one_missing_item_only() -> None:
    one_missing = GAD7.score(dict.fromkeys(GAD7_SCORED[:6], 2))
    assert (one_missing.total, one_missing.band) == (14, "moderate")
    two_missing = GAD7.score(dict.fromkeys(GAD7_SCORED[:5], 2))
    assert two_missing.total is None and two_missing.band is None


@pytest.mark.parametrize(
    ("rating", "band"),
    [
        (1, "positive"),
        ("good", "positive"),
        (3, "neutral"),
        ("4", "negative"),
        ("very-poor", "negative"),
        (6, "dont-know"),
    ],
)
def test_fft_category(rating: int | str, band: str) -> None:
    score = FFT.score({"fft-1": rating, "fft-2": "because"})
    assert (score.total, score.band, score.complete, score.alerts) == (None, band, True, [])


def test_fft_unanswered() -> None:
    score = FFT.score({"fft-2": "no rating"})
    assert (score.total, score.band, score.complete) == (None, None, False)
    assert score.missing == ["fft-1"]


def test_care_experience_total_and_bands() -> None:
    ce = surveys.get("care-experience")
    ids = [i.link_id for i in ce.items if i.scored]
    assert ce.score(dict.fromkeys(ids, "strongly-agree")).band == "good"
    assert ce.score(dict.fromkeys(ids, 4)).total == 24
    assert ce.score(dict.fromkeys(ids, 3)).band == "mixed"
    assert ce.score(dict.fromkeys(ids, 1)).total == 6
    assert ce.score(dict.fromkeys(ids, 1)).band == "poor"
    assert ce.score({**dict.fromkeys(ids, 5), "ce-7": ""}).complete


# --- FFT percentage positive ------------------------------------------------------------


def test_fft_percent_positive_example() -> None:
    ratings = [1] * 60 + [2] * 25 + [3] * 5 + [4] * 4 + [5] * 3 + [6] * 3
    assert surveys.fft_percent_positive(ratings) == 85.0


def test_fft_percent_positive_counts_dont_know_but_not_unanswered() -> None:
    assert surveys.fft_percent_positive(["very-good", "6", None, None]) == 50.0
    assert surveys.fft_percent_positive(iter([2, 2, 2, 6])) == 75.0


def test_fft_percent_positive_without_responses_is_none() -> None:
    assert surveys.fft_percent_positive([]) is None
    assert surveys.fft_percent_positive([None, None]) is None


def test_fft_percent_positive_rejects_non_ratings() -> None:
    with pytest.raises(surveys.InvalidAnswer) as raised:
        surveys.fft_percent_positive([1, 7])
    assert raised.value.link_id == "fft-1"


@given(st.lists(st.one_of(st.none(), st.integers(1, 6))))
def test_fft_percent_positive_matches_the_definition(ratings: list[int | None]) -> None:
    responses = [r for r in ratings if r is not None]
    expected = 100 * sum(r in (1, 2) for r in responses) / len(responses) if responses else None
    assert surveys.fft_percent_positive(ratings) == expected


# --- answers: validation ----------------------------------------------------------------


def test_invalid_value_message_names_the_item() -> None:
    with pytest.raises(surveys.InvalidAnswer) as raised:
        PHQ9.score({"phq9-3": 7})
    assert str(raised.value) == "phq9-3: 7 is not one of the options (0, 1, 2, 3)"
    assert raised.value.link_id == "phq9-3"
    assert isinstance(raised.value, ValueError)


def test_unknown_link_id_is_invalid() -> None:
    with pytest.raises(surveys.InvalidAnswer) as raised:
        PHQ9.score({"phq9-11": 1})
    assert raised.value.link_id == "phq9-11"


def test_text_items_take_text_only() -> None:
    with pytest.raises(surveys.InvalidAnswer) as raised:
        FFT.score({"fft-1": 1, "fft-2": 5})
    assert raised.value.link_id == "fft-2"
    with pytest.raises(surveys.InvalidAnswer):
        FFT.item("fft-2").option("anything")


@pytest.mark.parametrize("value", [2, 2.0, "2", " 2 ", "2.0", "LA6570-1"])
def test_option_accepts_value_text_or_code(value: int | float | str) -> None:
    option = PHQ9.item("phq9-1").option(value)
    assert (option.code, option.value, option.display) == ("LA6570-1", 2, "More than half the days")


@pytest.mark.parametrize("value", [7, -1, 1.5, "7", "two", "LA6572-7", True, float("nan"), "inf"])
def test_option_rejects_anything_else(value: int | float | str) -> None:
    with pytest.raises(surveys.InvalidAnswer) as raised:
        PHQ9.item("phq9-1").option(value)
    assert raised.value.link_id == "phq9-1"


def test_unknown_item_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        PHQ9.item("phq9-0")


# --- properties -------------------------------------------------------------------------


@st.composite
def instrument_and_answers(
    draw: st.DrawFn, allow_missing: bool = True
) -> tuple[surveys.Instrument, dict[str, int | float | str | None]]:
    instrument = surveys.get(draw(instrument_ids))
    return instrument, draw(answers_for(instrument, allow_missing=allow_missing))


def total_items(instrument: surveys.Instrument) -> list[str]:
    return list(instrument._rules.total_items)


def bounds(instrument: surveys.Instrument) -> tuple[int | float, int | float]:
    items = [instrument.item(i) for i in total_items(instrument)]
    low = sum(min(o.value for o in i.options) for i in items)
    high = sum(max(o.value for o in i.options) for i in items)
    return low, high


@given(instrument_and_answers())
def test_total_is_within_range(case: tuple[surveys.Instrument, dict]) -> None:
    instrument, answers = case
    score = instrument.score(answers)
    if score.total is not None:
        low, high = bounds(instrument)
        assert low <= score.total <= high


@given(instrument_and_answers(allow_missing=False))
def test_total_is_the_sum_when_complete(case: tuple[surveys.Instrument, dict]) -> None:
    instrument, answers = case
    score = instrument.score(answers)
    assert score.complete and score.missing == []
    if total_items(instrument):
        expected = sum(value_of(instrument, i, answers[i]) or 0 for i in total_items(instrument))
        assert score.total == expected
        assert type(score.total) is int
    else:
        assert score.total is None


@given(instrument_and_answers())
def test_band_matches_the_range_it_belongs_to(case: tuple[surveys.Instrument, dict]) -> None:
    instrument, answers = case
    score = instrument.score(answers)
    rules = instrument._rules
    if rules.band_item is not None:
        basis = value_of(instrument, rules.band_item, answers.get(rules.band_item))
    else:
        basis = score.total
    if basis is None:
        assert score.band is None
    else:
        (band,) = [b for b in rules.bands if b.min <= basis <= b.max]
        assert score.band == band.id


@given(instrument_and_answers())
def test_missing_and_complete_follow_the_answers(case: tuple[surveys.Instrument, dict]) -> None:
    instrument, answers = case
    score = instrument.score(answers)

    def unanswered(link_id: str) -> bool:
        value = answers.get(link_id)
        return value is None or (isinstance(value, str) and not value.strip())

    items = instrument.items
    assert score.missing == [i.link_id for i in items if i.scored and unanswered(i.link_id)]
    assert score.complete == all(not unanswered(i.link_id) for i in items if i.required)


@given(answers_for(PHQ9))
def test_phq9_prorating(answers: dict[str, int | float | str | None]) -> None:
    values = [value_of(PHQ9, i, answers.get(i)) for i in PHQ9_SCORED]
    answered = [v for v in values if v is not None]
    missing = 9 - len(answered)
    score = PHQ9.score(answers)
    if missing == 0:
        assert score.total == sum(answered)
    elif missing <= 2:
        assert score.total == half_up(Fraction(sum(answered), len(answered)) * 9)
    else:
        assert score.total is None and score.band is None


@given(answers_for(GAD7))
def test_gad7_prorating(answers: dict[str, int | float | str | None]) -> None:
    values = [value_of(GAD7, i, answers.get(i)) for i in GAD7_SCORED]
    answered = [v for v in values if v is not None]
    score = GAD7.score(answers)
    if len(answered) == 7:
        assert score.total == sum(answered)
    elif len(answered) == 6:
        assert score.total == half_up(Fraction(sum(answered), 6) * 7)
    else:
        assert score.total is None


@given(answers_for(PHQ9), st.sampled_from(PHQ9.item("phq9-9").options[1:]).flatmap(option_answer))
def test_phq9_item9_above_zero_always_alerts(answers: dict, item9: int | float | str) -> None:
    assert "self-harm" in PHQ9.score({**answers, "phq9-9": item9}).alerts


@given(answers_for(PHQ9))
def test_phq9_alerts_only_on_item9(answers: dict[str, int | float | str | None]) -> None:
    fired = value_of(PHQ9, "phq9-9", answers.get("phq9-9")) not in (None, 0)
    assert PHQ9.score(answers).alerts == (["self-harm"] if fired else [])


@given(st.data())
def test_invalid_values_raise_naming_the_item(data: st.DataObject) -> None:
    instrument = surveys.get(data.draw(instrument_ids))
    answers = data.draw(answers_for(instrument))
    item = data.draw(st.sampled_from([i for i in instrument.items if i.type == "choice"]))
    valid = {o.value for o in item.options} | {o.code for o in item.options}
    bad = data.draw(
        st.one_of(
            st.integers(-100, 100).filter(lambda v: v not in valid),
            st.floats(allow_nan=False).filter(lambda v: v not in valid),
            st.text(max_size=10).filter(
                lambda s: s.strip() and s not in valid and s.strip() not in {str(v) for v in valid}
            ),
        )
    )
    try:
        if float(bad) in valid:  # e.g. "1e0" or "01" still spell a valid value
            return
    except ValueError:
        pass
    with pytest.raises(surveys.InvalidAnswer) as raised:
        instrument.score({**answers, item.link_id: bad})
    assert raised.value.link_id == item.link_id
    assert str(raised.value).startswith(f"{item.link_id}: ")


@given(st.data())
def test_codes_and_values_are_interchangeable(data: st.DataObject) -> None:
    instrument = surveys.get(data.draw(instrument_ids))
    answers = data.draw(answers_for(instrument))

    def as_values(a: dict) -> dict:
        return {k: value_of(instrument, k, v) if instrument.item(k).type == "choice" else v
                for k, v in a.items()}  # fmt: skip

    def as_codes(a: dict) -> dict:
        return {
            k: (instrument.item(k).option(v).code if v not in (None, "") else v)
            if instrument.item(k).type == "choice"
            else v
            for k, v in a.items()
        }

    assert instrument.score(as_values(answers)) == instrument.score(as_codes(answers))
    assert instrument.score(answers) == instrument.score(as_codes(answers))


@given(instrument_and_answers(), st.randoms(use_true_random=False))
def test_score_is_independent_of_dict_order(
    case: tuple[surveys.Instrument, dict], rnd: random.Random
) -> None:
    instrument, answers = case
    shuffled = list(answers.items())
    rnd.shuffle(shuffled)
    assert instrument.score(dict(shuffled)) == instrument.score(answers)
    assert instrument.score(dict(reversed(answers.items()))) == instrument.score(answers)


@given(st.data())
def test_free_text_never_changes_the_score(data: st.DataObject) -> None:
    instrument = surveys.get(data.draw(st.sampled_from(["fft", "care-experience"])))
    answers = data.draw(answers_for(instrument))
    text_item = next(i for i in instrument.items if i.type == "text")
    other = data.draw(given_answer(text_item))
    before = instrument.score({**answers, text_item.link_id: None})
    assert instrument.score({**answers, text_item.link_id: other}) == before


@given(st.fractions(min_value=0, max_value=100))
def test_round_half_up(value: Fraction) -> None:
    assume(value.denominator < 10**6)
    assert round_half_up(value) == half_up(value)


# --- rules files ------------------------------------------------------------------------


def rules(**overrides: object) -> dict:
    base: dict = {
        "total": {"items": ["a", "b"], "method": "sum"},
        "missing": {"max_missing": 0},
        "bands": [
            {"id": "low", "min": 0, "max": 2, "label": {"en": "Low"}},
            {"id": "high", "min": 3, "max": 6, "label": {"en": "High"}},
        ],
        "alerts": [],
    }
    base.update(overrides)
    return base


OPTIONS = {"a": [0, 1, 2, 3], "b": [0, 1, 2, 3]}


def test_rules_accept_a_well_formed_file() -> None:
    Rules.from_json(rules()).check(OPTIONS)


@pytest.mark.parametrize(
    "bad",
    [
        {"total": {"items": ["a", "b"], "method": "mean"}},
        {"total": None},
        {"missing": {"max_missing": 1}},
        {"missing": {"max_missing": 2, "method": "prorate-mean-rounded"}},
        {"bands": []},
        {"bands": [{"id": "x", "min": 3, "max": 1, "label": {"en": "X"}}]},
        {"bands": [{"id": "x", "min": 0, "max": 6, "label": {"es": "X"}}]},
        {"alerts": [{"id": "x", "item": "a"}]},
        {"colour": "red"},
    ],
)
def test_rules_reject_malformed_files(bad: dict) -> None:
    with pytest.raises(RulesError):
        Rules.from_json(rules(**bad))


@pytest.mark.parametrize(
    "bands",
    [
        [{"id": "low", "min": 0, "max": 2, "label": {"en": "L"}},
         {"id": "high", "min": 4, "max": 6, "label": {"en": "H"}}],
        [{"id": "low", "min": 0, "max": 3, "label": {"en": "L"}},
         {"id": "high", "min": 3, "max": 6, "label": {"en": "H"}}],
        [{"id": "low", "min": 0, "max": 5, "label": {"en": "L"}}],
    ],
)  # fmt: skip
def test_bands_must_cover_every_total_exactly_once(bands: list[dict]) -> None:
    with pytest.raises(RulesError, match="band"):
        Rules.from_json(rules(bands=bands)).check(OPTIONS)


def test_rules_must_refer_to_choice_items() -> None:
    with pytest.raises(RulesError, match="c"):
        Rules.from_json(rules(alerts=[{"id": "x", "item": "c", "above": 0}])).check(OPTIONS)
