"""Demo data: two services, a login per role, 30 patients and six months of answers.

Everything goes through the same service functions the web pages use, so the
demo exercises the real paths (scores, bands, alerts, audit).
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from flask import g
from sqlalchemy import select

import surveys
from engage.accounts.services import create_user
from engage.alerts.services import save_crisis_contact
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
    ("safeguarding@engage.demo", "safeguarding", "Sasha Okonjo"),
    ("safety@engage.demo", "safety_officer", "Omar Haddad"),
)
#: More staff for the staff page: (email, role, name, service slug, days since last login);
#: None: never logged in. The last has left and is deactivated.
MORE_STAFF = (
    ("priya.nair@engage.demo", "clinician", "Priya Nair", "orthopaedics", 1),
    ("tom.reed@engage.demo", "staff", "Tom Reed", DEMO_MARKER, 3),
    ("grace.owusu@engage.demo", "staff", "Grace Owusu", "orthopaedics", None),
    ("lena.fischer@engage.demo", "clinician", "Lena Fischer", DEMO_MARKER, 64),
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
        "The physio was brilliant and my knee is so much better.",
        "Waiting room was packed and there was nowhere to sit.",
        "Dr Okafor took time to explain my scan results.",
        "I was sent home without my medication and had to come back.",
        "Could not hear my name being called over the noise.",
        "The transport booked to bring me home never arrived.",
        "Very efficient, in and out in twenty minutes.",
        "Staff seemed rushed and did not introduce themselves.",
        "The cafe was closed and there was no water available.",
        "Nothing, everything was fine.",
    ],
    "es": [
        "La enfermera me escuchó y me explicó todo muy bien.",
        "Esperé más de una hora sin que nadie me dijera nada.",
        "Me gustaría recibir la información en español.",
        "El médico fue muy amable conmigo y con mi hija.",
    ],
    "ar": [
        "كان الطاقم لطيفاً جداً وشرح لي كل شيء.",
        "انتظرت طويلاً قبل موعدي دون أي تفسير.",
        "أتمنى أن تكون المعلومات متوفرة باللغة العربية.",
    ],
}
#: Comments left on the public feedback pages: (language, text, contact email or None).
PUBLIC_COMMENTS = (
    ("en", "My dad was left in A&E for six hours without food or a drink.", "jo@example.org"),
    ("en", "The team at the clinic are wonderful, thank you for everything.", None),
    ("en", "Please put more signs up, I got lost trying to find the fracture clinic.", None),
    ("en", "The booking line rings out every time I call.", "sam.k@example.org"),
    ("es", "El personal fue muy atento, pero el aparcamiento es carísimo.", None),
    ("ar", "الممرضات كن لطيفات جداً مع والدتي.", None),
    ("en", "Nurse Priya on the ward made my week. Please tell her.", None),
    ("en", "My nan was left soiled for hours on the ward and nobody came when she rang.", None),
    ("en", "I'd rather be dead than eat that hospital food again.", None),
)
#: What the safety screen flagged or missed, and what staff then decided, with why:
#: (text, where it came from, level staff set, reason).
SAFETY_DECISIONS = (
    ("My dad has gone very quiet and jumpy since the new carer started visiting.", "staff",
     "review", "Withdrawn and frightened since a new carer: possible abuse. Passed to the "
     "safeguarding lead."),
    ("I'd rather be dead than eat that hospital food again.", None, "none",
     "A figure of speech about the food. Rang the patient, who laughed: no risk."),
)
#: Taken by phone or on paper: (how, text).
STAFF_COMMENTS = (
    ("phone", "Caller unhappy that her appointment was cancelled twice by text with no reason."),
    ("paper", "Card left at reception: the toilets on level 2 were dirty all week."),
    ("phone", "Husband says nobody explained the new tablets before discharge."),
    ("phone", "Daughter says the night carer was very rough with her dad and he has bruises "
              "on his arms."),
    ("phone", "My dad has gone very quiet and jumpy since the new carer started visiting."),
)
#: The mental health team's crisis line, as (language, name, when someone answers).
CRISIS_LINE = (
    ("en", "Community Mental Health crisis line", "24 hours, every day"),
    ("es", "Línea de crisis del Equipo de Salud Mental Comunitaria", "24 horas, todos los días"),
    ("ar", "خط الأزمات لفريق الصحة النفسية المجتمعية", "على مدار 24 ساعة، كل يوم"),
)
#: Improvement teams the demo ships, the demo logins in them, and the themes they own.
TEAMS = (
    ("access-and-waiting", "Access and waiting", "staff@engage.demo",
     ("Timeliness of care", "Appointment arrangements", "Contacting services",
      "Appointment method")),
    ("communication", "Communication and involvement", "clinician@engage.demo",
     ("Staff listening, understanding & involving patients",
      "Information directly from staff during care", "Information provision & guidance",
      "Being kept informed, clarity & consistency of information", "Discharge")),
    ("environment", "Environment and facilities", "admin@engage.demo",
     ("Cleanliness, tidiness & infection control", "Environment & Facilities", "Parking",
      "Food & drink provision & facilities", "Transport to/ from services", "Service location")),
)


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
                    services=[mental, ortho] if role in ("staff", "clinician", "safeguarding")
                    else [])
    for email, role, name, slug, days in MORE_STAFF:
        user = create_user(email, role, PASSWORD.format(role=role), name=name,
                           services=[mental if slug == DEMO_MARKER else ortho])
        user.last_login_at = now - timedelta(days=days, hours=2) if days is not None else None
    user.active = False  # Lena Fischer has left
    _crisis_contacts(mental)
    for number in range(1, 31):
        language = "es" if number % 5 == 0 else "ar" if number % 7 == 0 else "en"
        # Each patient is known to one service: its record belongs to that service.
        owner = mental if number <= 15 else ortho
        patient, _ = get_or_create_patient(owner, f"DEMO-{number:04d}", language=language,
                                           email=f"patient{number}@example.org")
        trend = rng.choice((-2, -1, -1, 0, 1))  # most patients get better
        level = rng.randint(5, 19)
        proxy = number % 9 == 0
        for visit in range(7):
            when = now - timedelta(days=180 - visit * 28 + rng.randint(0, 5),
                                   hours=rng.randint(0, 10), minutes=rng.randint(0, 59))
            if visit:
                level = max(0, min(27, level + trend * rng.randint(0, 2) + rng.randint(-1, 1)))
            service = owner
            instruments = ("phq-9", "gad-7") if service is mental else ("fft", "care-experience")
            risky = (number, visit) in RISKY_VISITS
            for instrument_id in instruments:
                _answer(patient, service, instrument_id, level, when, rng, language, proxy,
                        risky)
    _feedback(mental, ortho, now, rng)
    g.pop("_after_commit", None)  # historical alerts: no emails
    _settle_old_alerts(now)
    _protocols(mental, ortho, now, rng)
    db.session.commit()


def _crisis_contacts(mental: Service) -> None:
    """The mental health team's own crisis line, in each language; orthopaedics shows the
    built-in contacts. The number is in Ofcom's range for drama (Leeds), so it rings nobody."""
    for language, name, hours in CRISIS_LINE:
        save_crisis_contact(None, service_id=mental.id, language=language, name=name,
                            phone="0113 496 0000", text=None, hours=hours)


