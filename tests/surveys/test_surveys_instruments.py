"""The built-in instruments: registry, metadata, codes, translations and FHIR validity."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.questionnaire import Questionnaire
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse
from hypothesis import given, settings
from hypothesis import strategies as st
from survey_strategies import INSTRUMENT_IDS, answers_for

import surveys
from surveys import fhir

PFIZER_COPYRIGHT = (
    "Developed by Drs. Robert L. Spitzer, Janet B.W. Williams, Kurt Kroenke and colleagues, "
    "with an educational grant from Pfizer Inc. No permission required to reproduce, "
    "translate, display or distribute."
)
FREQUENCY_CODES = ["LA6568-5", "LA6569-3", "LA6570-1", "LA6571-9"]
AUTHORED = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)


def test_all_lists_exactly_the_built_in_instruments_sorted_by_id() -> None:
    assert [i.id for i in surveys.all()] == sorted(INSTRUMENT_IDS)


def test_instruments_are_loaded_once() -> None:
    assert surveys.get("phq-9") is surveys.get("phq-9")
    assert surveys.all()[0] is surveys.all()[0]


def test_unknown_instrument_is_a_key_error() -> None:
    with pytest.raises(surveys.UnknownInstrument):
        surveys.get("collaborate")
    with pytest.raises(KeyError):
        surveys.get("promis-29")


def test_languages() -> None:
    assert surveys.LANGUAGES == ("en", "es", "ar")


def test_surveys_imports_nothing_from_flask_or_engage() -> None:
    root = Path(surveys.__file__).resolve().parents[1]
    code = (
        "import sys, surveys; surveys.all(); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('flask', 'engage')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_metadata(instrument: surveys.Instrument) -> None:
    q = instrument.to_fhir()
    assert q["id"] == instrument.id
    assert q["status"] == "active"
    assert q["language"] == "en"
    assert instrument.version == q["version"] == "1.0.0"
    assert instrument.url == q["url"]
    assert instrument.url.endswith(f"/Questionnaire/{instrument.id}")
    assert instrument.title and instrument.publisher and instrument.copyright
    assert instrument.description_in("en")


@pytest.mark.parametrize("instrument_id", ["phq-9", "phq-2", "gad-7", "gad-2"])
def test_pfizer_instruments_carry_the_pfizer_notice(instrument_id: str) -> None:
    instrument = surveys.get(instrument_id)
    assert PFIZER_COPYRIGHT in instrument.copyright
    assert instrument.publisher == "Pfizer Inc."


def test_phq9_uses_loinc_codes() -> None:
    phq9 = surveys.get("phq-9")
    assert phq9.code == "44249-1"
    assert [i.code for i in phq9.items] == [
        "44250-9", "44255-8", "44259-0", "44254-1", "44251-7",
        "44258-2", "44252-5", "44253-3", "44260-8", "69722-7",
    ]  # fmt: skip
    for item in phq9.items[:9]:
        assert [o.code for o in item.options] == FREQUENCY_CODES
        assert [o.value for o in item.options] == [0, 1, 2, 3]
    assert [o.code for o in phq9.item("phq9-10").options] == [
        "LA6572-7", "LA6573-5", "LA6575-0", "LA6574-3",
    ]  # fmt: skip


def test_gad7_phq2_gad2_use_loinc_codes() -> None:
    gad7 = surveys.get("gad-7")
    assert gad7.code == "69737-5"
    assert [i.code for i in gad7.items] == [
        "69725-0", "68509-9", "69733-4", "69734-2", "69735-9", "69689-8", "69736-7",
    ]  # fmt: skip
    assert surveys.get("phq-2").code == "55757-9"
    assert [i.code for i in surveys.get("phq-2").items] == ["44250-9", "44255-8"]
    assert [i.code for i in surveys.get("gad-2").items] == ["69725-0", "68509-9"]
    for instrument_id in ("gad-7", "phq-2", "gad-2"):
        for item in surveys.get(instrument_id).items:
            assert [o.code for o in item.options] == FREQUENCY_CODES


def test_link_ids() -> None:
    def ids(instrument_id: str) -> list[str]:
        return [i.link_id for i in surveys.get(instrument_id).items]

    assert ids("phq-9") == [f"phq9-{n}" for n in range(1, 11)]
    assert ids("phq-2") == ["phq2-1", "phq2-2"]
    assert ids("gad-7") == [f"gad7-{n}" for n in range(1, 8)]
    assert ids("gad-2") == ["gad2-1", "gad2-2"]
    assert ids("fft") == ["fft-1", "fft-2"]
    assert ids("care-experience")[:6] == [f"ce-{n}" for n in range(1, 7)]


def test_fft_wording_values_and_local_codes() -> None:
    fft = surveys.get("fft")
    rating, why = fft.items
    assert fft.code is None and rating.code is None
    assert rating.text == "Overall, how was your experience of our service?"
    assert [(o.value, o.display) for o in rating.options] == [
        (1, "Very good"),
        (2, "Good"),
        (3, "Neither good nor poor"),
        (4, "Poor"),
        (5, "Very poor"),
        (6, "Don't know"),
    ]
    codings = [o["valueCoding"] for o in fft.to_fhir()["item"][0]["answerOption"]]
    assert {c["system"] for c in codings} == {"https://engage.example.org/fhir/CodeSystem/fft"}
    assert why.text == "Please can you tell us why you gave your answer?"
    assert (why.type, why.required, why.options) == ("text", False, [])


def test_care_experience_shape() -> None:
    ce = surveys.get("care-experience")
    choices = [i for i in ce.items if i.type == "choice"]
    assert 5 <= len(choices) <= 8
    assert all(len(i.options) == 5 for i in choices)
    assert ce.items[-1].type == "text"
    assert ce.items[-1].text == "Is there anything we could do better?"


def test_required_flags(instrument: surveys.Instrument) -> None:
    for item in instrument.items:
        if item.scored:
            assert item.type == "choice" and item.required, item.link_id
        if item.type == "text":
            assert not item.required and not item.scored, item.link_id
    assert not surveys.get("phq-9").item("phq9-10").scored


def test_options_are_ordinal_values_on_the_coding(instrument: surveys.Instrument) -> None:
    for raw in fhir.answerable_items(instrument.to_fhir()["item"]):
        for option in raw.get("answerOption", []):
            coding = option["valueCoding"]
            assert {"system", "code", "display"} <= coding.keys()
            assert fhir.ordinal_value(coding) is not None


def test_questionnaire_validates_as_fhir_r4(instrument: surveys.Instrument) -> None:
    model = Questionnaire.model_validate(instrument.to_fhir())
    assert model.status == "active"
    assert len(list(fhir.answerable_items(instrument.to_fhir()["item"]))) == len(instrument.items)


def test_to_fhir_returns_a_copy(instrument: surveys.Instrument) -> None:
    q = instrument.to_fhir()
    q["title"] = "changed"
    q["item"].clear()
    assert instrument.to_fhir()["title"] == instrument.title
    assert instrument.to_fhir()["item"]


def test_items_list_cannot_change_the_instrument(instrument: surveys.Instrument) -> None:
    instrument.items.clear()
    assert instrument.items


# --- translations -----------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["es", "ar"])
def test_every_text_is_translated(instrument: surveys.Instrument, lang: str) -> None:
    q = instrument.to_fhir()
    untranslated: list[str] = []

    def check(element: Mapping[str, Any], field: str, where: str) -> None:
        if not fhir.translations(element.get(f"_{field}")).get(lang, "").strip():
            untranslated.append(f"{where}.{field}")

    check(q, "title", instrument.id)
    check(q, "description", instrument.id)
    for raw in fhir.answerable_items(q["item"]):
        check(raw, "text", raw["linkId"])
        for option in raw.get("answerOption", []):
            coding = option["valueCoding"]
            check(coding, "display", f"{raw['linkId']}/{coding['code']}")
    assert untranslated == []


@pytest.mark.parametrize("lang", ["es", "ar"])
def test_translations_reach_the_api(instrument: surveys.Instrument, lang: str) -> None:
    assert instrument.title_in(lang) != instrument.title
    assert instrument.description_in(lang) not in ("", instrument.description_in("en"))
    for item in instrument.items:
        assert item.text_in(lang) != item.text
        for option in item.options:
            assert option.display_in(lang) != option.display


def test_arabic_is_in_arabic_script(instrument: surveys.Instrument) -> None:
    def arabic(text: str) -> bool:
        return any("\u0600" <= ch <= "\u06ff" for ch in text)

    assert arabic(instrument.title_in("ar"))
    assert all(arabic(i.text_in("ar")) for i in instrument.items)


def test_unknown_language_falls_back_to_english() -> None:
    phq9 = surveys.get("phq-9")
    assert phq9.title_in("fr") == phq9.title
    item = phq9.item("phq9-1")
    assert item.text_in("fr") == item.text == "Little interest or pleasure in doing things"
    assert item.options[0].display_in("de") == "Not at all"


def test_known_pfizer_wording() -> None:
    phq9 = surveys.get("phq-9")
    assert phq9.description_in("en") == (
        "Over the last 2 weeks, how often have you been bothered by any of the following problems?"
    )
    assert phq9.item("phq9-1").text_in("es") == "Poco interés o placer en hacer cosas"
    assert [o.display_in("es") for o in phq9.item("phq9-1").options] == [
        "Ningún día", "Varios días", "Más de la mitad de los días", "Casi todos los días",
    ]  # fmt: skip


@pytest.mark.parametrize("lang", ["en", "es", "ar"])
def test_band_labels_in_every_language(instrument: surveys.Instrument, lang: str) -> None:
    for band in instrument._rules.bands:
        label = instrument.band_label(band.id, lang)
        assert label
        if lang != "en":
            assert label != instrument.band_label(band.id)


def test_band_label_examples() -> None:
    phq9 = surveys.get("phq-9")
    assert phq9.band_label("moderately-severe") == "Moderately severe"
    assert phq9.band_label("severe", "es") == "Grave"
    with pytest.raises(KeyError):
        phq9.band_label("catastrophic")


# --- QuestionnaireResponse --------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(data=st.data(), lang=st.sampled_from(surveys.LANGUAGES))
def test_questionnaire_response_validates(data: st.DataObject, lang: str) -> None:
    instrument = surveys.get(data.draw(st.sampled_from(INSTRUMENT_IDS)))
    answers = data.draw(answers_for(instrument))
    qr = instrument.questionnaire_response(
        answers, authored=AUTHORED, subject="Patient/123", language=lang
    )
    model = QuestionnaireResponse.model_validate(qr)
    assert model.status == "completed"
    assert qr["questionnaire"] == f"{instrument.url}|{instrument.version}"
    assert qr["language"] == lang
    answered = [
        link_id for link_id, value in instrument.resolve(answers).items() if value is not None
    ]
    assert [i["linkId"] for i in qr.get("item", [])] == answered
    for entry in qr.get("item", []):
        item = instrument.item(entry["linkId"])
        assert entry["text"] == item.text_in(lang)
        (answer,) = entry["answer"]
        if item.type == "choice":
            coding = answer["valueCoding"]
            option = item.option(coding["code"])
            assert coding == {
                "system": option.system,
                "code": option.code,
                "display": option.display_in(lang),
            }
        else:
            assert answer == {"valueString": answers[entry["linkId"]]}


def test_questionnaire_response_example() -> None:
    phq9 = surveys.get("phq-9")
    qr = phq9.questionnaire_response(
        {"phq9-1": 2, "phq9-2": "LA6571-9", "phq9-3": None},
        authored=datetime(2024, 5, 1, 10, 0, tzinfo=timezone(timedelta(hours=1))),
        subject="Patient/p1",
    )
    QuestionnaireResponse.model_validate(qr)
    assert qr["authored"] == "2024-05-01T10:00:00+01:00"
    assert qr["subject"] == {"reference": "Patient/p1"}
    assert qr["item"][1] == {
        "linkId": "phq9-2",
        "text": "Feeling down, depressed, or hopeless",
        "answer": [
            {
                "valueCoding": {
                    "system": "http://loinc.org",
                    "code": "LA6571-9",
                    "display": "Nearly every day",
                }
            }
        ],
    }
    assert len(qr["item"]) == 2


def test_questionnaire_response_free_text() -> None:
    qr = surveys.get("fft").questionnaire_response(
        {"fft-1": 1, "fft-2": "Kind staff"}, authored=AUTHORED, language="ar"
    )
    QuestionnaireResponse.model_validate(qr)
    assert qr["item"][1]["answer"] == [{"valueString": "Kind staff"}]
    assert qr["item"][0]["answer"][0]["valueCoding"]["display"] == "جيدة جداً"
    assert "subject" not in qr


@pytest.mark.parametrize("subject", ["Patient/7", None])
def test_questionnaire_response_answered_on_someones_behalf(subject: str | None) -> None:
    qr = surveys.get("gad-2").questionnaire_response(
        {"gad2-1": 0, "gad2-2": 1},
        authored=AUTHORED,
        subject=subject,
        source_relationship="carer",
    )
    QuestionnaireResponse.model_validate(qr)
    if subject:
        (person,) = qr["contained"]
        assert person["resourceType"] == "RelatedPerson"
        assert person["relationship"] == [{"text": "carer"}]
        assert qr["source"] == {"reference": f"#{person['id']}"}
    else:
        assert qr["source"]["display"] == "carer"


def test_questionnaire_response_needs_an_aware_datetime_and_a_known_language() -> None:
    phq2 = surveys.get("phq-2")
    with pytest.raises(ValueError, match="timezone"):
        phq2.questionnaire_response({}, authored=datetime(2024, 5, 1, 9, 0))
    with pytest.raises(ValueError, match="language"):
        phq2.questionnaire_response({}, authored=AUTHORED, language="fr")


def test_questionnaire_response_rejects_invalid_answers() -> None:
    with pytest.raises(surveys.InvalidAnswer) as raised:
        surveys.get("phq-2").questionnaire_response({"phq2-1": 9}, authored=AUTHORED)
    assert raised.value.link_id == "phq2-1"
