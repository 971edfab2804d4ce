"""Forms of the staff pages, the account page and the password links.

Password rules are not repeated here: the services check them (``passwords.py``) and the
views put their message on the field, so every way of setting a password says the same.
"""

from __future__ import annotations

import re
from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    EmailField,
    Field,
    PasswordField,
    SelectField,
    SelectMultipleField,
    StringField,
    ValidationError,
)
from wtforms.validators import DataRequired, EqualTo, Length, Regexp

from engage.accounts.passwords import MAX_LENGTH, MIN_LENGTH
from engage.core.inputs import BaseForm

#: Control characters (NUL breaks PostgreSQL text) and bidirectional overrides (which can
#: make a name read as another on the staff list).
_UNWANTED = re.compile("[\x00-\x1f\x7f\u202a-\u202e\u2066-\u2069]")
#: One @, something either side, a dot in the domain, no spaces or control characters: the
#: link email is what really checks the address.
EMAIL_PATTERN = r"^[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+\.[^@\s\x00-\x1f\x7f]+$"


def plain_text(form: FlaskForm, field: Field) -> None:
    """Refuse control and bidirectional-override characters."""
    if field.data and _UNWANTED.search(str(field.data)):
        raise ValidationError(_l("Remove the invisible or control characters."))


#: i18n: staff roles, shown to admins
ROLE_LABELS = {
    "admin": _l("Admin"),
    "staff": _l("Staff"),
    "clinician": _l("Clinician"),
    "safeguarding": _l("Safeguarding lead"),
    "safety_officer": _l("Clinical safety officer"),
    "council": _l("Patient council"),
}

PASSWORD_HINT = _l("At least %(min)d characters. Not your name or email address, and not a "
                   "common password. Three or four unrelated words are easy to remember.",
                   min=MIN_LENGTH)


def _new_password(label: str | None = None) -> PasswordField:
    return PasswordField(
        label or _l("New password"), description=PASSWORD_HINT,
        validators=[DataRequired(_l("Enter a new password.")),
                    Length(max=MAX_LENGTH, message=_l("Use at most %(max)d characters."))])


def _confirm_password() -> PasswordField:
    return PasswordField(
        _l("The new password again"),
        validators=[DataRequired(_l("Enter the new password again.")),
                    EqualTo("password", _l("The two passwords are not the same."))])


def _email_field(missing: Any) -> EmailField:
    """An email address: required (``missing`` says so), at most 254 characters, one @."""
    return EmailField(_l("Email address"), validators=[
        DataRequired(missing),
        Length(max=254, message=_l("Use at most %(max)d characters.")),
        Regexp(EMAIL_PATTERN, message=_l("Enter an email address like name@hospital.org."))])


class _StaffFields(BaseForm):
    name = StringField(_l("Name"), validators=[
        DataRequired(_l("Enter the person's name.")),
        Length(max=200, message=_l("Use at most %(max)d characters.")), plain_text])
    role = SelectField(_l("Role"), validate_choice=False)
    services = SelectMultipleField(
        _l("Services"), coerce=str, validate_choice=False,
        description=_l("Staff and clinicians see only the patients of their services."))
    language = SelectField(_l("Language of the interface and emails"), validate_choice=False)


class InviteForm(_StaffFields):
    email = _email_field(_l("Enter the person's email address."))


class EditForm(_StaffFields):
    pass


class ConfirmForm(BaseForm):
    """A button that needs nothing but the CSRF token."""


class SetPasswordForm(BaseForm):
    """The page an invitation or reset link opens."""

    password = _new_password()
    confirm = _confirm_password()


class ChangePasswordForm(BaseForm):
    current_password = PasswordField(
        _l("Current password"), validators=[DataRequired(_l("Enter your current password."))])
    password = _new_password()
    confirm = _confirm_password()


class LanguageForm(BaseForm):
    language = SelectField(_l("Language"), validate_choice=False)


class ForgotForm(BaseForm):
    email = _email_field(_l("Enter your email address."))
