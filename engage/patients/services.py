"""Creating and finding patients, always within one service (docs/security.md)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from engage.audit.services import record
from engage.extensions import db
from engage.org.models import Service
from engage.patients.models import Patient

#: The fields whose change is audited (by name only: the values stay out of the log).
CONTACT_FIELDS = ("language", "email", "phone", "timezone")


def find_patient(service: Service, ref: str) -> Patient | None:
    """The service's own record of the patient with reference ``ref``, if it has one."""
    return db.session.scalar(
        select(Patient).where(Patient.service_id == service.id, Patient.ref == ref.strip()))


def get_or_create_patient(
    service: Service, ref: str, *, language: str | None = None, email: str | None = None,
    phone: str | None = None, timezone: str | None = None,
) -> tuple[Patient, bool]:
    """``service``'s record of the patient with hospital reference ``ref``, created when new.

    Only ``service``'s own record is ever found or changed: another service's record of
    the same reference is neither read nor revealed. Given contact details and language
    update an existing record (``None`` leaves a field as it is), and a change is audited
    with the names of the fields that changed, never their values. Returns
    ``(patient, created)``.
    """
    ref = ref.strip()
    if not ref:
        raise ValueError("a patient reference is required")
    patient = find_patient(service, ref)
    if patient is None:
        patient = Patient(service_id=service.id, ref=ref, language=language or "en",
                          email=email, phone=phone)
        if timezone is not None:
            patient.timezone = timezone
        try:
            # In a savepoint: when another request created the same record a moment ago,
            # the unique reference refuses this one and that record is used instead.
            with db.session.begin_nested():
                db.session.add(patient)
        except IntegrityError:
            patient = find_patient(service, ref)
            if patient is None:
                raise
        else:
            return patient, True
    wanted = {"language": language or None, "email": email, "phone": phone,
              "timezone": timezone}
    changed = [name for name in CONTACT_FIELDS
               if wanted[name] is not None and getattr(patient, name) != wanted[name]]
    for name in changed:
        setattr(patient, name, wanted[name])
    db.session.flush()
    if changed:
        record("update", "patient", patient.id, patient_id=patient.id, fields=changed)
    return patient, False
