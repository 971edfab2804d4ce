"""Acknowledging an alert."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import TextAreaField
from wtforms.validators import Length

NOTE_MAX = 2000


class AcknowledgeForm(FlaskForm):
    note = TextAreaField(
        _l("What you did (optional)"),
        validators=[Length(max=NOTE_MAX, message=_l(
            "Keep the note to %(max)d characters or fewer.", max=NOTE_MAX))],
    )
