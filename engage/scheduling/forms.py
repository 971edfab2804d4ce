"""Forms of the protocol pages. The rules live in the services; these only carry input.

Fields have no validators of their own (beyond CSRF and the service select):
:class:`engage.scheduling.services.SchedulingError` says what is wrong, and the
views put each message beside its field.
"""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf.file import FileField
from wtforms import (
    FieldList,
    FormField,
    HiddenField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)

from engage.core.inputs import BaseForm, BaseSubForm, max_length

#: i18n: how a timepoint reaches the patient, in the protocol editor
CHANNEL_LABELS = {
    "patient": _l("Patient's preference"),
    "email": _l("Email"),
    "sms": _l("Text message (SMS)"),
}
#: i18n: how a patient came to be enrolled, shown to staff
SOURCE_LABELS = {
    "web": _l("staff page"),
    "csv": _l("CSV file"),
    "cli": _l("command line"),
    "api": _l("API"),
}
#: The most timepoint rows the editor takes.
MAX_ROWS = 100
#: The checked file carried back for confirmation (packed; never stored as it is): far
#: above any real file, only a guard against a crafted request.
CONTENT_MAX = 8 * 1024 * 1024
#: What a new, empty timepoint row starts with.
EMPTY_ROW = {"window_opens": "0", "window_closes": "+7d", "channel": "patient"}


class TimepointForm(BaseSubForm):
    """One row of the timepoints table; a row left blank is ignored."""

    label = StringField(_l("Label"), validators=[max_length(100)])
    offset = StringField(_l("Due"), validators=[max_length(16)])
    instruments = SelectMultipleField(_l("Questionnaires"), validate_choice=False)
    window_opens = StringField(_l("Window opens"), default="0", validators=[max_length(16)])
    window_closes = StringField(_l("Window closes"), default="+7d",
                                validators=[max_length(16)])
    reminders = StringField(_l("Reminders"))
    channel = SelectField(_l("Channel"), validate_choice=False, default="patient")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Set here, not in the declaration: WTForms 3.3 deprecates tuples passed there.
        self.channel.choices = list(CHANNEL_LABELS.items())

    def is_blank(self) -> bool:
        return not any(((self.label.data or "").strip(), (self.offset.data or "").strip(),
                        self.instruments.data, (self.reminders.data or "").strip()))

    def reminder_list(self) -> list[str]:
        return [r.strip() for r in (self.reminders.data or "").split(",") if r.strip()]


class ProtocolForm(BaseForm):
    name = StringField(_l("Name"), validators=[max_length(200)])
    slug = StringField(_l("Identifier"), validators=[max_length(64)],
                       description=_l("Used in CSV files and the API, e.g. "
                                      "depression-followup. Lower-case letters, digits and "
                                      "hyphens."))
    service = SelectField(_l("Service"), coerce=int)
    anchor_label = StringField(_l("What the timepoints count from"),
                               validators=[max_length(100)],
                               description=_l("For example: surgery date, first visit."))
    description = TextAreaField(_l("Description"))
    timepoints = FieldList(FormField(TimepointForm), min_entries=0,
                           max_entries=MAX_ROWS)


class EnrolForm(BaseForm):
    patient_ref = StringField(_l("Patient reference (MRN)"), validators=[max_length(64)])
    anchor = StringField(_l("Anchor date and time"), validators=[max_length(40)],
                         description=_l("For example 2026-12-01 or 2026-12-01T09:00, in the "
                                        "patient's time zone. A date alone means 09:00."))
    tz = StringField(_l("Time zone"), default="Europe/London", validators=[max_length(64)])
    email = StringField(_l("Email"), validators=[max_length(254)])
    phone = StringField(_l("Mobile number"), validators=[max_length(32)],
                        description=_l("International format, e.g. +447700900123."))
    language = SelectField(_l("Language"), validate_choice=False)

    def as_enrolment(self, slug: str) -> dict[str, Any]:
        """The input as :func:`engage.scheduling.services.parse_enrolment` takes it."""
        return {"patient_ref": self.patient_ref.data, "protocol": slug,
                "anchor": self.anchor.data, "tz": self.tz.data, "email": self.email.data,
                "phone": self.phone.data, "language": self.language.data}


class WithdrawForm(BaseForm):
    reason = StringField(_l("Reason"), validators=[max_length(500)])
    #: Where to go afterwards: ``patient`` for the patient page, else the protocol page.
    back = HiddenField()


class UploadForm(BaseForm):
    file = FileField(_l("CSV file"))


class ConfirmImportForm(BaseForm):
    #: The checked file, packed; checked again on confirmation, never trusted.
    content = HiddenField(validators=[max_length(CONTENT_MAX)])


class ToggleForm(BaseForm):
    """Only a button: activate or deactivate a protocol."""
