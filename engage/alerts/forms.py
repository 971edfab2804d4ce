"""Acknowledging an alert."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import TextAreaField
from wtforms.validators import Length


class AcknowledgeForm(FlaskForm):
    note = TextAreaField(
        _l("What you did (optional)"),
        validators=[Length(max=2000, message=_l("Keep the note under 2,000 characters."))],
    )
