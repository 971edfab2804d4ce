"""Translated labels for the feedback pages: default theme names, categories, statuses.

Theme names are data (admins rename them), so only the default names, while unchanged,
are shown translated; a renamed theme shows its new name as the admin wrote it.
"""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l

#: i18n: major categories of the NHS England patient-experience framework
CATEGORY_LABELS = {
    "General": _l("General"),
    "Staff": _l("Staff"),
    "Communication & involvement": _l("Communication & involvement"),
    "Access to medical care & support": _l("Access to medical care & support"),
    "Medication": _l("Medication"),
    "Patient journey & service coordination": _l("Patient journey & service coordination"),
    "Food & diet": _l("Food & diet"),
    "Category TBC": _l("Category TBC"),
    "Activities": _l("Activities"),
    "Environment & equipment": _l("Environment & equipment"),
    "Mental Health specifics": _l("Mental Health specifics"),
    "Service location, travel & transport": _l("Service location, travel & transport"),
}
#: i18n: themes of the NHS England patient-experience framework
THEME_LABELS = {
    "Positive experience & gratitude": _l("Positive experience & gratitude"),
    "Negative experience & dissatisfaction": _l("Negative experience & dissatisfaction"),
    "Not assigned": _l("Not assigned"),
    "Labelling not possible": _l("Labelling not possible"),
    "Organisation & efficiency": _l("Organisation & efficiency"),
    "Funding & use of financial resources": _l("Funding & use of financial resources"),
    "Learning organisation": _l("Learning organisation"),
    "Staff manner & personal attributes": _l("Staff manner & personal attributes"),
    "Number & deployment of staff": _l("Number & deployment of staff"),
    "Staff responsiveness": _l("Staff responsiveness"),
    "Staff continuity": _l("Staff continuity"),
    "Competence & training": _l("Competence & training"),
    "Unspecified communication": _l("Unspecified communication"),
    "Staff listening, understanding & involving patients":
        _l("Staff listening, understanding & involving patients"),
    "Information directly from staff during care":
        _l("Information directly from staff during care"),
    "Information provision & guidance": _l("Information provision & guidance"),
    "Being kept informed, clarity & consistency of information":
        _l("Being kept informed, clarity & consistency of information"),
    "Interaction with family/ carers": _l("Interaction with family/ carers"),
    "Contacting services": _l("Contacting services"),
    "Appointment arrangements": _l("Appointment arrangements"),
    "Appointment method": _l("Appointment method"),
    "Timeliness of care": _l("Timeliness of care"),
    "Existence of services": _l("Existence of services"),
    "Choice of services": _l("Choice of services"),
    "Out of hours support (community services)": _l("Out of hours support (community services)"),
    "Supplying & understanding medication": _l("Supplying & understanding medication"),
    "Pain management": _l("Pain management"),
    "Diagnosis & triage": _l("Diagnosis & triage"),
    "Referals & continuity of care": _l("Referals & continuity of care"),
    "Admission": _l("Admission"),
    "Discharge": _l("Discharge"),
    "Care plans": _l("Care plans"),
    "Patient records": _l("Patient records"),
    "Impact of treatment/ care": _l("Impact of treatment/ care"),
    "Food & drink provision & facilities": _l("Food & drink provision & facilities"),
    "Feeling safe": _l("Feeling safe"),
    "Patient appearance & grooming": _l("Patient appearance & grooming"),
    "Equality, Diversity & Inclusion": _l("Equality, Diversity & Inclusion"),
    "Safeguarding concerns?": _l("Safeguarding concerns?"),
    "Activities & access to fresh air": _l("Activities & access to fresh air"),
    "Electronic entertainment": _l("Electronic entertainment"),
    "Cleanliness, tidiness & infection control": _l("Cleanliness, tidiness & infection control"),
    "Sensory experience": _l("Sensory experience"),
    "Environment & Facilities": _l("Environment & Facilities"),
    "Provision of medical equipment": _l("Provision of medical equipment"),
    "Mental Health Act": _l("Mental Health Act"),
    "Psychological therapy arrangements": _l("Psychological therapy arrangements"),
    "Service location": _l("Service location"),
    "Transport to/ from services": _l("Transport to/ from services"),
    "Parking": _l("Parking"),
}
#: i18n: workflow statuses of a feedback item
STATUS_LABELS = {
    "new": _l("New"), "triaged": _l("Triaged"), "routed": _l("Routed"),
    "responded": _l("Responded"), "closed": _l("Closed"),
}
#: i18n: urgency of a feedback item
URGENCY_LABELS = {"urgent": _l("Urgent"), "review": _l("Safety review"), "high": _l("High"),
                  "normal": _l("Normal")}
#: i18n: a comment's safety level, as staff choose it
SAFETY_LEVEL_LABELS = {
    "urgent": _l("Urgent: a risk to life or ongoing abuse (alert the clinicians now)"),
    "review": _l("Safety review: a possible safeguarding concern a lead must read"),
    "none": _l("No safety concern"),
}
#: i18n: short names of the safety levels
SAFETY_LEVEL_NAMES = {"urgent": _l("Urgent"), "review": _l("Safety review"),
                      "none": _l("No safety concern")}
#: i18n: what a change of safety level teaches the screen
SAFETY_CHANGE_LABELS = {"miss": _l("Missed by the screen"),
                        "false_alarm": _l("False alarm"),
                        "raise": _l("Raised"), "lower": _l("Lowered")}
#: i18n: the safety screen's categories of concern
SAFETY_CATEGORY_LABELS = {
    "self-harm": _l("self-harm or suicide"), "abuse": _l("abuse"), "neglect": _l("neglect"),
    "safeguarding": _l("safeguarding"), "danger": _l("danger"),
    "environment": _l("an unsafe place"), "impaired-staff": _l("impaired staff"),
}
#: i18n: where a comment came from
SOURCE_LABELS = {"survey": _l("Survey answer"), "web": _l("Feedback page"),
                 "staff": _l("Taken by staff")}
#: i18n: how staff received a comment they typed in
RECEIVED_VIA_LABELS = {"phone": _l("Phone call"), "paper": _l("Paper form or letter"),
                       "in-person": _l("In person"), "email": _l("Email"), "other": _l("Other")}
#: i18n: who left a comment
RESPONDENT_LABELS = {"patient": _l("The patient"), "family": _l("Family member"),
                     "carer": _l("Carer"), "other": _l("Someone else")}
#: i18n: sentiment of a comment, 1 very positive .. 5 very negative
SENTIMENT_LABELS = {1: _l("Very positive"), 2: _l("Positive"), 3: _l("Neutral or mixed"),
                    4: _l("Negative"), 5: _l("Very negative")}
#: i18n: kinds of personal details found in a comment, as shown in redacted text
PII_LABELS = {"name": _l("name"), "phone": _l("phone"), "email": _l("email"),
              "nhs_number": _l("NHS number"), "hospital_number": _l("hospital number"),
              "date_of_birth": _l("date of birth"), "address": _l("address")}
#: i18n: theme statuses in the taxonomy
THEME_STATUS_LABELS = {"active": _l("Active"), "retired": _l("Retired"),
                       "merged": _l("Merged")}


def theme_label(theme: Any) -> str:
    """The theme"s name, translated while it is still the framework"s default name."""
    if theme.name == theme.key and theme.key in THEME_LABELS:
        return str(THEME_LABELS[theme.key])
    return str(theme.name)


def category_label(category: str) -> str:
    return str(CATEGORY_LABELS.get(category, category))
