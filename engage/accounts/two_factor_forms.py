"""Forms of the second factor: the code at login, setting up, turning off, new codes."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import StringField
from wtforms.validators import DataRequired, Length

from engage.core.inputs import BaseForm


class CodeForm(BaseForm):
    """The code from the authenticator app, or a recovery code (login, turning off)."""

    code = StringField(
        _l("Code"),
        description=_l("The 6-digit code from your authenticator app, or one of your "
                       "recovery codes."),
        validators=[DataRequired(_l("Enter the code.")),
                    Length(max=40, message=_l("That is not a code: it is too long."))],
    )


class SetupForm(BaseForm):
    """The first code from a newly added authenticator, proving the app has the secret."""

    code = StringField(
        _l("Code from the app"),
        description=_l("Your authenticator app shows a new 6-digit code every 30 seconds."),
        validators=[DataRequired(_l("Enter the 6-digit code.")),
                    Length(max=40, message=_l("That is not a code: it is too long."))],
    )
