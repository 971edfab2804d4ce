"""Factories for feedback tests: items, teams, routing rules, a submitted FFT with a comment."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest

import surveys
from engage.extensions import db as _db

_seq = itertools.count(1)


@pytest.fixture
def make_item(db: Any, make_service: Callable[..., Any]) -> Callable[..., Any]:
    """``make_item(text, **intake_kwargs)``: a comment taken in as staff would; committed."""
    from engage.feedback.services import intake

    def make(text: str = "The nurses were kind and caring.", **kw: Any) -> Any:
        kw.setdefault("service", make_service())
        kw.setdefault("source", "staff")
        item = intake(text=text, **kw)
        _db.session.commit()
        return item

    return make


@pytest.fixture
def make_team(db: Any) -> Callable[..., Any]:
    from engage.teams.services import save_team

    def make(name: str | None = None, members: list[Any] | None = None, **kw: Any) -> Any:
        n = next(_seq)
        team = save_team(None, slug=kw.pop("slug", f"team-{n}"), name=name or f"Team {n}",
                         members=members or [], **kw)
        _db.session.commit()
        return team

    return make


@pytest.fixture
def theme(db: Any) -> Callable[[str], Any]:
    """``theme(key)``: the default taxonomy's theme with that key."""
    from sqlalchemy import select

    from engage.feedback.models import Theme
    from engage.feedback.themes import ensure_default_themes

    def get(key: str) -> Any:
        ensure_default_themes()
        found = _db.session.scalar(select(Theme).where(Theme.key == key))
        assert found is not None, key
        return found

    return get


@pytest.fixture
def make_rule(db: Any) -> Callable[..., Any]:
    from engage.feedback.models import RoutingRule

    def make(theme: Any, team: Any, service: Any = None) -> Any:
        rule = RoutingRule(theme_id=theme.id, team_id=team.id,
                           service_id=service.id if service else None)
        _db.session.add(rule)
        _db.session.commit()
        return rule

    return make


@pytest.fixture
def submit_fft(make_invitation: Callable[..., Any]) -> Callable[..., Any]:
    """``submit_fft(comment, **invitation_kwargs)``: a sent FFT with that comment; the response."""
    from engage.survey.services import save_answers, start_response, submit

    def make(comment: str, rating: str | None = None, **kw: Any) -> Any:
        invitation, _token = make_invitation("fft", **kw)
        response = start_response(invitation)
        fft = surveys.get("fft")
        save_answers(response, {"fft-1": rating or fft.item("fft-1").options[0].code,
                                "fft-2": comment})
        submit(response)
        _db.session.commit()
        return response

    return make
