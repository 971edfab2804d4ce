"""The theme taxonomy: seeding the default, and the admin's add, rename, move, merge, retire.

Every change is a :class:`ThemeEvent`. Nothing is deleted: a merged theme's items move
to the theme that takes over (their history says so), and a retired theme keeps its
items but gets no new suggestions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from engage.audit.services import record
from engage.extensions import db
from engage.feedback.models import ItemTheme, RoutingRule, Theme, ThemeEvent
from engage.feedback.text.taxonomy import MAJOR_CATEGORIES

NAME_MAX = 120


class ThemeError(ValueError):
    """A taxonomy change that cannot be made; the message says why (translated)."""

    def __init__(self, message: Any, field: str | None = None) -> None:
        super().__init__(str(message))
        self.field = field


def ensure_default_themes() -> None:
    """Create the default taxonomy the first time any theme is needed."""
    if db.session.scalar(select(Theme.id).limit(1)) is not None:
        return
    try:
        with db.session.begin_nested():
            for category, names in MAJOR_CATEGORIES.items():
                for name in names:
                    db.session.add(Theme(key=name, name=name, category=category))
    except IntegrityError:
        pass  # another request seeded it at the same moment


def all_themes() -> list[Theme]:
    """Every theme, active first, by category and name."""
    ensure_default_themes()
    return list(db.session.scalars(
        select(Theme).order_by(Theme.status != "active", Theme.category, Theme.name)))


def active_themes() -> list[Theme]:
    ensure_default_themes()
    return list(db.session.scalars(
        select(Theme).where(Theme.status == "active").order_by(Theme.category, Theme.name)))


def categories() -> list[str]:
    """The major categories in use, the framework's first, then any an admin added."""
    used = set(db.session.scalars(select(Theme.category).distinct()))
    ordered = [c for c in MAJOR_CATEGORIES if c in used]
    return ordered + sorted(used - set(ordered))


def resolve(theme: Theme) -> Theme | None:
    """The active theme that ``theme`` now is: itself, or where it was merged; None if retired."""
    seen = set()
    while theme.status == "merged" and theme.merged_into is not None and theme.id not in seen:
        seen.add(theme.id)
        theme = theme.merged_into
    return theme if theme.status == "active" else None


@dataclass(frozen=True)
class ThemeIndex:
    """Model label (a theme key) -> the active theme that receives its suggestions."""

    by_key: dict[str, Theme]

    def get(self, key: str) -> Theme | None:
        return self.by_key.get(key)


def theme_index() -> ThemeIndex:
    ensure_default_themes()
    themes = list(db.session.scalars(select(Theme)))
    index = {}
    for theme in themes:
        target = resolve(theme)
        if target is not None:
            index[theme.key] = target
    return ThemeIndex(index)


def _event(theme: Theme, action: str, user: Any, **detail: Any) -> None:
    db.session.add(ThemeEvent(theme_id=theme.id, action=action,
                              user_id=getattr(user, "id", None), detail=detail))


def _clean(value: str, field: str, missing: Any) -> str:
    """``value`` with its white space folded; ThemeError on ``field`` if empty or too long."""
    value = re.sub(r"\s+", " ", value or "").strip()
    if not value:
        raise ThemeError(missing, field)
    if len(value) > NAME_MAX:
        raise ThemeError(_l("Use %(max)s characters or fewer.", max=NAME_MAX), field)
    return value


def _clean_name(name: str) -> str:
    return _clean(name, "name", _l("Enter a name for the theme."))


def _clean_category(category: str) -> str:
    return _clean(category, "category", _l("Choose a category."))


def _check_unique_name(name: str, except_id: int | None = None) -> None:
    query = select(Theme.id).where(func.lower(Theme.name) == name.lower(),
                                   Theme.status == "active")
    if except_id is not None:
        query = query.where(Theme.id != except_id)
    if db.session.scalar(query) is not None:
        raise ThemeError(_l("An active theme already has that name."), "name")


def create_theme(name: str, category: str, user: Any, description: str = "") -> Theme:
    """A new active theme. Its key is its first name, so the model can learn it from
    staff confirmations once there are enough of them."""
    ensure_default_themes()
    name = _clean_name(name)
    category = _clean_category(category)
    _check_unique_name(name)
    key = name
    n = 2
    while db.session.scalar(select(Theme.id).where(Theme.key == key)) is not None:
        key = f"{name} ({n})"
        n += 1
    theme = Theme(key=key, name=name, category=category, description=description.strip())
    db.session.add(theme)
    db.session.flush()
    _event(theme, "create", user, name=name, category=category)
    record("create", "theme", theme.id, name=name, category=category)
    return theme


