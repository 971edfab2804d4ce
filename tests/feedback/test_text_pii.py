"""Personal details in comments: each kind found and redacted (en/es/ar), and what is left alone."""

from __future__ import annotations

import csv
import random
import re
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engage.feedback.text.pii import (
    KINDS,
    PLACEHOLDERS,
    PiiSpan,
    find_pii,
    nhs_number_is_valid,
    redact,
)

TRAIN_CSV = Path(__file__).parents[3] / "shared" / "data" / "feedback-themes" / "train.csv"


def found(text: str, **kw: object) -> list[tuple[str, str]]:
    return [(s.kind, s.text) for s in find_pii(text, **kw)]  # type: ignore[arg-type]


def make_nhs_number(rng: random.Random) -> str:
    while True:
        digits = "".join(str(rng.randrange(10)) for _ in range(9))
        total = sum(int(d) * w for d, w in zip(digits, range(10, 1, -1), strict=True))
        check = 11 - total % 11
        if check == 11:
            check = 0
        if check != 10:
            return digits + str(check)


# --- each kind, in realistic comments ---------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # names with titles
        ("Dr Patel and Nurse Kelly were brilliant", [("name", "Patel"), ("name", "Kelly")]),
        ("Thanks to Mrs O'Brien-Smith on the ward", [("name", "O'Brien-Smith")]),
        ("Dr. J. Okafor explained everything", [("name", "J. Okafor")]),
        ("Sister Agnes and Matron Davies were kind", [("name", "Agnes"), ("name", "Davies")]),
        ("Prof Nowak's team were great", [("name", "Nowak")]),
        ("la enfermera Ana y el Dr. López fueron amables", [("name", "Ana"), ("name", "López")]),
        ("La Sra. Fernández y Doña Pilar me ayudaron", [("name", "Fernández"), ("name", "Pilar")]),
        ("الدكتور أحمد كان ممتازا", [("name", "أحمد")]),
        ("شكرا للممرضة فاطمة", [("name", "فاطمة")]),
        # introductions
        ("My name is Jo Bloggs and I was a patient", [("name", "Jo Bloggs")]),
        ("my name is kasia", [("name", "kasia")]),
        ("I'm Sarah and I want to complain", [("name", "Sarah")]),
        ("a nurse called Amy helped me", [("name", "Amy")]),
        ("a porter named Zbigniew", [("name", "Zbigniew")]),
        ("Me llamo María García", [("name", "María García")]),
        ("اسمي أحمد الخطيب", [("name", "أحمد الخطيب")]),
        # the given-names list
        ("Rebecca was very respectful and caring", [("name", "Rebecca")]),
        ("Thanks to Gurpreet and Siobhan", [("name", "Gurpreet"), ("name", "Siobhan")]),
        ("Will Thompson said he would call", [("name", "Will Thompson")]),
        ("Ask for Grace Kelly at reception", [("name", "Grace Kelly")]),
        ("محمد علي ساعدني كثيرا", [("name", "محمد علي")]),
        (
            "Mr Smith's wife was there. Smith was rude later.",
            [("name", "Smith"), ("name", "Smith")],
        ),
        # phones
        ("Please call me on 07700 900123", [("phone", "07700 900123")]),
        ("ring 07700900123 any time", [("phone", "07700900123")]),
        ("my number: +44 (0)20 7946 0000", [("phone", "+44 (0)20 7946 0000")]),
        ("landline (0161) 496-0000", [("phone", "(0161) 496-0000")]),
        ("call 0161 496 0000 after 5", [("phone", "0161 496 0000")]),
        ("mi móvil es 612 345 678", [("phone", "612 345 678")]),
        ("llamar al +34 91 123 45 67", [("phone", "+34 91 123 45 67")]),
        ("رقم الجوال 0501234567", [("phone", "0501234567")]),
        ("US cousin +1 415-555-2671", [("phone", "+1 415-555-2671")]),
        ("my mobile 07700 900123: text first", [("phone", "07700 900123")]),
        ("tel: 496 0000", [("phone", "496 0000")]),
        ("Ward 12 0161 496 0000", [("phone", "0161 496 0000")]),
        # emails
        ("email sarah.jones@example.co.uk please", [("email", "sarah.jones@example.co.uk")]),
        ("correo: maria_g+nhs@correo.es", [("email", "maria_g+nhs@correo.es")]),
        # NHS numbers
        ("My NHS number is 943 476 5919.", [("nhs_number", "943 476 5919")]),
        ("NHS no: 943-476-5919", [("nhs_number", "943-476-5919")]),
        ("ref 9434765919 on my letter", [("nhs_number", "9434765919")]),
        ("NHS number 1234567890 (typed from memory)", [("nhs_number", "1234567890")]),
        # hospital numbers
        ("Hospital number RX1234567", [("hospital_number", "RX1234567")]),
        ("MRN: 00123456", [("hospital_number", "00123456")]),
        ("my patient number is A12-3456", [("hospital_number", "A12-3456")]),
        ("unit no. K0457281", [("hospital_number", "K0457281")]),
        ("number RTH00712345 on the wristband", [("hospital_number", "RTH00712345")]),
        ("número de historia clínica 4455667", [("hospital_number", "4455667")]),
        ("رقم الملف الطبي 7788990", [("hospital_number", "7788990")]),
        # dates of birth
        ("DOB 12/03/1956", [("date_of_birth", "12/03/1956")]),
        ("date of birth: 1956-03-12", [("date_of_birth", "1956-03-12")]),
        ("I was born on 12th March 1956", [("date_of_birth", "12th March 1956")]),
        ("born on the 3rd of May, 1980", [("date_of_birth", "3rd of May, 1980")]),
        ("d.o.b. March 12, 1956", [("date_of_birth", "March 12, 1956")]),
        ("Fecha de nacimiento: 3 de mayo de 1980", [("date_of_birth", "3 de mayo de 1980")]),
        ("nacido el 03-05-1980", [("date_of_birth", "03-05-1980")]),
        ("تاريخ الميلاد 12/03/1956", [("date_of_birth", "12/03/1956")]),
        ("تاريخ الميلاد ١٢/٠٣/١٩٥٦", [("date_of_birth", "١٢/٠٣/١٩٥٦")]),
        ("مواليد 1956", [("date_of_birth", "1956")]),
        ("ولدت في 12 مارس 1956", [("date_of_birth", "12 مارس 1956")]),
        # addresses
        ("I live at 14 Maple Road", [("address", "14 Maple Road")]),
        ("send it to Flat 3, 27 St John's Gardens", [("address", "Flat 3, 27 St John's Gardens")]),
        ("postcode LS6 2AB", [("address", "LS6 2AB")]),
        ("we're at ne1 4lp", [("address", "ne1 4lp")]),
        ("vivo en Calle Mayor 12, 3ºB", [("address", "Calle Mayor 12, 3ºB")]),
        ("en la Avda. de la Constitución 45", [("address", "Avda. de la Constitución 45")]),
        ("شارع الملك فهد رقم 12", [("address", "شارع الملك فهد رقم 12")]),
    ],
)
def test_each_kind_is_found(text: str, expected: list[tuple[str, str]]) -> None:
    assert found(text) == expected
    redacted = redact(text)
    for kind, value in expected:
        assert value not in redacted
        assert PLACEHOLDERS[kind] in redacted


