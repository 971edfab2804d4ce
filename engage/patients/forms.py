"""The buttons on a patient's page that stop and resume messages."""

from flask_babel import lazy_gettext as _l
from wtforms import BooleanField
from wtforms.validators import DataRequired

from engage.core.inputs import BaseForm


class StopMessagesForm(BaseForm):
    """Only a button: staff stop every message, for instance at the patient's request."""


class ResumeMessagesForm(BaseForm):
    # Resuming overrides the patient's own choice, so staff confirm the patient asked.
    asked = BooleanField(
        _l("The patient has asked to receive messages again."),
        validators=[DataRequired(_l("Confirm that the patient asked to receive messages "
                                    "again."))],
    )
