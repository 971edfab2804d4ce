"""Forms of the staff feedback pages. They carry input and CSRF; the services say what is wrong."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import (
    BooleanField,
    HiddenField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)

from engage.core.inputs import BaseForm, max_length
from engage.feedback.services import MAX_TEXT


class ActionForm(BaseForm):
    """Only the CSRF token: for buttons whose meaning is in the button itself."""


class StaffEntryForm(BaseForm):
    service = SelectField(_l("Service"), coerce=int)
    received_via = SelectField(_l("How it reached us"))
    received_on = StringField(_l("Date received"), validators=[max_length(32)],
                              description=_l("For example 2026-11-30. Leave empty for today."))
    respondent = SelectField(_l("Who gave it"))
    question = StringField(_l("Question they answered (if any)"),
                           description=_l("For example: What could we do better?"))
    text = TextAreaField(_l("The comment, in their words"), validators=[max_length(MAX_TEXT)])
    language = SelectField(_l("Language of the comment"))
    patient_ref = StringField(_l("Patient reference (MRN), if known"),
                              validators=[max_length(64)])
    contact_name = StringField(_l("Name"), validators=[max_length(200)])
    contact_email = StringField(_l("Email"), validators=[max_length(254)])
    contact_phone = StringField(_l("Phone"), validators=[max_length(32)])
    consent = BooleanField(_l("They agreed that we contact them about this comment"))


class ThemesForm(BaseForm):
    themes = SelectMultipleField(_l("Themes"), coerce=int, validate_choice=False)
    sentiment = SelectField(_l("Sentiment"), coerce=int, validate_choice=False)
    back = HiddenField()


class StatusForm(BaseForm):
    status = SelectField(_l("Status"), validate_choice=False)
    note = StringField(_l("Note (optional)"))


class AssignForm(BaseForm):
    assignee = SelectField(_l("Assigned to"), coerce=int, validate_choice=False)


class RouteForm(BaseForm):
    team = SelectField(_l("Team"), coerce=int, validate_choice=False)


class UrgencyForm(BaseForm):
    urgency = SelectField(_l("Urgency"), validate_choice=False)


class SafetyLevelForm(BaseForm):
    level = SelectField(_l("Safety level"), validate_choice=False)
    reason = TextAreaField(_l("Why"))


class NoteForm(BaseForm):
    note = TextAreaField(_l("Note"))


class ReplyForm(BaseForm):
    template = SelectField(_l("Start from a template"), validate_choice=False)
    channel = SelectField(_l("Send by"), validate_choice=False)
    subject = StringField(_l("Subject"), validators=[max_length(200)])
    body = TextAreaField(_l("Reply"))
