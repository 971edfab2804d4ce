"""The default theme taxonomy: the NHS England patient-experience qualitative framework (v6).

The themes are the theme columns of the framework's labelled data
(``../shared/data/feedback-themes/train.csv``, from The Strategy Unit's pxtextmining,
MIT licence), grouped into the framework's major categories as pxtextmining groups
them. Themes the published grouping leaves out are placed where the framework's
documentation puts them (noted beside each).
"""

from __future__ import annotations

#: Major category -> its themes, in the framework's order.
MAJOR_CATEGORIES: dict[str, tuple[str, ...]] = {
    "General": (
        "Positive experience & gratitude",
        "Negative experience & dissatisfaction",
        "Not assigned",
        "Labelling not possible",
        "Organisation & efficiency",
        "Funding & use of financial resources",
        "Learning organisation",  # not in pxtextmining's grouping
    ),
    "Staff": (
        "Staff manner & personal attributes",
        "Number & deployment of staff",
        "Staff responsiveness",
        "Staff continuity",
        "Competence & training",
    ),
    "Communication & involvement": (
        "Unspecified communication",
        "Staff listening, understanding & involving patients",
        "Information directly from staff during care",
        "Information provision & guidance",
        "Being kept informed, clarity & consistency of information",
        "Interaction with family/ carers",
    ),
    "Access to medical care & support": (
        "Contacting services",
        "Appointment arrangements",
        "Appointment method",
        "Timeliness of care",
        "Existence of services",  # not in pxtextmining's grouping
        "Choice of services",  # not in pxtextmining's grouping
        "Out of hours support (community services)",  # not in pxtextmining's grouping
    ),
    "Medication": (
        "Supplying & understanding medication",
        "Pain management",
    ),
    "Patient journey & service coordination": (
        "Diagnosis & triage",
        "Referals & continuity of care",
        "Admission",
        "Discharge",
        "Care plans",
        "Patient records",
        "Impact of treatment/ care",
    ),
    "Food & diet": (
        "Food & drink provision & facilities",
    ),
    "Category TBC": (
        "Feeling safe",
        "Patient appearance & grooming",
        "Equality, Diversity & Inclusion",
        "Safeguarding concerns?",  # not in pxtextmining's grouping
    ),
    "Activities": (
        "Activities & access to fresh air",
        "Electronic entertainment",
    ),
    "Environment & equipment": (
        "Cleanliness, tidiness & infection control",
        "Sensory experience",
        "Environment & Facilities",
        "Provision of medical equipment",
    ),
    "Mental Health specifics": (
        "Mental Health Act",
        "Psychological therapy arrangements",  # not in pxtextmining's grouping
    ),
    "Service location, travel & transport": (
        "Service location",
        "Transport to/ from services",
        "Parking",
    ),
}
