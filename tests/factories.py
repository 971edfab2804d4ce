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
def make_patient(db: Any, make_service: Callable[..., Any]) -> Callable[..., Any]:
    """``make_patient(ref=None, service=None, **contact)``: a record of ``service`` (a new
    service when none is given), as every patient record belongs to one service."""
    from engage.patients.services import get_or_create_patient

    def make(ref: str | None = None, service: Any = None, **kw: Any) -> Any:
        patient, _ = get_or_create_patient(service or make_service(),
                                           ref or f"MRN{next(_seq):06d}", **kw)
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
        # A patient is invited by the service whose record it is.
        service = service or (patient.service if patient is not None else make_service())
        invitation, token = create_invitation(
            patient or make_patient(service=service), service, instrument_id, **kw
        )
        _db.session.commit()
        return invitation, token

    return make


@pytest.fixture
def make_protocol(db: Any, make_service: Callable[..., Any]) -> Callable[..., Any]:
    """``make_protocol()``: depression-followup as the demo ships it (or your timepoints)."""
    from engage.scheduling.services import TimepointSpec, save_protocol

    def make(slug: str | None = None, timepoints: list[Any] | None = None,
             service: Any = None) -> Any:
        specs = timepoints or [
            TimepointSpec(label, offset, ["phq-9", "gad-7"], "0", "+7d", ["+3d", "+6d"])
            for label, offset in (("Baseline", "0"), ("2 weeks", "+2w"), ("4 weeks", "+4w"),
                                  ("8 weeks", "+8w"), ("12 weeks", "+12w"))
        ]
        protocol = save_protocol(slug or f"protocol-{next(_seq)}", "Depression follow-up",
                                 service or make_service(), specs)
        _db.session.commit()
        return protocol

    return make


@pytest.fixture
def enrol_patient(db: Any) -> Callable[..., Any]:
    """``enrol_patient(protocol, anchor, **fields)``: enrolled and committed."""
    from engage.scheduling.services import enrol, parse_enrolment

    def make(protocol: Any, anchor: str, **fields: Any) -> Any:
        data = {"patient_ref": f"MRN{next(_seq):06d}", "protocol": protocol.slug,
                "anchor": anchor, "tz": "Europe/London", "email": "pat@example.org", **fields}
        enrolment = enrol(parse_enrolment(data, ("en", "es", "ar")), source="cli")
        _db.session.commit()
        return enrolment

    return make


@pytest.fixture
def make_protocol_committed(committed_db: Any) -> Callable[..., Any]:
    """One patient enrolled on a one-timepoint protocol, really committed (for other
    connections and processes); anchored 2027-03-01T10:00 Europe/London."""
    from engage.org.services import create_service
    from engage.scheduling.services import TimepointSpec, enrol, parse_enrolment, save_protocol

    def make() -> Any:
        service = create_service(f"service-{next(_seq)}", "Committed clinic")
        protocol = save_protocol(f"protocol-{next(_seq)}", "One step", service,
                                 [TimepointSpec("Baseline", "0", ["phq-2"], "0", "+7d")])
        enrolment = enrol(parse_enrolment(
            {"patient_ref": f"MRN{next(_seq):06d}", "protocol": protocol.slug,
             "anchor": "2027-03-01T10:00", "tz": "Europe/London", "email": "p@example.org"},
            ("en", "es", "ar")), source="cli")
        _db.session.commit()
        return enrolment

    return make
