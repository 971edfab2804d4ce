"""Factories for models, as fixtures (a pytest plugin loaded by conftest)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest

from engage.extensions import db as _db

_seq = itertools.count(1)
PASSWORD = "correct-horse-battery"


@pytest.fixture
def make_service(db: Any) -> Callable[..., Any]:
    from engage.org.services import create_service

    def make(slug: str | None = None, name: str | None = None) -> Any:
        n = next(_seq)
        return create_service(slug or f"service-{n}", name or f"Service {n}")

    return make


@pytest.fixture
def make_user(db: Any, make_service: Callable[..., Any]) -> Callable[..., Any]:
    from engage.accounts.services import create_user

    def make(role: str = "staff", services: list[Any] | None = None, **kw: Any) -> Any:
        n = next(_seq)
        email = kw.pop("email", f"{role}{n}@hospital.test")
        user = create_user(email, role, PASSWORD, services=services or [], **kw)
        _db.session.commit()
        return user

    return make


@pytest.fixture
def make_patient(db: Any) -> Callable[..., Any]:
    from engage.patients.services import get_or_create_patient

    def make(ref: str | None = None, **kw: Any) -> Any:
        patient, _ = get_or_create_patient(ref or f"MRN{next(_seq):06d}", **kw)
        return patient

    return make


@pytest.fixture
def make_invitation(
    db: Any, make_patient: Callable[..., Any], make_service: Callable[..., Any]
) -> Callable[..., tuple[Any, str]]:
    """``make_invitation(instrument_id) -> (invitation, token)``; committed."""
    from engage.survey.services import create_invitation

    def make(instrument_id: str = "phq-9", patient: Any = None, service: Any = None,
             **kw: Any) -> tuple[Any, str]:
        invitation, token = create_invitation(
            patient or make_patient(), service or make_service(), instrument_id, **kw
        )
        _db.session.commit()
        return invitation, token

    return make
