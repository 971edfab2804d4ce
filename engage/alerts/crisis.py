"""Crisis lines as a patient's page shows them, and the built-in ones for each region.

No database here: :func:`engage.alerts.services.crisis_contacts_for` chooses the lines,
from the admin's lists or, when there are none, from :data:`REGIONS`
(``ENGAGE_CRISIS_REGION``). ``docs/patient-survey.md`` gives the sources of every number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString

#: A run of digits as people write phone numbers: spaces, hyphens, dots, brackets inside.
NUMBER = re.compile(r"\+?\(?\d[\d\s().-]*\d|\d")
#: Where the lines a patient sees came from; the admin's preview says so.
Source = Literal["service", "organisation", "region"]


def digits(number: str) -> str:
    """``+44 (0)113 496 0000`` -> ``+4401134960000``: what a ``tel:`` or ``sms:`` link dials."""
    number = number.strip()
    return ("+" if number.startswith("+") else "") + re.sub(r"\D", "", number)


def tel_uri(phone: str) -> str:
    return f"tel:{digits(phone)}"


def sms_uri(text_line: str) -> str | None:
    """``sms:85258`` for a text line that names one number ("Text SHOUT to 85258"), else None.

    The keyword is left for the patient to type (it is on the page beside the link): a
    message body in an ``sms:`` link is written differently on iOS and Android, and some
    phones read it as more digits of the number.
    """
    found = [digits(m) for m in NUMBER.findall(text_line)]
    found = [n for n in found if len(n.lstrip("+")) >= 3]
    return f"sms:{found[0]}" if len(found) == 1 else None


@dataclass(frozen=True)
class CrisisLine:
    """One line on the page, with its words already in the page's language."""

    name: str
    phone: str | None = None
    #: The text line as patients read it, e.g. "Text SHOUT to 85258".
    text: str | None = None
    hours: str | None = None
    note: str | None = None
    #: The stored contact it comes from; None for a built-in line.
    contact_id: int | None = None

    @property
    def tel(self) -> str | None:
        return tel_uri(self.phone) if self.phone else None

    @property
    def sms(self) -> str | None:
        return sms_uri(self.text) if self.text else None


@dataclass(frozen=True)
class CrisisContacts:
    """Everything a patient's page shows: the emergency number, then the lines in order."""

    emergency: str
    lines: tuple[CrisisLine, ...]
    source: Source
    region: str

    @property
    def emergency_tel(self) -> str:
        return tel_uri(self.emergency)


@dataclass(frozen=True)
class BuiltInLine:
    """A national line. Its name is the service's own (never translated, so that it can be
    found again); what it is for, and when it answers, are translated."""

    name: str
    phone: str | None = None
    text: LazyString | None = None
    hours: LazyString | None = None
    note: LazyString | None = None


@dataclass(frozen=True)
class Region:
    #: Called for a life in danger now; shown on every page, whatever else is configured.
    emergency: str
    lines: tuple[BuiltInLine, ...]


#: i18n: the countries whose emergency number and helplines Engage knows
REGION_NAMES = {"GB": _l("the United Kingdom"), "ES": _l("Spain"), "US": _l("the United States")}

#: i18n: when a helpline answers
ALWAYS = _l("24 hours, every day")

#: The built-in lines of each ``ENGAGE_CRISIS_REGION``; the sources are in
#: docs/patient-survey.md. Keep ``config.CRISIS_REGIONS`` in step.
REGIONS: dict[str, Region] = {
    "GB": Region(emergency="999", lines=(
        BuiltInLine(
            "NHS 111", phone="111", hours=ALWAYS,
            # i18n: NHS 111 is the NHS helpline in England; keep "111"
            note=_l("Choose the mental health option (press 2) for urgent mental health "
                    "help. England."),
        ),
        BuiltInLine(
            "Samaritans", phone="116 123", hours=ALWAYS,
            note=_l("Free. Someone to talk to, whatever you are going through."),
        ),
        BuiltInLine(
            "Shout",
            # i18n: a text message to a helpline; keep the keyword in capitals as it is
            text=_l("Text %(keyword)s to %(number)s", keyword="SHOUT", number="85258"),
            hours=ALWAYS, note=_l("Free, by text message."),
        ),
    )),
    "ES": Region(emergency="112", lines=(
        BuiltInLine(
            "Línea 024", phone="024", hours=ALWAYS,
            # i18n: Spain's national line for people at risk of suicide (Línea 024)
            note=_l("Free and confidential help for anyone thinking about suicide, and for "
                    "their family and friends."),
        ),
        BuiltInLine(
            "Teléfono de la Esperanza", phone="717 003 717", hours=ALWAYS,
            note=_l("Someone to talk to in a personal or emotional crisis."),
        ),
    )),
    "US": Region(emergency="911", lines=(
        BuiltInLine(
            "988 Suicide & Crisis Lifeline", phone="988",
            text=_l("Text %(number)s", number="988"), hours=ALWAYS,
            note=_l("Free and confidential, in English and Spanish."),
        ),
        BuiltInLine(
            "Crisis Text Line",
            text=_l("Text %(keyword)s to %(number)s", keyword="HOME", number="741741"),
            hours=ALWAYS, note=_l("Free, by text message."),
        ),
    )),
}


def built_in(region: str) -> tuple[str, tuple[CrisisLine, ...]]:
    """The region's emergency number and its lines, in the current locale."""
    found = REGIONS[region]
    return found.emergency, tuple(
        CrisisLine(name=line.name, phone=line.phone,
                   text=str(line.text) if line.text else None,
                   hours=str(line.hours) if line.hours else None,
                   note=str(line.note) if line.note else None)
        for line in found.lines
    )