@pytest.mark.parametrize(
    "text",
    [
        "The appointment was at 10:30 and I waited 4 hours",
        "A&E was busy, 111 was slow and I rang 999 twice",
        "Ward 12 and Bay 4 Bed 12 were clean",
        "COVID-19 test came back negative, had my B12 injection",
        "Will the nurse call me back?",
        "May I say thank you to everyone",
        "Grace was shown by all the staff. Hope to come back.",
        "Mark my words, the food was awful",
        "Frank discussion with the doctor",
        "The Royal Victoria Infirmary was great",
        "James Cook Hospital in Middlesbrough",
        "Queen Elizabeth Hospital staff were kind",
        "Blood pressure 140/90, temp 38.5, sats 94%",
        "Took 2 x 500mg paracetamol at 12.30pm",
        "waited between 10-12 weeks, from 2019-2020",
        "Parking cost £3.50 per hour, £1,500 a year",
        "my appointment on 12/03/2024 was cancelled",
        "I was seen on 12th March 2024",
        "M62 was closed so we came on the A1(M)",
        "complaint ref 123456",
        "On the ward the nurse. Every day was the same",
        "Saw the GP. Eventually a young GP took over",
        "Sky TV in the day room",
        "Muy buen trato en la planta 3, habitación 312",
        "La espera fue de 4 horas",
        "الممرضة لطيفة جدا",
        "كان علي ان انتظر ساعتين",
        "الخدمة ممتازة في الغرفة 12",
        "I live at home with my wife",
        "I was born in Leeds",
        "They called Monday and I called NHS Direct",
        "St Mary's Hospital was fine",
    ],
)
def test_ordinary_details_are_not_redacted(text: str) -> None:
    assert find_pii(text) == []
    assert redact(text) == text


