"""Inviting a patient to a questionnaire from the staff pages."""

from flask_babel import lazy_gettext as _l
from wtforms import SelectField, StringField
from wtforms.validators import DataRequired, Length, Regexp

from engage.core.inputs import BaseForm


class InviteForm(BaseForm):
    patient_ref = StringField(
        _l("Patient reference (MRN)"),
        validators=[DataRequired(_l("Enter the patient's reference.")), Length(max=64),
                    Regexp(r"^[A-Za-z0-9/_.-]+$",
                           message=_l("Use letters, digits and / _ . - only."))],
    )
    instrument = SelectField(_l("Questionnaire"), validators=[DataRequired()])
    language = SelectField(_l("Language"), validators=[DataRequired()])
