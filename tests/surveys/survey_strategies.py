"""Hypothesis strategies for survey answers (imported by the surveys tests)."""

from __future__ import annotations

from hypothesis import strategies as st

import surveys

INSTRUMENT_IDS = ("care-experience", "fft", "gad-2", "gad-7", "phq-2", "phq-9")


def option_answer(option: surveys.Option) -> st.SearchStrategy[int | float | str]:
    """Any of the interchangeable ways to give one option: value, code or value as text."""
    return st.sampled_from([option.value, option.code, str(option.value)])


def given_answer(item: surveys.Item) -> st.SearchStrategy[int | float | str]:
    """An answer to one item: free text, or one of its options in any accepted form."""
    if item.type == "text":
        return st.text(min_size=1, max_size=40).filter(str.strip)
    return st.sampled_from(item.options).flatmap(option_answer)


def answers_for(
    instrument: surveys.Instrument, *, allow_missing: bool = True
) -> st.SearchStrategy[dict[str, int | float | str | None]]:
    """Valid answer dicts; an unanswered item is left out, or given as None or ""."""
    link_ids = [item.link_id for item in instrument.items]

    @st.composite
    def build(draw: st.DrawFn) -> dict[str, int | float | str | None]:
        missing = draw(st.sets(st.sampled_from(link_ids))) if allow_missing else set()
        answers: dict[str, int | float | str | None] = {}
        for item in instrument.items:
            if item.link_id not in missing:
                answers[item.link_id] = draw(given_answer(item))
                continue
            blank = draw(st.sampled_from(["absent", "none", "empty"]))
            if blank != "absent":
                answers[item.link_id] = None if blank == "none" else ""
        return answers

    return build()


def value_of(instrument: surveys.Instrument, link_id: str, answer: object) -> int | float | None:
    """The numeric value an answer stands for (None when unanswered)."""
    if answer is None or answer == "":
        return None
    assert isinstance(answer, int | float | str)
    return instrument.item(link_id).option(answer).value
