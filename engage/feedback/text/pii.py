"""Personal details in free-text comments: find them, and redact them for people who see no names.

Councils of patient volunteers, exports and digests see redacted text; staff see the
original. What is found: person names, phone numbers, email addresses, NHS numbers,
hospital numbers, dates of birth and postal addresses, in English, Spanish and
Arabic. What is deliberately left alone (ward names, "A&E", "111", times, ordinary
dates, towns) and the known gaps are in ``docs/safety-rules.md``.

Pure Python and stdlib only, compiled once: ``find_pii`` runs on every comment at intake.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["KINDS", "PLACEHOLDERS", "PiiSpan", "find_pii", "nhs_number_is_valid", "redact"]

KINDS = ("name", "phone", "email", "nhs_number", "hospital_number", "date_of_birth", "address")

#: English placeholders; the app may translate them (keyed by kind).
PLACEHOLDERS: dict[str, str] = {
    "name": "[name]",
    "phone": "[phone]",
    "email": "[email]",
    "nhs_number": "[NHS number]",
    "hospital_number": "[hospital number]",
    "date_of_birth": "[date of birth]",
    "address": "[address]",
}

# When two findings overlap, the more specific kind wins, then the longer span.
_RANK = {
    "email": 9,
    "nhs_number": 8,
    "date_of_birth": 7,
    "hospital_number": 6,
    "phone": 5,
    "address": 4,
    "hospital_number_shape": 3,
    "name": 2,
}

_NAMES_FILE = Path(__file__).parent / "data" / "pii_given_names.txt"


@dataclass(frozen=True)
class PiiSpan:
    """A personal detail: ``text == original[start:end]``."""

    kind: str
    start: int
    end: int
    text: str


# --- folding for comparisons ------------------------------------------------------------

_EXTRA_FOLD = str.maketrans({"ł": "l", "ø": "o", "đ": "d", "ı": "i", "æ": "ae", "œ": "oe"})
_ARABIC_FOLD = str.maketrans({"ى": "ي", "ة": "ه", "ٱ": "ا", "ی": "ي", "ک": "ك", "ـ": None})


@functools.lru_cache(maxsize=8192)
def _fold(word: str) -> str:
    """Case-, accent- and harakat-insensitive form of a word, for looking names up."""
    word = word.casefold().replace("’", "'").translate(_EXTRA_FOLD).translate(_ARABIC_FOLD)
    decomposed = unicodedata.normalize("NFKD", word)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _folded(words: str) -> frozenset[str]:
    """The folded forms of space-separated words."""
    return frozenset(_fold(w) for w in words.split())


def _is_arabic(word: str) -> bool:
    return "\u0600" <= word[0] <= "\u06ff"


# --- emails, NHS numbers, phones ---------------------------------------------------------

_EMAIL_CHARS = r"\w.!#$%&'*+/=?^`{|}~-"
# The look-behind makes a scan start only at the beginning of a run of address characters.
_EMAIL = re.compile(rf"(?<![{_EMAIL_CHARS}])[{_EMAIL_CHARS}]+@(?:[\w-]+\.)+[\w-]{{2,}}")

_SEP = r"[ \u00a0-]"
_NHS = re.compile(rf"(?<![\d+])(\d{{3}}){_SEP}?(\d{{3}}){_SEP}?(\d{{4}})(?!\d)")
_NHS_LABEL = re.compile(
    r"(?:\bN\.?H\.?S\.?|\bNHS)\s*(?:no\.?|num(?:ber)?\.?|#|number\s+is|no\s+is)?\s*[:#.=-]?\s*$",
    re.IGNORECASE,
)


def nhs_number_is_valid(digits: str) -> bool:
    """The NHS number modulus-11 check on a 10-digit string."""
    if len(digits) != 10 or not digits.isdigit():
        return False
    values = [unicodedata.digit(c) for c in digits]
    total = sum(v * w for v, w in zip(values[:9], range(10, 1, -1), strict=True))
    check = 11 - total % 11
    if check == 11:
        check = 0
    return check != 10 and check == values[9]


def _digits(text: str) -> str:
    return "".join(str(unicodedata.digit(c)) for c in text if c.isdigit())


# A run of digits with the separators people put in phone numbers; checked afterwards.
_COUNTRY_CODE = re.compile(r"(?:\+|\b00)\d{1,3}[ .-]?(?:\(0\)[ .-]?)?$")
_PHONE_RUN = re.compile(r"(?<![\w+/:.,])(?:\+|\(\+?)?\d[\d \u00a0().-]{4,24}\d(?![\w/]|[.,:]\d)")
_PHONE_LABEL = re.compile(
    r"(?:\btel(?:ephone)?|\bphone|\bmobile|\bmob|\bcell|\bcall (?:me|us) on|\bring (?:me|us) on"
    r"|\btext (?:me|us) on|\bcontact (?:me|us) on|\bnumber is|\btel[eé]fono|\bm[oó]vil|\bllamar al"
    r"|هاتف|جوال|موبايل|رقمي|رقم الهاتف|رقم الجوال)\W{0,3}(?:is|es|:)?\W{0,3}$",
    re.IGNORECASE,
)
_GROUP_SPLIT = re.compile(r"[ \u00a0().-]+")


def _phone_ok(candidate: str, labelled: bool) -> bool:
    digits = _digits(candidate)
    n = len(digits)
    stripped = candidate.lstrip("(")
    if candidate.count("(") != candidate.count(")"):
        return False
    if re.search(r"[ .-]{2,}", candidate.replace(" - ", "-")):
        return False
    if stripped.startswith("+") or digits.startswith("00"):
        return 8 <= n <= 15
    if digits.startswith("0"):
        return n in (10, 11)
    if n == 9 and digits[0] in "6789":
        return True  # Spanish numbers: nine digits, mobiles 6/7, landlines 8/9
    return labelled and 7 <= n <= 15


def _phones(text: str) -> Iterable[tuple[int, int]]:
    for m in _PHONE_RUN.finditer(text):
        start, end = m.span()
        labelled = bool(_PHONE_LABEL.search(text, max(0, start - 40), start))
        chunk = text[start:end]
        if _phone_ok(chunk, labelled):
            yield start, end
            continue
        # "Ward 12 0161 496 0000": try shorter runs of whole digit groups.
        groups = [(g.start(), g.end()) for g in re.finditer(r"\+?\(?\d+\)?", chunk)]
        found = False
        for i in range(len(groups)):
            for j in range(len(groups), i, -1):
                s, e = start + groups[i][0], start + groups[j - 1][1]
                if _phone_ok(text[s:e], labelled):
                    yield s, e
                    found = True
                    break
            if found:
                break


# --- hospital numbers ----------------------------------------------------------------------

_HOSPITAL_LABEL = re.compile(
    r"(?:\bMRN|\bM\.R\.N\.?|\b(?:hospital|patient|unit|case|medical record|record|K)\s*"
    r"(?:no\b\.?|num\b\.?|number|id\b|ref\b\.?|reference)|\bhospital\s+id|\bCHI(?:\s+number)?"
    r"|\bn[uú]mero\s+de\s+(?:historia(?:\s+cl[ií]nica)?|paciente|expediente)"
    r"|\bhistoria\s+cl[ií]nica|\bNHC|\bn[ºo°]\.?\s*de\s+historia|\bexpediente"
    r"|رقم\s+(?:ال)?(?:مريض|ملف(?:\s+(?:ال)?طبي)?|مستشفى|سجل(?:\s+(?:ال)?طبي)?))"
    r"\s*(?:is|es|was|:|#|=|-)?\s*(?:no\.?|n[ºo°]\.?)?\s*[:#.-]?\s*"
    r"(?P<id>(?=[A-Za-z0-9/-]*\d)[A-Za-z0-9][A-Za-z0-9/-]{2,16}[A-Za-z0-9])",
    re.IGNORECASE,
)
# Letters then at least six digits ("RX1234567", "M0123456"); short codes such as
# "COVID-19", "B12", "NHS111", "M62" or postcodes do not fit.
_HOSPITAL_SHAPE = re.compile(r"(?<![\w-])[A-Z]{1,3}\d{6,10}(?![\w-])")


# --- dates of birth ------------------------------------------------------------------------

_MONTHS = (
    r"january|february|march|april|may|june|july|august|september|october|november|december"
    r"|jan|feb|mar|apr|jun|jul|aug|sept|sep|oct|nov|dec"
    r"|enero|febrero|marzo|abril|mayo|junio|julio|agosto|septiembre|setiembre|octubre"
    r"|noviembre|diciembre|ene|abr|ago|dic"
)
_AR_MONTHS = (
    r"يناير|فبراير|مارس|[أاإ]بريل|مايو|يونيو|يوليو|[أا]غسطس|سبتمبر|[أا]كتوبر|نوفمبر|ديسمبر"
    r"|كانون\s+الثاني|شباط|[آا]ذار|نيسان|[أا]يار|حزيران|تموز|[آا]ب|[أا]يلول"
    r"|تشرين\s+ال[أا]ول|تشرين\s+الثاني|كانون\s+ال[أا]ول"
)
_DAY = r"\d{1,2}(?:st|nd|rd|th|º|ª|er)?"
_DATE = (
    rf"(?:\d{{1,2}}\s?[/.-]\s?\d{{1,2}}\s?[/.-]\s?(?:\d{{4}}|\d{{2}})(?!\d)"
    rf"|\d{{4}}[/.-]\d{{1,2}}[/.-]\d{{1,2}}(?!\d)"
    rf"|{_DAY}\s+(?:of\s+|de\s+)?(?:{_MONTHS})\.?,?\s+(?:of\s+|de\s+|del\s+)?\d{{2,4}}(?!\d)"
    rf"|(?:{_MONTHS})\.?\s+{_DAY},?\s+\d{{4}}(?!\d)"
    rf"|(?:{_MONTHS})\.?,?\s+(?:de\s+|del\s+|of\s+)?\d{{4}}(?!\d)"
    rf"|\d{{1,2}}\s+(?:من\s+)?(?:شهر\s+)?(?:{_AR_MONTHS})\s+(?:عام\s+|سنة\s+|سنه\s+)?\d{{4}}(?!\d)"
    rf"|(?:19|20)\d{{2}}(?!\d))"
)
_DOB = re.compile(
    r"(?:\bd\.?\s?o\.?\s?b\b\.?|\bdate\s+of\s+birth|\bbirth\s?date|\bbirthday\s+is"
    r"|\bborn(?:\s+on)?(?:\s+the)?|\bborn\s+in|\bfecha\s+de\s+nacimiento|\bf\.\s?(?:de\s+)?nac\.?"
    r"|\bnacid[oa]\s+(?:el|en)(?:\s+d[ií]a)?|\bnac[ií]\s+(?:el|en)"
    r"|تاريخ\s+(?:ال)?ميلاد(?:ي|ه|ها)?|مواليد[يه]?|مولود[ةه]?\s+(?:في|بتاريخ)"
    r"|ولدت\s+(?:في|بتاريخ|يوم)|ولد\s+(?:في|بتاريخ|يوم))"
    rf"\s*(?:is|es|was|:|-|=|,)?\s*(?:the\s+|el\s+)?(?P<date>{_DATE})",
    re.IGNORECASE,
)


# --- addresses ------------------------------------------------------------------------------

_POSTCODE = re.compile(
    r"(?<![\w-])(?:GIR\s?0AA|[A-Z]{1,2}\d[A-Z\d]?\s?\d(?![CIKMOV])[A-Z](?![CIKMOV])[A-Z])(?![\w-])",
    re.IGNORECASE,
)
_CAP = r"[A-ZÀ-ÖØ-Þ][\w'’-]*"
_STREET_WORDS = (
    r"Road|Rd|Street|St|Avenue|Ave|Lane|Ln|Close|Drive|Dr|Way|Crescent|Cres|Court|Ct|Place|Pl"
    r"|Gardens|Gdns|Terrace|Tce|Grove|Square|Sq|Hill|Park|Row|Walk|Mews|View|Rise|Green"
    r"|Parade|Boulevard|Wynd|Vale|Croft|Meadows|Fields|Chase|Gate|Heights|Bank|Villas"
)
_STREET = re.compile(
    rf"(?<![\w-])(?:(?:Flat|Apartment|Apt|Unit)\s+\d+[A-Za-z]?,?\s+)?\d{{1,4}}[A-Za-z]?,?\s+"
    rf"(?:{_CAP}\s+){{1,3}}(?i:{_STREET_WORDS})\b\.?"
)
_ES_STREET = re.compile(
    r"(?i:\b(?:calle|c/|avenida|avda\.?|av\.|plaza|pza\.?|paseo|camino|carretera|ctra\.?|ronda"
    r"|traves[ií]a|pasaje|urbanizaci[oó]n|urb\.))\s*"
    r"(?:(?:de|del|la|las|los|el)\s+)*[A-ZÁÉÍÓÚÑ][\w'’.-]*"
    r"(?:\s+(?:(?:de|del|la|las|los|el|y)\s+)*[A-ZÁÉÍÓÚÑ][\w'’.-]*){0,3},?\s*"
    r"(?:(?i:n[º°o]\.?|n[uú]mero)\s*)?\d{1,4}[A-Za-z]?(?:\s*,?\s*\d{1,2}\s*[º°ª]\s*[A-Za-z]?)?"
)
_AR_STREET = re.compile(
    r"(?:شارع|طريق|جادة|جاده|حي)\s+(?:[^\s\d،,.؛]+\s+){1,3}?(?:[،,]\s*)?"
    r"(?:(?:رقم|بناية|بنايه|بناء|عمارة|عماره|مبنى|مبني|منزل|بيت)\s*)?\d{1,4}"
)
_ADDRESS_INTRO = re.compile(
    r"(?:\b(?:my|his|her|our|their)\s+(?:home\s+)?address\s+is|\bi\s+live\s+at"
    r"|\b(?:we|he|she|they)\s+lives?\s+at|\baddress\s*:|\bmi\s+direcci[oó]n\s+es"
    r"|\bvivo\s+en|عنواني|عنوانه|عنوانها|[أا]سكن\s+في)\s*:?\s*(?P<addr>[^.;\n!?]{3,80})",
    re.IGNORECASE,
)


# --- names ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Names:
    given: frozenset[str]
    words: frozenset[str]


@functools.cache
def _names() -> _Names:
    given: set[str] = set()
    words: set[str] = set()
    section: set[str] | None = None
    for line in _NAMES_FILE.read_text(encoding="utf-8").splitlines():
        if line.startswith("## names"):
            section = given
        elif line.startswith("## words"):
            section = words
        elif line.startswith("#") or section is None:
            continue
        else:
            section.update(_fold(w) for w in line.split())
    return _Names(frozenset(given - words), frozenset(words))


_TOKEN = re.compile(
    r"(?:[^\W\d_]|[\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06ed\u0640\u0300-\u036f])+"
    r"(?:['’-](?:[^\W\d_]|[\u064b-\u065f\u0300-\u036f])+)*"
)

# Titles written capitalised ("Miss" as a title, "miss" as a verb).
_TITLES_CAPITAL = {
    "mr", "mrs", "ms", "miss", "mx", "dr", "prof", "sr", "sra", "srta", "dra", "don", "dona",
    "dna", "sir", "dame", "rev", "revd", "fr",
}  # fmt: skip
# Role words that act as titles in either case ("nurse Kelly", "la enfermera Ana").
_TITLES_ANY = {
    "doctor", "nurse", "sister", "matron", "professor", "doctora", "enfermera", "enfermero",
    "midwife", "physio", "paramedic", "consultant", "surgeon", "receptionist", "porter",
    "carer", "practitioner", "hca", "gp",
}  # fmt: skip
_AR_TITLES = _folded(
    "الدكتور الدكتورة دكتور دكتورة د الطبيب الطبيبة الممرض الممرضة ممرض ممرضة السيد السيدة "
    "الأستاذ الأستاذة أستاذ أستاذة الحاج الحاجة الشيخ الأخ الأخت المريض المريضة"
)
# Words that join two parts of one Arabic name: عبد الله، أبو محمد، بن علي.
_AR_JOINERS = _folded("عبد أبو ابو أم ام بن ابن بنت آل")
_AR_STOP = _folded(
    "كان كانت يكون تكون هو هي هم الذي التي الذين في من الى إلى على عن مع و ثم قد لقد لم "
    "لن لا ما ليس ليست جدا جداً كثيرا ممتاز ممتازة ممتازه رائع رائعة لطيف لطيفة جيد جيدة "
    "سيء سيئة متعاون متعاونة محترم محترمة مهذب مهذبة قال قالت يقول تقول أعطاني أعطتني "
    "ساعدني ساعدتني شرح شرحت المناوب المناوبة المسؤول المسؤولة نفسه نفسها أيضا ايضا بس "
    "لكن عندما حين كل كله دائما دائماً أبدا الذي اللي يا"
)
_LATIN_STOP = _folded(
    "i i've i'm i'd i'll a an the and but or so if as at by for from in into of on to with "
    "without my your "
    "his her our their its it it's this that these those he she they we you me him them us "
    "who what when where why how which was were is are be been being have has had do does "
    "did not no yes very really just also all any some thank thanks please hello hi dear "
    "mr mrs ms miss dr nurse doctor sister matron staff team teams ward wards unit units "
    "hospital hospitals clinic centre center department service services surgery practice "
    "trust nhs gp a&e pals ambulance ambulances paramedic paramedics crew practitioner "
    "specialist consultant manager associate assistant registrar physio physiotherapist "
    "therapist midwife health care mental community district general royal university "
    "infirmary hospice house lodge street road lane avenue garden gardens park court hall "
    "building wing block floor room bay bed reception pharmacy outpatients inpatients "
    "emergency urgent critical intensive maternity children surgical medical monday "
    "tuesday wednesday thursday friday saturday sunday january february march july "
    "september october november december christmas easter english british covid "
    "coronavirus great good excellent lovely brilliant amazing fantastic wonderful kind "
    "friendly helpful rude poor bad terrible awful ok okay overall everyone everybody "
    "nobody someone somebody anyone everything nothing something anything sir madam "
    "dept a&e ed icu itu hdu ct mri x-ray xray ecg covid-19 uk england scotland wales "
    "ireland london north south east west central city county council school college "
    "station church centre institute foundation suite theatre theatres hub "
    "el la los las un una y o de del en con por para que muy es fue era mi su sus lo le "
    "les se gracias urgencias planta enfermero enfermera doctora medico medica senor "
    "senora don dona sr sra centro salud servicio todo todos nada bien mal buena bueno "
    "excelente lunes martes miercoles jueves viernes sabado enero febrero marzo abril "
    "mayo junio agosto septiembre octubre noviembre diciembre hola buenos buenas"
)
# A name directly before one of these is part of a place: "Queen Elizabeth Hospital".
_PLACE_AFTER = _folded(
    "hospital infirmary ward unit house centre center clinic road street lane avenue court "
    "park lodge hall building wing surgery practice medical health hospice school college "
    "university church station trust foundation suite theatre hub gardens close drive way "
    "crescent place terrace grove square hospitalario hospital clinica centro calle avenida"
)
_PLACE_BEFORE = _folded("st saint queen king prince princess royal san santa")
# "called X" is only an introduction after a word for a person ("a nurse called Amy").
_PERSON_NOUNS = _folded(
    "nurse doctor man woman lady gentleman guy girl boy lad lass chap bloke person someone "
    "somebody paramedic receptionist carer porter driver midwife physio consultant surgeon "
    "sister son daughter husband wife friend patient one worker practitioner coordinator "
    "therapist psychiatrist psychologist technician assistant student volunteer member hca "
    "officer was is"
)
_INTRO = re.compile(
    r"(?:\bmy\s+name\s+is|\bmy\s+name['’]s|\bme\s+llamo|\bmi\s+nombre\s+es|\bse\s+llama"
    r"|\bsu\s+nombre\s+es|\bi\s+am\s+called|\bi['’]m\s+called|اسمي|إسمي|اسمه|اسمها)\s+",
    re.IGNORECASE,
)
_CALLED = re.compile(r"\b(?:called|named|llamad[oa]|de\s+nombre)\s+", re.IGNORECASE)
_I_AM = re.compile(r"(?:\bi\s+am|\bi['’]?m|\bsoy|\bأنا|\bانا)\s+$", re.IGNORECASE)
_POSSESSIVE = re.compile(r"['’]s$", re.IGNORECASE)


@dataclass
class _Tok:
    start: int
    end: int
    text: str
    fold: str
    arabic: bool
    cap: bool


def _tokens(text: str) -> list[_Tok]:
    out = []
    for m in _TOKEN.finditer(text):
        word = m.group()
        arabic = _is_arabic(word)
        base = _POSSESSIVE.sub("", word)  # "Sarah's" is looked up as "Sarah"
        out.append(
            _Tok(m.start(), m.end(), word, _fold(base), arabic, not arabic and word[0].isupper())
        )
    return out


def _adjacent(text: str, a: _Tok, b: _Tok, allow: str = "") -> bool:
    """Whether only spaces (and ``allow`` characters) stand between two tokens."""
    between = text[a.end : b.start]
    return len(between) <= 3 and all(c.isspace() or c in allow for c in between)


@functools.lru_cache(maxsize=64)
def _extra(names: tuple[str, ...]) -> tuple[frozenset[tuple[str, ...]], frozenset[str]]:
    """Full names (as folded token tuples) and their parts, from names the app knows."""
    full: set[tuple[str, ...]] = set()
    parts: set[str] = set()
    for name in names:
        words = [
            _fold(m.group())
            for m in _TOKEN.finditer(name)
            if _fold(m.group()) not in _TITLES_CAPITAL | _TITLES_ANY | _AR_TITLES
        ]
        if not words:
            continue
        full.add(tuple(words))
        parts.update(w for w in words if len(w) >= 2 and w not in _LATIN_STOP)
    return frozenset(full), frozenset(parts)


def _name_spans(text: str, extra_names: tuple[str, ...]) -> list[tuple[int, int]]:
    toks = _tokens(text)
    if not toks:
        return []
    names = _names()
    full, parts = _extra(extra_names) if extra_names else (frozenset(), frozenset())
    n = len(toks)
    is_name = [False] * n

    def known(i: int) -> bool:
        f = toks[i].fold
        return f in names.given or f in parts

    def word_like(i: int) -> bool:
        return toks[i].fold in names.words

    def capitalised_name(i: int) -> bool:
        """A capitalised token that could be part of a name (surname, unknown given name)."""
        t = toks[i]
        if t.arabic:
            return known(i) or word_like(i)
        acronym = t.text.isupper() and len(t.text) <= 4  # "GP", "TV", "RMN"
        return t.cap and t.fold not in _LATIN_STOP and len(t.text) > 1 and not acronym

    def place_follows(i: int) -> bool:
        j = i + 1
        return j < n and toks[j].fold in _PLACE_AFTER and toks[j].cap

    def extend(i: int) -> None:
        """Mark i, and the surname-like tokens right after it."""
        is_name[i] = True
        j = i + 1
        taken = 0
        while j < n and taken < 3 and _adjacent(text, toks[j - 1], toks[j], "."):
            t = toks[j]
            if t.arabic:
                if not (known(j) or word_like(j) or toks[j - 1].fold in _AR_JOINERS):
                    break
            elif t.fold in {"de", "del", "la", "van", "von", "bin", "al", "el", "da", "di"}:
                if j + 1 < n and toks[j + 1].cap and toks[j + 1].fold not in _LATIN_STOP:
                    is_name[j] = True
                    j += 1
                    continue
                break
            elif not capitalised_name(j):
                break
            is_name[j] = True
            taken += 1
            j += 1

    # Names the app knows, in full, in any case.
    if full:
        folds = [t.fold for t in toks]
        for name in full:
            k = len(name)
            for i in range(n - k + 1):
                if tuple(folds[i : i + k]) == name and all(
                    _adjacent(text, toks[q], toks[q + 1]) for q in range(i, i + k - 1)
                ):
                    for k2 in range(i, i + k):
                        is_name[k2] = True

    for i, t in enumerate(toks):
        nxt = i + 1 < n and _adjacent(text, t, toks[i + 1])
        # Titles: "Dr Patel", "Nurse Kelly", "Sra. García", "الدكتور أحمد". Only the
        # abbreviations may carry a full stop: "nurse. Palpitations" is two sentences.
        abbrev = t.fold in _TITLES_CAPITAL and t.cap
        if (abbrev and i + 1 < n and _adjacent(text, t, toks[i + 1], ".")) or (
            t.fold in _TITLES_ANY and not t.arabic and nxt
        ):
            j = i + 1
            u = toks[j]
            initial = len(u.text) == 1 and j + 1 < n and capitalised_name(j + 1)
            if (
                u.cap
                and u.fold not in _LATIN_STOP
                and (len(u.text) > 1 or initial)
                and not place_follows(j)
            ):
                extend(j)
            continue
        if t.arabic and t.fold in _AR_TITLES and nxt:
            j = i + 1
            f = toks[j].fold
            if toks[j].arabic and f not in _AR_STOP and (not f.startswith("ال") or known(j)):
                extend(j)
            continue
        if is_name[i]:
            continue
        if t.arabic:
            bare = t.fold[1:] if t.fold[:1] in ("و", "ل", "ب") and len(t.fold) > 3 else t.fold
            if (
                bare in names.given
                or bare in parts
                or (
                    bare in names.words
                    and nxt
                    and toks[i + 1].arabic
                    and (known(i + 1) or toks[i + 1].fold in names.words)
                )
                or (t.fold in _AR_JOINERS and nxt and toks[i + 1].fold.startswith("ال"))
            ):
                extend(i)
            continue
        if not t.cap:
            # "i'm sarah": a known name after "I'm" / "soy", in any case.
            if known(i) and _I_AM.search(text, max(0, t.start - 8), t.start):
                extend(i)
            continue
        if place_follows(i) or (i > 0 and toks[i - 1].fold in _PLACE_BEFORE and toks[i - 1].cap):
            continue
        if known(i) or (word_like(i) and nxt and capitalised_name(i + 1)):
            before = is_name[:]
            extend(i)
            last = max(j for j in range(i, n) if is_name[j] and not before[j] or j == i)
            if place_follows(last):  # "James Cook Hospital" is a place
                is_name[i : last + 1] = before[i : last + 1]

    # Introductions: "my name is jo", "me llamo Ana", "اسمي أحمد", "a nurse called Amy".
    at = {t.start: i for i, t in enumerate(toks)}
    for m in _INTRO.finditer(text):
        i = at.get(m.end(), -1)
        if i < 0 or toks[i].fold in _LATIN_STOP or toks[i].fold in _AR_STOP:
            continue
        extend(i)
        # Arabic family names often carry the article: "اسمي أحمد الخطيب".
        j = i + 1
        while (
            toks[i].arabic
            and j < n
            and j <= i + 2
            and toks[j].arabic
            and toks[j].fold not in _AR_STOP
            and _adjacent(text, toks[j - 1], toks[j])
        ):
            is_name[j] = True
            j += 1
    for m in _CALLED.finditer(text):
        i = at.get(m.end(), -1)
        if i < 0 or not toks[i].cap or toks[i].fold in _LATIN_STOP:
            continue
        prev = i - 1
        while prev >= 0 and toks[prev].end > m.start():
            prev -= 1
        person = prev >= 0 and toks[prev].fold in _PERSON_NOUNS
        if known(i) or person or not m.group().lower().startswith("called"):
            extend(i)

    # A surname or name found once is a name wherever else it is capitalised.
    seen = {
        toks[i].fold
        for i in range(n)
        if is_name[i] and toks[i].fold not in names.words and len(toks[i].fold) > 2
    }
    for i, t in enumerate(toks):
        if not is_name[i] and t.fold in seen and (t.cap or t.arabic) and not place_follows(i):
            is_name[i] = True

    spans: list[tuple[int, int]] = []
    i = 0
    while i < n:
        if not is_name[i]:
            i += 1
            continue
        j = i
        while j + 1 < n and is_name[j + 1] and _adjacent(text, toks[j], toks[j + 1], "."):
            j += 1
        end = toks[j].end
        pm = _POSSESSIVE.search(toks[j].text)
        if pm:
            end -= len(pm.group())
        spans.append((toks[i].start, end))
        i = j + 1
    return spans


# --- putting it together ----------------------------------------------------------------------


def find_pii(
    text: str, language: str | None = None, *, extra_names: Iterable[str] = ()
) -> list[PiiSpan]:
    """Personal details in ``text``, sorted and non-overlapping (the most specific wins).

    ``language`` is a hint only: every language's patterns are tried. ``extra_names``
    are names the app knows (staff, the patient): matched in full in any case, and
    each part of them when capitalised.
    """
    del language
    if not text:
        return []
    found: list[tuple[str, int, int]] = []

    def add(kind: str, start: int, end: int) -> None:
        if end > start:
            found.append((kind, start, end))

    for m in _EMAIL.finditer(text):
        add("email", *m.span())
    for m in _NHS.finditer(text):
        digits = _digits(m.group(1) + m.group(2) + m.group(3))
        labelled = bool(_NHS_LABEL.search(text, max(0, m.start() - 30), m.start()))
        if labelled or (
            nhs_number_is_valid(digits)
            and not digits.startswith("0")  # UK and Arabic-world phone numbers
            and not _COUNTRY_CODE.search(text, max(0, m.start() - 12), m.start())
        ):
            add("nhs_number", *m.span())
    for m in _HOSPITAL_LABEL.finditer(text):
        add("hospital_number", *m.span("id"))
    for m in _HOSPITAL_SHAPE.finditer(text):
        add("hospital_number_shape", *m.span())
    for m in _DOB.finditer(text):
        add("date_of_birth", *m.span("date"))
    for start, end in _phones(text):
        add("phone", start, end)
    for rx in (_POSTCODE, _STREET, _ES_STREET, _AR_STREET):
        for m in rx.finditer(text):
            add("address", *m.span())
    for m in _ADDRESS_INTRO.finditer(text):
        if any(c.isdigit() for c in m.group("addr")):
            start, end = m.span("addr")
            while end > start and text[end - 1] in " ,":
                end -= 1
            add("address", start, end)
    for start, end in _name_spans(text, tuple(extra_names)):
        add("name", start, end)

    found.sort(key=lambda f: (-_RANK[f[0]], -(f[2] - f[1]), f[1]))
    chosen: list[tuple[str, int, int]] = []
    for kind, start, end in found:
        if all(end <= s or start >= e for _, s, e in chosen):
            chosen.append((kind, start, end))
    chosen.sort(key=lambda f: f[1])
    return [
        PiiSpan("hospital_number" if kind == "hospital_number_shape" else kind, s, e, text[s:e])
        for kind, s, e in chosen
    ]


def redact(
    text: str,
    spans: Sequence[PiiSpan] | None = None,
    *,
    language: str | None = None,
    extra_names: Iterable[str] = (),
) -> str:
    """``text`` with each personal detail replaced by its placeholder, e.g. ``[phone]``."""
    if spans is None:
        spans = find_pii(text, language, extra_names=extra_names)
    out = []
    pos = 0
    for span in sorted(spans, key=lambda s: (s.start, -s.end)):
        if span.start < pos:
            continue  # overlaps one already replaced
        out.append(text[pos : span.start])
        out.append(PLACEHOLDERS[span.kind])
        pos = span.end
    out.append(text[pos:])
    return "".join(out)
