"""FHIR R4 helpers: reading Questionnaire JSON and building QuestionnaireResponse JSON.

Works on plain JSON dicts; fhir.resources is only needed by the tests that validate them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

TRANSLATION_URL = "http://hl7.org/fhir/StructureDefinition/translation"
ORDINAL_VALUE_URL = "http://hl7.org/fhir/StructureDefinition/ordinalValue"
LOINC_SYSTEM = "http://loinc.org"

#: Questionnaire item types that carry no answer.
NON_ANSWERABLE_TYPES = ("group", "display")

JSON = dict[str, Any]


def translations(element: Mapping[str, Any] | None) -> dict[str, str]:
    """Read the standard translation extensions of a primitive's ``_field`` element.

    ``element`` is the value of e.g. ``questionnaire["_title"]``; returns ``{lang: content}``.
    """
    found: dict[str, str] = {}
    for ext in (element or {}).get("extension", []):
        if ext.get("url") != TRANSLATION_URL:
            continue
        parts = {sub.get("url"): sub for sub in ext.get("extension", [])}
        lang = parts.get("lang", {}).get("valueCode")
        content = parts.get("content", {}).get("valueString")
        if isinstance(lang, str) and isinstance(content, str):
            found[lang] = content
    return found


def localized(resource: Mapping[str, Any], field_name: str) -> dict[str, str]:
    """All languages of a translatable field; English (the resource language) under ``"en"``."""
    values = translations(resource.get(f"_{field_name}"))
    english = resource.get(field_name)
    if isinstance(english, str):
        values["en"] = english
    return values


def ordinal_value(coding: Mapping[str, Any]) -> int | float | None:
    """The ``ordinalValue`` extension of a Coding, as int when whole."""
    for ext in coding.get("extension", []):
        if ext.get("url") == ORDINAL_VALUE_URL:
            value = ext.get("valueDecimal")
            if isinstance(value, bool) or not isinstance(value, int | float):
                return None
            return int(value) if float(value).is_integer() else value
    return None


def answerable_items(items: Sequence[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
    """Depth-first walk of Questionnaire items, skipping groups and display items themselves."""
    for item in items:
        if item.get("type") not in NON_ANSWERABLE_TYPES:
            yield item
        yield from answerable_items(item.get("item", []))


def loinc_code(codings: Sequence[Mapping[str, Any]] | None) -> str | None:
    for coding in codings or []:
        if coding.get("system") == LOINC_SYSTEM and isinstance(coding.get("code"), str):
            return str(coding["code"])
    return None


@dataclass(frozen=True)
class ResponseAnswer:
    """One answered item, already validated and localized, ready for a QuestionnaireResponse."""

    link_id: str
    text: str
    #: ``{"system", "code", "display"}`` for choice items, None for text items.
    coding: Mapping[str, str] | None = None
    string: str | None = None


def questionnaire_response(
    *,
    questionnaire: str,
    answers: Sequence[ResponseAnswer],
    authored: datetime,
    language: str,
    subject: str | None = None,
    source_relationship: str | None = None,
) -> JSON:
    """Build a completed FHIR R4 QuestionnaireResponse.

    ``questionnaire`` is the canonical (``url|version``); ``subject`` a reference string such
    as ``"Patient/123"``. When ``source_relationship`` is given (someone answered on the
    subject's behalf, e.g. ``"carer"``), ``source`` points to a contained RelatedPerson with
    that relationship (or, without a subject to relate to, a typed reference with that text).
    """
    if authored.tzinfo is None or authored.utcoffset() is None:
        raise ValueError("authored must be timezone-aware (FHIR dateTime needs an offset)")
    response: JSON = {
        "resourceType": "QuestionnaireResponse",
        "language": language,
        "questionnaire": questionnaire,
        "status": "completed",
        "authored": authored.isoformat(),
    }
    if subject is not None:
        response["subject"] = {"reference": subject}
    if source_relationship is not None:
        if subject is not None:
            response["contained"] = [
                {
                    "resourceType": "RelatedPerson",
                    "id": "source",
                    "patient": {"reference": subject},
                    "relationship": [{"text": source_relationship}],
                }
            ]
            response["source"] = {"reference": "#source"}
        else:
            response["source"] = {"type": "RelatedPerson", "display": source_relationship}
    elif subject is not None:
        response["source"] = {"reference": subject}

    items: list[JSON] = []
    for answer in answers:
        if answer.coding is not None:
            value: JSON = {"valueCoding": dict(answer.coding)}
        else:
            value = {"valueString": answer.string}
        items.append({"linkId": answer.link_id, "text": answer.text, "answer": [value]})
    if items:
        response["item"] = items
    return response
