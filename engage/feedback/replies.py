"""Reply templates: built-in ones in every shipped language, and an admin's own, per language."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from engage.audit.services import record
from engage.extensions import db
from engage.feedback.models import ReplyTemplate


def _thanks(service: str) -> tuple[str, str]:
    return (_("Thank you for your feedback"),
            _("Thank you for taking the time to tell us about your care at %(service)s. "
              "We have read what you wrote and shared it with the team, so that we can "
              "learn from it.", service=service))


def _looking_into(service: str) -> tuple[str, str]:
    return (_("We are looking into your feedback"),
            _("Thank you for telling us about your experience at %(service)s. We are "
              "looking into what happened and will contact you again when we know more.",
              service=service))


def _changed(service: str) -> tuple[str, str]:
    return (_("What we changed after your feedback"),
            _("Thank you for your feedback about %(service)s. Because of what you and "
              "other patients told us, we have made a change: ", service=service))


def _call_us(service: str) -> tuple[str, str]:
    return (_("Please contact us about your feedback"),
            _("Thank you for your feedback about %(service)s. We would like to talk to "
              "you about it. Please reply to this message or call the service and ask "
              "for the patient experience team.", service=service))


#: i18n: names of the built-in reply templates, shown to staff
BUILTIN: dict[str, tuple[Any, Callable[[str], tuple[str, str]]]] = {
    "thanks": (_l("Thank you"), _thanks),
    "looking-into": (_l("We are looking into it"), _looking_into),
    "changed": (_l("What we changed"), _changed),
    "call-us": (_l("Please contact us"), _call_us),
}


def choices(language: str) -> list[tuple[str, str]]:
    """(value, name) of every template that can be used for a reply in ``language``."""
    options = [(f"builtin:{key}", str(name)) for key, (name, _f) in BUILTIN.items()]
    for template in db.session.scalars(
        select(ReplyTemplate).where(ReplyTemplate.active.is_(True),
                                    ReplyTemplate.language == language)
        .order_by(ReplyTemplate.name)
    ):
        options.append((f"template:{template.id}", template.name))
    return options


def fill(choice: str, language: str, service: str) -> tuple[str, str] | None:
    """(subject, body) of the chosen template in ``language``, or None if there is none."""
    kind, _sep, key = (choice or "").partition(":")
    if kind == "builtin" and key in BUILTIN:
        with force_locale(language):
            return BUILTIN[key][1](service)
    if kind == "template" and key.isdigit():
        template = db.session.get(ReplyTemplate, int(key))
        if template is not None and template.active and template.language == language:
            return (template.subject.replace("{service}", service),
                    template.body.replace("{service}", service))
    return None


class TemplateError(ValueError):
    """A template that cannot be saved; ``field`` names the field, the message what to fix."""

    def __init__(self, message: Any, field: str) -> None:
        super().__init__(str(message))
        self.field = field


def save_template(template: ReplyTemplate | None, user: Any, *, name: str, language: str,
                  subject: str, body: str, active: bool = True,
                  languages: tuple[str, ...] = ("en",)) -> ReplyTemplate:
    """Create or update an admin's template; raises TemplateError naming the field."""
    name, subject, body = name.strip(), subject.strip(), body.strip()
    if not name:
        raise TemplateError(_l("Enter a name for the template."), "name")
    if language not in languages:
        raise TemplateError(_l("Choose a language from the list."), "language")
    if not body:
        raise TemplateError(_l("Write the text of the reply."), "body")
    if template is None:
        template = ReplyTemplate(created_by_id=getattr(user, "id", None))
        db.session.add(template)
    template.name, template.language = name[:120], language
    template.subject, template.body, template.active = subject[:200], body, active
    db.session.flush()
    record("update", "reply_template", template.id)
    return template