def test_several_spans_in_one_comment_are_sorted_and_do_not_overlap() -> None:
    text = (
        "Dr Patel (NHS no 943 476 5919, DOB 12/03/1956) rang me on 07700 900123 "
        "and emailed jo.bloggs@example.com about 14 Maple Road, Leeds LS6 2AB."
    )
    spans = find_pii(text)
    assert [s.kind for s in spans] == [
        "name",
        "nhs_number",
        "date_of_birth",
        "phone",
        "email",
        "address",
        "address",
    ]
    assert all(a.end <= b.start for a, b in zip(spans, spans[1:], strict=False))
    for s in spans:
        assert text[s.start : s.end] == s.text
    assert redact(text) == (
        "Dr [name] (NHS no [NHS number], DOB [date of birth]) rang me on [phone] "
        "and emailed [email] about [address], Leeds [address]."
    )


def test_most_specific_kind_wins_an_overlap() -> None:
    # An email holds a name; a valid NHS number is also shaped like a phone number.
    assert found("sarah.jones@nhs.net") == [("email", "sarah.jones@nhs.net")]
    assert found("943 476 5919") == [("nhs_number", "943 476 5919")]


def test_extra_names_from_the_app_are_honoured() -> None:
    staff = ["Sam Ward", "Dr Bogdan Wiśniewski", "زياد الحربي"]
    text = "sam ward and Wisniewski helped; Ward 12 was clean. شكرا زياد الحربي"
    assert found(text, extra_names=staff) == [
        ("name", "sam ward"),
        ("name", "Wisniewski"),
        ("name", "زياد الحربي"),
    ]
    # Without them, none of these are known names.
    assert found("Wisniewski helped") == []


def test_extra_names_accept_any_iterable() -> None:
    names = (n for n in ["Olamide Adeyemi"])
    assert redact("Adeyemi was kind", extra_names=names) == "[name] was kind"


def test_redact_uses_given_spans_and_placeholders_for_every_kind() -> None:
    assert set(PLACEHOLDERS) == set(KINDS)
    text = "abcdefghij"
    spans = [
        PiiSpan("phone", 6, 8, "gh"),
        PiiSpan("name", 0, 2, "ab"),
        PiiSpan("email", 1, 3, "bc"),
    ]
    assert redact(text, spans) == "[name]cdef[phone]ij"


def test_redact_of_clean_text_is_unchanged() -> None:
    assert redact("") == ""
    assert redact("The nurses were kind.") == "The nurses were kind."


# --- NHS number check digit --------------------------------------------------------------


