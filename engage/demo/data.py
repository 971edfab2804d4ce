"""Demo data: two services, a login per role, 30 patients and six months of answers.

Everything goes through the same service functions the web pages use, so the
demo exercises the real paths (scores, bands, alerts, audit).
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from flask import g
from sqlalchemy import select

import surveys
from engage.accounts.services import create_user
from engage.core.db import utcnow
from engage.extensions import db
from engage.org.models import Service
from engage.org.services import create_service
from engage.patients.services import get_or_create_patient
from engage.survey.services import create_invitation, save_answers, start_response, submit

DEMO_MARKER = "mental-health"
#: (patient number, visit) whose PHQ-9 question 9 is above zero: three alerts, the last open.
RISKY_VISITS = {(3, 1), (11, 3), (6, 6)}
PASSWORD = "engage-demo-{role}"
LOGINS = (
    ("admin@engage.demo", "admin", "Ada Admin"),
    ("staff@engage.demo", "staff", "Sam Staff"),
    ("clinician@engage.demo", "clinician", "Chris Clinician"),
    ("council@engage.demo", "council", "Carmen Council"),
)

COMMENTS = {
    "en": [
        "The nurse listened to me and explained everything clearly.",
        "I waited over two hours past my appointment time with no explanation.",
        "Reception staff were kind and helpful.",
        "Hard to get through on the phone to rearrange my appointment.",
        "The ward was clean and quiet at night.",
        "Nobody told me what would happen after discharge.",
        "Parking was impossible, I nearly missed my slot.",
        "My therapist really understood what I was going through.",
        "The letters kept arriving after the appointment date.",
        "Everyone treated my mum with dignity. Thank you.",
    ],
    "es": [
        "La enfermera me escuchó y me explicó todo muy bien.",
        "Esperé más de una hora sin que nadie me dijera nada.",
        "Me gustaría recibir la información en español.",
    ],
    "ar": [
        "كان الطاقم لطيفاً جداً وشرح لي كل شيء.",
        "انتظرت طويلاً قبل موعدي دون أي تفسير.",
        "أتمنى أن تكون المعلومات متوفرة باللغة العربية.",
    ],
}


def is_loaded() -> bool:
    return db.session.scalar(select(Service).where(Service.slug == DEMO_MARKER)) is not None


def load(seed: int = 7, now: datetime | None = None) -> None:
    """Load the demo data once; does nothing if it is already there. Commits."""
    if is_loaded():
        return
    rng = random.Random(seed)
    now = now or utcnow()
    mental = create_service(DEMO_MARKER, "Community Mental Health Team")
    ortho = create_service("orthopaedics", "Orthopaedic Outpatients")
    for email, role, name in LOGINS:
        create_user(email, role, PASSWORD.format(role=role), name=name,
                    services=[mental, ortho] if role in ("staff", "clinician") else [])
    for number in range(1, 31):
        language = "es" if number % 5 == 0 else "ar" if number % 7 == 0 else "en"
        patient, _ = get_or_create_patient(f"DEMO-{number:04d}", language=language,
                                           email=f"patient{number}@example.org")
        trend = rng.choice((-2, -1, -1, 0, 1))  # most patients get better
        level = rng.randint(5, 19)
        proxy = number % 9 == 0
        for visit in range(7):
            when = now - timedelta(days=180 - visit * 28 + rng.randint(0, 5),
                                   hours=rng.randint(0, 10), minutes=rng.randint(0, 59))
            if visit:
                level = max(0, min(27, level + trend * rng.randint(0, 2) + rng.randint(-1, 1)))
            service = mental if number <= 15 else ortho
            instruments = ("phq-9", "gad-7") if service is mental else ("fft", "care-experience")
            risky = (number, visit) in RISKY_VISITS
            for instrument_id in instruments:
                _answer(patient, service, instrument_id, level, when, rng, language, proxy,
                        risky)
    g.pop("_after_commit", None)  # historical alerts: no emails
    _settle_old_alerts(now)
    _protocols(mental, ortho, now, rng)
    db.session.commit()


def _protocols(mental: Service, ortho: Service, now: datetime, rng: random.Random) -> None:
    """The two protocols the demo ships, with a few patients on each."""
    from engage.scheduling.services import (
        EnrolmentRequest,
        TimepointSpec,
        enrol,
        save_protocol,
    )

    depression = save_protocol(
        "depression-followup", "Depression follow-up", mental,
        [TimepointSpec(label, offset, ["phq-9", "gad-7"], "0", "+7d", ["+3d", "+6d"])
         for label, offset in (("Start of treatment", "0"), ("2 weeks", "+2w"),
                               ("4 weeks", "+4w"), ("8 weeks", "+8w"), ("12 weeks", "+12w"))],
        anchor_label="start of treatment",
        description="PHQ-9 and GAD-7 at the start of treatment and at 2, 4, 8 and 12 weeks.",
    )
    fft = save_protocol(
        "outpatient-fft", "Outpatient Friends and Family Test", ortho,
        [TimepointSpec("Day after the visit", "+1d", ["fft"], "0", "+3d", ["+2d"])],
        anchor_label="clinic visit",
        description="The Friends and Family Test the day after each outpatient visit.",
    )
    for number in range(1, 7):
        patient, _ = get_or_create_patient(f"DEMO-{number:04d}")
        anchor = now - timedelta(days=rng.choice((0, 3, 13, 20, 27)), hours=rng.randint(0, 6))
        enrol(EnrolmentRequest(patient.ref, depression, anchor, patient.timezone), source="cli",
              now=now)
    for number in range(16, 22):
        patient, _ = get_or_create_patient(f"DEMO-{number:04d}")
        anchor = now - timedelta(days=rng.choice((0, 1, 2)), hours=rng.randint(0, 6))
        enrol(EnrolmentRequest(patient.ref, fft, anchor, patient.timezone), source="cli",
              now=now)


def _settle_old_alerts(now: datetime) -> None:
    """Old alerts were seen to long ago; leave the newest open for the clinician to try."""
    from engage.accounts.models import User
    from engage.alerts.models import Alert

    clinician = db.session.scalar(select(User).where(User.role == "clinician"))
    alerts = db.session.scalars(select(Alert).order_by(Alert.created_at)).all()
    for alert in alerts:
        alert.notified_at = alert.created_at
        alert.notify_count = 1
    for alert in alerts[:-1]:
        alert.acknowledged_at = alert.created_at + timedelta(hours=3)
        alert.acknowledged_by_id = clinician.id if clinician else None
        alert.acknowledgement_note = "Phoned the patient; safety plan reviewed."


def _answer(patient, service, instrument_id, level, when, rng, language, proxy,  # type: ignore[no-untyped-def]
            risky=False) -> None:
    instrument = surveys.get(instrument_id)
    invitation, _token = create_invitation(patient, service, instrument_id, language=language,
                                           now=when - timedelta(hours=2), days=7)
    response = start_response(invitation, respondent="proxy" if proxy else "self",
                              relationship="parent" if proxy else None)
    response.started_at = when - timedelta(minutes=5)
    values: dict[str, object] = {}
    scored = [i for i in instrument.items if i.type == "choice"]
    for item in scored:
        values[item.link_id] = _pick(item, level, rng, instrument_id, risky)
    for item in instrument.items:
        if item.type == "text" and rng.random() < 0.7:
            values[item.link_id] = rng.choice(COMMENTS[language])
    save_answers(response, values)
    submit(response, now=when)


def _pick(item: surveys.Item, level: int, rng: random.Random, instrument_id: str,
          risky: bool) -> str:
    """An option whose position follows the patient's level, with some noise."""
    options = item.options
    if instrument_id in ("phq-9", "gad-7"):
        if item.link_id == "phq9-9":
            index = 1 if risky else 0
        else:
            index = round(level / 27 * 3 + rng.uniform(-0.8, 0.8))
    else:
        index = round((1 - level / 27) * 0 + rng.triangular(0, len(options) - 1, 0.5))
    return options[max(0, min(len(options) - 1, index))].code


def fresh_link(base_url: str) -> str:
    """A new PHQ-9 link for the first demo patient, for trying the patient's side."""
    from engage.survey.services import survey_url

    patient, _ = get_or_create_patient("DEMO-NEW")
    service = db.session.scalar(select(Service).where(Service.slug == DEMO_MARKER))
    assert service is not None
    _inv, token = create_invitation(patient, service, "phq-9")
    db.session.commit()
    return survey_url(base_url, token)
