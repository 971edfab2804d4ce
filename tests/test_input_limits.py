"""Every text input has a length limit that fits its storage, and bad characters are
cleaned (engage/core/inputs.py): the forms, the patient survey, the public page and the
API."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select
from wtforms import Form, StringField
from wtforms.validators import Length

import engage
from engage.core.inputs import (
    BaseForm,
    BaseSubForm,
    clean_line,
    clean_text,
    has_bad_characters,
)

#: What each text field is stored in: the column's length, or None when it is not kept in
#: a bounded column (Text, JSON, a hash, or not stored at all). A new field must be added
#: here, with the column it ends in.
STORAGE: dict[str, int | None] = {
    "accounts.forms.LoginForm.email": None,  # compared, never stored
    "accounts.forms.LoginForm.password": None,  # hashed
    "accounts.account_forms.ChangePasswordForm.current_password": None,
    "accounts.account_forms.ChangePasswordForm.password": None,
    "accounts.account_forms.ChangePasswordForm.confirm": None,
    "accounts.account_forms.EditForm.name": 200,  # user.name
    "accounts.account_forms.ForgotForm.email": None,  # looked up, never stored
    "accounts.account_forms.InviteForm.name": 200,
    "accounts.account_forms.InviteForm.email": 254,  # user.email
    "accounts.account_forms.SetPasswordForm.password": None,
    "accounts.account_forms.SetPasswordForm.confirm": None,
    "accounts.account_forms._StaffFields.name": 200,
    "accounts.two_factor_forms.CodeForm.code": None,  # checked, never stored
    "accounts.two_factor_forms.SetupForm.code": None,
    "alerts.forms.AcknowledgeForm.note": None,  # Text
    "alerts.forms.CrisisContactForm.name": 120,
    "alerts.forms.CrisisContactForm.phone": 40,
    "alerts.forms.CrisisContactForm.text": 120,
    "alerts.forms.CrisisContactForm.hours": 120,
    "alerts.forms.CrisisContactForm.note": 200,
    "alerts.forms.CrisisContactForm.position": 6,  # an integer: six digits are plenty
    "feedback.forms.NoteForm.note": None,  # event detail (JSON)
    "feedback.forms.ReplyForm.subject": 200,  # reply.subject
    "feedback.forms.ReplyForm.body": None,  # Text
    "feedback.forms.SafetyLevelForm.reason": None,  # Text
    "feedback.forms.StaffEntryForm.received_on": None,  # parsed as a date
    "feedback.forms.StaffEntryForm.question": None,  # Text
    "feedback.forms.StaffEntryForm.text": 5000,  # intake's MAX_TEXT
    "feedback.forms.StaffEntryForm.patient_ref": 64,  # patient.ref
    "feedback.forms.StaffEntryForm.contact_name": 200,
    "feedback.forms.StaffEntryForm.contact_email": 254,
    "feedback.forms.StaffEntryForm.contact_phone": 32,
    "feedback.forms.StatusForm.note": None,  # event detail (JSON)
    "feedback.forms.ThemesForm.back": None,  # a page to return to
    "org.forms.InviteForm.patient_ref": 64,
    "scheduling.forms.ConfirmImportForm.content": None,  # the file, checked again
    "scheduling.forms.EnrolForm.patient_ref": 64,
    "scheduling.forms.EnrolForm.anchor": None,  # parsed as a date and time
    "scheduling.forms.EnrolForm.tz": 64,  # enrolment.timezone, patient.timezone
    "scheduling.forms.EnrolForm.email": 254,
    "scheduling.forms.EnrolForm.phone": 32,
    "scheduling.forms.ProtocolForm.name": 200,
    "scheduling.forms.ProtocolForm.slug": 64,
    "scheduling.forms.ProtocolForm.anchor_label": 100,
    "scheduling.forms.ProtocolForm.description": None,  # Text
    "scheduling.forms.TimepointForm.label": 100,
    "scheduling.forms.TimepointForm.offset": 16,
    "scheduling.forms.TimepointForm.window_opens": 16,
    "scheduling.forms.TimepointForm.window_closes": 16,
    "scheduling.forms.TimepointForm.reminders": None,  # JSON list of offsets
    "scheduling.forms.WithdrawForm.reason": None,  # Text (500, as the API)
    "scheduling.forms.WithdrawForm.back": None,  # a page to return to
}


def _subclasses(cls: type) -> Iterator[type]:
    subs: list[type] = cls.__subclasses__()
    for sub in subs:
        yield sub
        yield from _subclasses(sub)


def engage_forms() -> list[type[Form]]:
    for module in pkgutil.walk_packages(engage.__path__, "engage."):
        if ".text" not in module.name and module.name != "engage.console":
            importlib.import_module(module.name)
    return sorted({cls for cls in _subclasses(Form) if cls.__module__.startswith("engage.")
                   and cls not in (BaseForm, BaseSubForm)},
                  key=lambda c: f"{c.__module__}.{c.__name__}")


def text_fields(app: Any) -> list[tuple[str, Any]]:
    found = []
    with app.test_request_context(method="POST"):
        for cls in engage_forms():
            form = cls(meta={"csrf": False}) if issubclass(cls, BaseForm) else cls()
            for field in form:
                if isinstance(field, StringField) and field.type != "CSRFTokenField":
                    name = f"{cls.__module__.removeprefix('engage.')}.{cls.__name__}"
                    found.append((f"{name}.{field.short_name}", field))
    return found


def test_every_form_cleans_its_input_and_caps_its_length(app):
    plain = [f"{cls.__module__}.{cls.__name__}" for cls in engage_forms()
             if not issubclass(cls, BaseForm | BaseSubForm)]
    assert plain == [], "make these forms subclass engage.core.inputs.BaseForm"


def test_every_text_field_fits_the_column_it_is_stored_in(app):
    problems = []
    for name, field in text_fields(app):
        if name not in STORAGE:
            problems.append(f"{name}: add it to STORAGE with the column it is stored in")
            continue
        maxima = [v.max for v in field.validators if isinstance(v, Length) and v.max >= 0]
        if not maxima:
            problems.append(f"{name}: no length limit")
        elif STORAGE[name] is not None and min(maxima) > STORAGE[name]:  # type: ignore[operator]
            problems.append(f"{name}: takes {min(maxima)}, the column holds {STORAGE[name]}")
    assert problems == []


def test_storage_lengths_are_the_columns_lengths(app):
    """The table above against the models, where the field names a column."""
    from engage.alerts.models import CrisisContact
    from engage.patients.models import Patient
    from engage.scheduling.models import Protocol, Timepoint

    columns = {
        "alerts.forms.CrisisContactForm.name": CrisisContact.name,
        "alerts.forms.CrisisContactForm.note": CrisisContact.note,
        "scheduling.forms.ProtocolForm.slug": Protocol.slug,
        "scheduling.forms.ProtocolForm.name": Protocol.name,
        "scheduling.forms.TimepointForm.offset": Timepoint.offset,
        "scheduling.forms.EnrolForm.phone": Patient.phone,
        "scheduling.forms.EnrolForm.email": Patient.email,
        "org.forms.InviteForm.patient_ref": Patient.ref,
    }
    for name, column in columns.items():
        assert STORAGE[name] == column.type.length, name


@pytest.mark.parametrize("raw, line, text", [
    ("plain", "plain", "plain"),
    ("a\x00b", "ab", "ab"),
    ("two\nlines\r\nand\ttab", "two lines and tab", "two\nlines\r\nand\ttab"),
    ("bell\x07 esc\x1b del\x7f c1\x85", "bell esc del c1", "bell esc del c1"),
    ("evil\u202egnp.exe", "evilgnp.exe", "evilgnp.exe"),
    ("\u2066isolate\u2069", "isolate", "isolate"),
    ("\ud800lone", "lone", "lone"),
    # Arabic with its ordinary marks is left as written.
    ("شكراً \u200fللممرضات\u061c 123", "شكراً \u200fللممرضات\u061c 123",
     "شكراً \u200fللممرضات\u061c 123"),
])
def test_cleaning(raw, line, text):
    assert clean_line(raw) == line
    assert clean_text(raw) == text
    assert has_bad_characters(raw) == (clean_text(raw) != raw)


def test_a_form_field_is_cleaned_and_an_over_long_one_explained(app, auth, client,
                                                                 make_user, make_service, db):
    from engage.alerts.models import Alert
    from tests.helpers import csrf_from, text_of

    service = make_service()
    user = make_user("clinician", services=[service])
    auth.login(user.email)
    alert = Alert(service_id=service.id, kind="comment-staff")
    db.session.add(alert)
    db.session.commit()
    page = client.get(f"/alerts/{alert.id}")
    r = client.post(f"/alerts/{alert.id}/acknowledge",
                    data={"csrf_token": csrf_from(page), "note": "x" * 2001})
    assert r.status_code in (200, 400)
    assert "2000 characters or fewer" in text_of(r)
    assert db.session.get(Alert, alert.id).acknowledged_at is None
    r = client.post(f"/alerts/{alert.id}/acknowledge",
                    data={"csrf_token": csrf_from(page), "note": "Called\x00 back \u202eok"})
    assert r.status_code in (302, 303)
    db.session.expire_all()
    assert db.session.get(Alert, alert.id).acknowledgement_note == "Called back ok"


def test_a_survey_answer_is_cleaned(client, make_invitation, db):
    from engage.survey.models import Answer
    from tests.helpers import form_token_from

    invitation, token = make_invitation("fft")
    start = client.get(f"/s/{token}")
    client.post(f"/s/{token}", data={"respondent": "self", "form_token": form_token_from(start)})
    page = client.get(f"/s/{token}/q/1")
    r = client.post(f"/s/{token}/q/1", data={
        "form_token": form_token_from(page), "fft-1": "1",
        "fft-2": "Kind\x00 staff \u202etxet desrever"})
    assert r.status_code == 303
    answer = db.session.scalar(select(Answer).where(Answer.link_id == "fft-2"))
    assert answer.value_text == "Kind staff txet desrever"


def test_the_api_refuses_control_characters_with_a_problem(client, make_service, db):
    from engage.api.services import create_api_key

    service = make_service()
    _row, key = create_api_key("EHR", scope="write", services=[service])
    db.session.commit()
    r = client.post("/api/v1/enrolments", headers={"Authorization": f"Bearer {key}"},
                    json={"patient_ref": "MRN\x001", "protocol": "x"})
    assert r.status_code == 422 and r.mimetype == "application/problem+json"
    assert "control" in r.get_json()["errors"]["patient_ref"]


@pytest.mark.parametrize("path, body", [
    ("/login?next=%ff", None),
    ("/login", b"email=a%ff%fe&password=x"),
    ("/login", b"email=\xff\xfe&password=x"),
])
def test_invalid_utf8_is_a_400(client, path, body):
    if body is None:
        r = client.get(path)
    else:
        r = client.post(path, data=body, content_type="application/x-www-form-urlencoded")
    assert r.status_code == 400


def test_bidi_controls_already_stored_cannot_disguise_a_comment(
    client, auth, make_user, make_service, db,
):
    """Text stored before the controls were cleaned (or by another way in) is shown without
    them on staff and council pages; Arabic still reads as written."""
    from engage.feedback.models import FeedbackItem
    from engage.feedback.services import intake

    service = make_service()
    item = intake(service=service, text="الممرضات لطيفات", source="web", language="ar")
    item.text = "Invoice for \u202egnp.exe\u202c and الممرضات لطيفات"
    db.session.commit()
    auth.login(make_user("clinician", services=[service]).email)
    html = client.get(f"/feedback/items/{item.id}").get_data(as_text=True)
    assert "\u202e" not in html and "\u202c" not in html
    assert "gnp.exe" in html and "الممرضات لطيفات" in html
    listed = client.get("/feedback").get_data(as_text=True)
    assert "\u202e" not in listed
    assert db.session.get(FeedbackItem, item.id).text.startswith("Invoice for \u202e")
