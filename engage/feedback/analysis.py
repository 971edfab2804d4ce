"""What the text tells us: themes, sentiment, safety level and personal details, for one
comment, with the model and rules in force, read through the app's session.

:mod:`engage.feedback.in_force` holds the statements and the per-process cache of the
parsed model and rules; :mod:`engage.feedback.text.reader` reads the comment.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import OperationalError, ProgrammingError

from engage.extensions import db
from engage.feedback import in_force
from engage.feedback.text.model import ThemeModel
from engage.feedback.text.reader import Analysis, Comment, read_comments
from engage.feedback.text.safety import SafetyRules

__all__ = ["Analysis", "active_model", "active_rules", "analyse", "analyse_many",
           "known_names"]

_ready: set[str] = set()
#: Staff names change rarely; read them again after this many seconds.
NAMES_TTL = 60.0
_names: dict[str, tuple[float, list[str]]] = {}


def _execute(sql: str) -> Sequence[Any]:
    # Through the session, which flushes first: a rule set saved in this transaction counts.
    return db.session.execute(text(sql)).all()


def _database() -> in_force.Execute | None:
    """How to read the app's database, or None while its tables do not exist yet
    (``engage feedback classify`` before ``engage db upgrade``: the shipped model and
    rules still answer). Asked once per database and process: tables do not go away."""
    url = str(db.engine.url)
    if url in _ready:
        return _execute
    try:
        with db.session.begin_nested():
            _execute(in_force.PROBE)
    except (OperationalError, ProgrammingError):
        return None
    _ready.add(url)
    return _execute


def active_model() -> tuple[ThemeModel, int | None]:
    """The model in force and its database id (None: the shipped default)."""
    return in_force.model(_database())


def active_rules() -> tuple[SafetyRules, int | None]:
    """The newest saved safety rules and their id (None: the shipped file)."""
    return in_force.rules(_database())


def known_names() -> list[str]:
    """Staff names, for the PII finder: comments often name the nurse or doctor."""
    url = str(db.engine.url)
    cached = _names.get(url)
    if cached is not None and time.monotonic() - cached[0] < NAMES_TTL:
        return cached[1]
    names = in_force.staff_names(_database())
    _names[url] = (time.monotonic(), names)
    return names


def analyse(text: str, question: str | None = None, language: str | None = None, *,
            extra_names: list[str] | tuple[str, ...] = ()) -> Analysis:
    """Themes, sentiment, safety level and PII of one comment, with the model and rules in
    force."""
    return analyse_many([(text, question, language)], extra_names=extra_names)[0]


def analyse_many(comments: Sequence[Comment], *,
                 extra_names: list[str] | tuple[str, ...] = ()) -> list[Analysis]:
    """:func:`analyse` for many ``(text, question, language)`` at once: the theme model
    reads them in one pass, which is most of the saving."""
    model, _model_id = active_model()
    rules, rules_id = active_rules()
    return read_comments(comments, model, rules,
                         rules_version=in_force.rules_version(rules, rules_id),
                         names=[*known_names(), *extra_names])
