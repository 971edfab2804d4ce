"""Acknowledging an alert; editing a crisis contact."""

from flask_babel import lazy_gettext as _l
from wtforms import SelectField, StringField, TextAreaField
from wtforms.validators import Length

from engage.core.inputs import BaseForm, max_length

NOTE_MAX = 2000


class AcknowledgeForm(BaseForm):
    note = TextAreaField(
        _l("What you did (optional)"),
        validators=[Length(max=NOTE_MAX, message=_l(
            "Keep the note to %(max)d characters or fewer.", max=NOTE_MAX))],
    )


class CrisisContactForm(BaseForm):
    """A crisis contact. The fields only carry input: ``save_crisis_contact`` says what is
    wrong, and the view puts each message beside its field."""

    service = SelectField(_l("Shown to patients of"), validate_choice=False)
    language = SelectField(
        _l("Language"), validate_choice=False,
        description=_l("Shown on pages in this language only, or on every page."))
    name = StringField(_l("Name"), validators=[max_length(120)],
                       description=_l("As patients will recognise it, e.g. Samaritans."))
    phone = StringField(_l("Phone number (optional if there is a text line)"),
                        validators=[max_length(40)],
                        description=_l("As patients should dial it, e.g. 116 123."))
    text = StringField(_l("Text line (optional if there is a phone number)"),
                       validators=[max_length(120)],
                       description=_l("As patients should read it, e.g. Text SHOUT to "
                                      "85258. A line naming one number becomes a link "
                                      "that opens the phone's messages."))
    hours = StringField(_l("When someone answers"), validators=[max_length(120)],
                        description=_l("e.g. 24 hours, every day."))
    note = StringField(_l("Who it is for (optional)"), validators=[max_length(200)],
                       description=_l("A few words, e.g. for people under 18."))
    position = StringField(_l("Order"), validators=[max_length(6)], description=_l(
        "Lower numbers come first. Leave it empty to put a new contact last."))


class ConfirmForm(BaseForm):
    """A button that needs nothing but the CSRF token (deleting a crisis contact)."""