def _feedback(mental: Service, ortho: Service, now: datetime, rng: random.Random) -> None:
    """Teams with routing rules, comments from every source, and a triage history.

    Survey comments were taken in as each response was sent. Staff have confirmed
    the themes of most comments older than a week, and closed most of the oldest.
    """
    from engage.accounts.models import User
    from engage.feedback.models import FeedbackItem, RoutingRule, Theme
    from engage.feedback.services import Contact, confirm_themes, intake, send_reply, set_status
    from engage.feedback.themes import ensure_default_themes
    from engage.teams.services import save_team

    ensure_default_themes()
    users = {u.email: u for u in db.session.scalars(select(User))}
    themes = {t.key: t for t in db.session.scalars(select(Theme))}
    for slug, name, member, owned in TEAMS:
        team = save_team(None, slug=slug, name=name, members=[users[member]])
        for key in owned:
            db.session.add(RoutingRule(theme_id=themes[key].id, team_id=team.id))
    db.session.flush()
    for n, (language, text, email) in enumerate(PUBLIC_COMMENTS):
        intake(service=ortho if n % 3 else mental, text=text, source="web", language=language,
               received_at=now - timedelta(days=rng.randint(0, 20), hours=rng.randint(0, 9)),
               contact=Contact(email=email, consent=bool(email)), notify=False, now=now)
    staff = users["staff@engage.demo"]
    for how, text in STAFF_COMMENTS:
        intake(service=ortho, text=text, source="staff", received_via=how,
               received_at=now - timedelta(days=rng.randint(1, 12)), created_by=staff,
               notify=False, now=now)
    triager = users["clinician@engage.demo"]
    items = db.session.scalars(select(FeedbackItem).order_by(FeedbackItem.received_at)).all()
    for item in items:
        age = now - item.received_at
        if item.urgency == "urgent" or age < timedelta(days=4) or rng.random() < 0.15:
            continue  # the newest and the urgent wait for the triager trying the demo
        confirm_themes(item, triager)
        if age > timedelta(days=21) and rng.random() < 0.9:
            set_status(item, "closed", triager, "Shared with the team at the monthly review.")
    _safety_decisions(items, triager, now)
    with_contact = next(i for i in items if i.has_contact and i.urgency != "urgent"
                        and i.status != "closed")
    send_reply(with_contact, triager, channel="email",
               body="Thank you for telling us. We are looking into what happened and will "
                    "call you this week.")
    db.session.flush()


