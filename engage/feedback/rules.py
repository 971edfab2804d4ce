"""Saving the urgent-comment rules: every version is kept, the newest is in force."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from engage.audit.services import record
from engage.extensions import db
from engage.feedback.models import SafetyRuleSet
from engage.feedback.text.safety import RuleError, SafetyRules, validate_rules

#: Longest version name: stored on every comment with ``#<id>`` after it (40 in all).
VERSION_MAX = 30


def save_rules(data: dict[str, Any], user: Any, note: str = "") -> SafetyRuleSet:
    """Validate and store a new version of the rules; raises RuleError listing every problem."""
    problems = validate_rules(data)
    version = data.get("version") if isinstance(data, dict) else None
    if isinstance(version, str) and len(version.strip()) > VERSION_MAX:
        # Every comment records the version that checked it (with the set's id).
        problems.append(f"'version' must be {VERSION_MAX} characters or fewer")
    if problems:
        raise RuleError(problems)
    rules = SafetyRules.from_dict(data)  # as the checker will read them
    saved = SafetyRuleSet(rules=rules.to_dict(), note=(note or "").strip()[:2000],
                          created_by_id=getattr(user, "id", None))
    db.session.add(saved)
    db.session.flush()
    record("update", "safety_rules", saved.id, version=rules.version)
    return saved


def history() -> list[SafetyRuleSet]:
    return list(db.session.scalars(select(SafetyRuleSet).order_by(SafetyRuleSet.id.desc())))