@pytest.mark.parametrize(
    ("digits", "valid"),
    [
        ("9434765919", True),
        ("4010232137", True),
        ("9434765918", False),  # wrong check digit
        ("1234567890", False),  # check digit would be 10
        ("123456789", False),
        ("94347659190", False),
        ("94347a5919", False),
    ],
)
def test_nhs_number_modulus_11(digits: str, valid: bool) -> None:
    assert nhs_number_is_valid(digits) is valid


def test_a_ten_digit_number_with_a_bad_check_digit_is_not_an_nhs_number_without_a_label() -> None:
    assert found("reference 9434765918") == []
    assert found("NHS 9434765918") == [("nhs_number", "9434765918")]


def test_random_valid_nhs_numbers_are_always_found() -> None:
    rng = random.Random(7)
    for _ in range(500):
        number = make_nhs_number(rng)
        spaced = f"{number[:3]} {number[3:6]} {number[6:]}"
        for form in (number, spaced):
            out = redact(f"My number is {form}, thanks")
            assert form not in out and re.search(r"\d{3}", out) is None, form


# --- properties ----------------------------------------------------------------------------

_FILLER = st.text(alphabet=st.sampled_from(list("abcdefg XYZ,.!?'\nñéأب")), max_size=40)


@st.composite
def nhs_numbers(draw: st.DrawFn) -> str:
    number = make_nhs_number(random.Random(draw(st.integers(0, 2**32))))
    sep = draw(st.sampled_from(["", " ", "-"]))
    return f"{number[:3]}{sep}{number[3:6]}{sep}{number[6:]}"


@settings(max_examples=300, deadline=None)
@given(before=_FILLER, email=st.emails(), middle=_FILLER, nhs=nhs_numbers(), after=_FILLER)
def test_redact_never_leaves_an_email_or_a_valid_nhs_number(
    before: str, email: str, middle: str, nhs: str, after: str
) -> None:
    text = f"{before} {email} {middle} {nhs} {after}"
    out = redact(text)
    assert email not in out
    assert nhs not in out
    assert "[email]" in out


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300), st.lists(st.text(max_size=20), max_size=3))
def test_find_and_redact_never_raise(text: str, extra: list[str]) -> None:
    spans = find_pii(text, extra_names=extra)
    assert all(a.end <= b.start for a, b in zip(spans, spans[1:], strict=False))
    for s in spans:
        assert s.kind in KINDS and text[s.start : s.end] == s.text and s.start < s.end
    out = redact(text, spans)
    for s in spans:
        assert PLACEHOLDERS[s.kind] in out


# --- real comments and speed -------------------------------------------------------------------

# Reviewed: staff first names in praise, and one doctor's surname. Two place names made of
# person names ("James Cook" for the hospital, "Stanley" the town) are over-redacted.
EXPECTED_IN_REAL_COMMENTS = {
    "Carol",
    "Tina",
    "Jill",
    "Di",
    "Rachel",
    "Omonori",
    "Rebecca",
    "James Cook",
    "Stanley",
}


def test_real_comments_only_lose_names() -> None:
    if not TRAIN_CSV.exists():
        pytest.skip(f"{TRAIN_CSV} is not there (shared/ data is not in every checkout)")
    with TRAIN_CSV.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    spans = [s for row in rows for s in find_pii(row["FFT answer"])]
    assert {s.kind for s in spans} == {"name"}
    assert {s.text for s in spans} == EXPECTED_IN_REAL_COMMENTS


def test_typical_comment_is_scanned_quickly() -> None:
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
                find_pii(c)
        best = min(best, (time.perf_counter() - start) / 300)
    # Measured about 0.1 ms; the bound only catches a pathological slowdown on a busy machine.
    assert best < 0.002


def test_long_inputs_stay_fast() -> None:
    for text in ("1 " * 20_000, "A" * 50_000, "Dr " * 10_000, "@" * 20_000 + "a", "0" * 30_000):
        start = time.perf_counter()
        redact(text)
        assert time.perf_counter() - start < 3.0
