"""Creating and finding patients."""

from __future__ import annotations

from sqlalchemy import select

from engage.extensions import db
from engage.patients.models import Patient


def get_or_create_patient(
    ref: str, *, language: str | None = None, email: str | None = None,
    phone: str | None = None, timezone: str | None = None,
) -> tuple[Patient, bool]:
    """The patient with hospital reference ``ref``, created when new.

    Given contact details and language update an existing patient; ``None``
    leaves a field as it is. Returns ``(patient, created)``.
    """
    ref = ref.strip()
    if not ref:
        raise ValueError("a patient reference is required")
    patient = db.session.scalar(select(Patient).where(Patient.ref == ref))
    created = patient is None
    if patient is None:
        patient = Patient(ref=ref, language=language or "en")
        db.session.add(patient)
    elif language:
        patient.language = language
    if email is not None:
        patient.email = email
    if phone is not None:
        patient.phone = phone
    if timezone is not None:
        patient.timezone = timezone
    db.session.flush()
    return patient, created