def edit_theme(theme: Theme, user: Any, *, name: str, category: str,
               description: str = "") -> None:
    """Rename, move to another category or describe; each change is kept in the history."""
    name = _clean_name(name)
    category = _clean_category(category)
    if name != theme.name:
        if theme.status == "active":
            _check_unique_name(name, except_id=theme.id)
        _event(theme, "rename", user, old=theme.name, new=name)
        theme.name = name
    if category != theme.category:
        _event(theme, "move", user, old=theme.category, new=category)
        theme.category = category
    if description.strip() != (theme.description or ""):
        _event(theme, "describe", user)
        theme.description = description.strip()
    db.session.flush()
    record("update", "theme", theme.id, name=theme.name, category=theme.category)


def merge_theme(source: Theme, target: Theme, user: Any) -> int:
    """Fold ``source`` into ``target``: its items and routing rules move.

    Returns the items that carried ``source`` (suggested or confirmed; a rejected
    suggestion moves too, so the model still learns from it, but is not counted).
    An item that had both keeps one row, with the stronger state (confirmed over
    suggested) and the higher confidence. A rule of ``source`` for a service (or for
    any service) that ``target`` already has a rule for is dropped: one theme and
    service route to one team.
    """
    if source.id == target.id:
        raise ThemeError(_l("Choose a different theme to merge into."), "target")
    if source.status != "active" or target.status != "active":
        raise ThemeError(_l("Only active themes can be merged."), "target")
    rank = {"confirmed": 2, "suggested": 1, "rejected": 0}
    moved = 0
    rows = list(db.session.scalars(select(ItemTheme).where(ItemTheme.theme_id == source.id)))
    theirs = {t.item_id: t for t in db.session.scalars(
        select(ItemTheme).where(ItemTheme.theme_id == target.id,
                                ItemTheme.item_id.in_([r.item_id for r in rows])))}
    for row in rows:
        other = theirs.get(row.item_id)
        if other is None:
            db.session.add(ItemTheme(item_id=row.item_id, theme_id=target.id,
                                     confidence=row.confidence, status=row.status))
        else:
            if rank[row.status] > rank[other.status]:
                other.status = row.status
            if (row.confidence or 0) > (other.confidence or 0):
                other.confidence = row.confidence
        moved += row.status != "rejected"
        db.session.delete(row)
    db.session.flush()
    for rule in db.session.scalars(select(RoutingRule).where(RoutingRule.theme_id == source.id)):
        duplicate = db.session.scalar(select(RoutingRule.id).where(
            RoutingRule.theme_id == target.id,
            (RoutingRule.service_id == rule.service_id) if rule.service_id is not None
            else RoutingRule.service_id.is_(None)))
        if duplicate is not None:
            db.session.delete(rule)
        else:
            rule.theme_id = target.id
    db.session.execute(update(Theme).where(Theme.merged_into_id == source.id)
                       .values(merged_into_id=target.id))
    source.status = "merged"
    source.merged_into_id = target.id
    _event(source, "merge", user, into=target.id, into_name=target.name, items=moved)
    _event(target, "absorb", user, source=source.id, source_name=source.name, items=moved)
    db.session.flush()
    record("merge", "theme", source.id, into=target.id, items=moved)
    return moved


def retire_theme(theme: Theme, user: Any) -> None:
    """No new suggestions or choices; items already themed keep it."""
    if theme.status != "active":
        raise ThemeError(_l("Only an active theme can be retired."))
    theme.status = "retired"
    _event(theme, "retire", user)
    db.session.flush()
    record("retire", "theme", theme.id)


def restore_theme(theme: Theme, user: Any) -> None:
    """Bring back a retired theme (a merged one stays merged: its items have moved)."""
    if theme.status != "retired":
        raise ThemeError(_l("Only a retired theme can be restored."))
    _check_unique_name(theme.name, except_id=theme.id)
    theme.status = "active"
    _event(theme, "restore", user)
    db.session.flush()
    record("restore", "theme", theme.id)


def theme_counts() -> dict[int, int]:
    """Theme id -> items that carry it now (confirmed, or suggested and not yet triaged)."""
    return dict(db.session.execute(  # type: ignore[arg-type]
        select(ItemTheme.theme_id, func.count())
        .where(ItemTheme.status != "rejected").group_by(ItemTheme.theme_id)).all())