def _safety_decisions(items: Any, user: Any, now: datetime) -> None:
    """A miss raised to review and a false alarm cleared, so the officer's page has both."""
    from engage.alerts.models import Alert
    from engage.feedback.safeguarding import set_safety_level

    by_text = {i.text: i for i in items}
    for n, (text, _source, level, reason) in enumerate(SAFETY_DECISIONS):
        item = by_text.get(text)
        if item is None:
            continue
        when = now - timedelta(days=n + 1)
        set_safety_level(item, level, user, reason, now=when)
        if level == "none":
            # Lowering leaves the clinicians' alert open; the demo clinician has seen it.
            for alert in db.session.scalars(select(Alert).where(
                    Alert.feedback_item_id == item.id)):
                alert.acknowledged_at, alert.acknowledged_by_id = when, user.id
                alert.notified_at, alert.notify_count = alert.created_at, 1
                alert.acknowledgement_note = reason


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
        patient, _ = get_or_create_patient(depression.service, f"DEMO-{number:04d}")
        anchor = now - timedelta(days=rng.choice((0, 3, 13, 20, 27)), hours=rng.randint(0, 6))
        enrol(EnrolmentRequest(patient.ref, depression, anchor, patient.timezone), source="cli",
              now=now)
    for number in range(16, 22):
        patient, _ = get_or_create_patient(fft.service, f"DEMO-{number:04d}")
        anchor = now - timedelta(days=rng.choice((0, 1, 2)), hours=rng.randint(0, 6))
        enrol(EnrolmentRequest(patient.ref, fft, anchor, patient.timezone), source="cli",
              now=now)


def _settle_old_alerts(now: datetime) -> None:
    """Old alerts were seen to long ago; leave the newest open for the clinician to try."""
    from engage.accounts.models import User
    from engage.alerts.models import Alert

    clinician = db.session.scalar(select(User).where(User.role == "clinician"))
    # Questionnaire alerts; an urgent comment's alert stays open beside the newest of them.
    alerts = db.session.scalars(select(Alert).where(Alert.feedback_item_id.is_(None))
                                .order_by(Alert.created_at)).all()
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

    service = db.session.scalar(select(Service).where(Service.slug == DEMO_MARKER))
    assert service is not None
    patient, _ = get_or_create_patient(service, "DEMO-NEW")
    _inv, token = create_invitation(patient, service, "phq-9")
    db.session.commit()
    return survey_url(base_url, token)


def fresh_api_key() -> str:
    """A new API key for trying the EHR API: write scope, the orthopaedics service, 30 days.

    Keys are shown once (only their hash is stored), so each demo start makes its own.
    """
    from engage.api.services import create_api_key

    ortho = db.session.scalar(select(Service).where(Service.slug == "orthopaedics"))
    assert ortho is not None
    _key, secret = create_api_key("Demo EHR interface", scope="write", services=[ortho],
                                  expires_in_days=30)
    db.session.commit()
    return secret
