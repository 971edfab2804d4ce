"""Feedback items, their themes and history, routing, replies, and the data that drives them.

A :class:`FeedbackItem` is one comment: a free-text survey answer, a comment left on the
public "Tell us about your care" page, or one that staff typed in from a call or a letter.
Its themes are suggested by the theme model and confirmed by staff (:class:`ItemTheme`);
every step it takes is a :class:`FeedbackEvent`.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from engage.accounts.models import User
from engage.core.db import utcnow
from engage.extensions import db
from engage.feedback.text.safety import Level
from engage.org.models import Service
from engage.patients.models import Patient
from engage.teams.models import ImprovementTeam

#: The workflow, in order. ``closed`` can be reopened to ``triaged``.
STATUSES = ("new", "triaged", "routed", "responded", "closed")
#: Statuses that still need someone: the inbox shows these by default.
OPEN_STATUSES = ("new", "triaged", "routed")
#: ``survey`` (a free-text answer), ``web`` (the public page), ``staff`` (typed in by staff).
SOURCES = ("survey", "web", "staff")
#: Most urgent first. ``urgent`` and ``review`` are the safety levels (an urgent or a review
#: rule fired, or staff raised it); ``high``: very negative; ``normal``: the rest.
URGENCIES = ("urgent", "review", "high", "normal")
#: The urgencies that are safety levels: a person must read the comment within its target.
SAFETY_URGENCIES = (Level.URGENT.value, Level.REVIEW.value)
#: A comment's safety level: what the screen said, or what staff set.
SAFETY_LEVELS = tuple(level.value for level in Level)
#: How staff received feedback they type in.
RECEIVED_VIA = ("phone", "paper", "in-person", "email", "other")
#: Who left a comment on the public page.
RESPONDENTS = ("patient", "family", "carer", "other")
#: ``suggested`` by the model, ``confirmed`` by staff, or a suggestion staff ``rejected``.
THEME_STATES = ("suggested", "confirmed", "rejected")


class Theme(db.Model):  # type: ignore[name-defined,misc]
    """A node of the theme taxonomy.

    ``key`` never changes: it is what the theme model predicts, so renaming a theme
    keeps its suggestions. Merging points ``merged_into`` at the theme that takes
    over; retiring stops new suggestions. Neither deletes the row, so items
    themed before keep their history.
    """

    __tablename__ = "theme"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The model's label for this theme; for the default taxonomy, the framework's name.
    key: Mapped[str] = mapped_column(String(120), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    #: The major category it belongs to (e.g. ``Staff``).
    category: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(Text, default="")
    #: ``active``, ``retired`` or ``merged``.
    status: Mapped[str] = mapped_column(String(8), default="active")
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("theme.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    merged_into: Mapped[Theme | None] = relationship(remote_side=[id])

    def __repr__(self) -> str:
        return f"<Theme {self.key!r}>"


class ThemeEvent(db.Model):  # type: ignore[name-defined,misc]
    """One change to the taxonomy: created, renamed, moved, merged, retired, restored."""

    __tablename__ = "theme_event"
    __table_args__ = (Index("ix_theme_event_theme_at", "theme_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    theme_id: Mapped[int] = mapped_column(ForeignKey("theme.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(String(16))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    user: Mapped[User | None] = relationship()


class FeedbackItem(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "feedback_item"
    __table_args__ = (
        # One item per free-text answer, so taking in a response twice changes nothing.
        UniqueConstraint("response_id", "link_id"),
        # The inbox: open items by status, oldest first; and the overdue check.
        Index("ix_feedback_item_status_received", "status", "received_at"),
        Index("ix_feedback_item_status_due", "status", "due_at"),
        Index("ix_feedback_item_service_received", "service_id", "received_at"),
        # The safety queue and the digest: open items by urgency.
        Index("ix_feedback_item_urgency_status", "urgency", "status"),
        CheckConstraint("urgency IN ('urgent', 'review', 'high', 'normal')", name="urgency"),
        CheckConstraint("screen_level IN ('urgent', 'review', 'none')", name="screen_level"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("service.id"))
    #: One of :data:`SOURCES`.
    source: Mapped[str] = mapped_column(String(8))
    #: For staff entry: one of :data:`RECEIVED_VIA`.
    received_via: Mapped[str | None] = mapped_column(String(12))
    #: For a survey answer: the response and the question's link id.
    response_id: Mapped[int | None] = mapped_column(
        ForeignKey("response.id", ondelete="CASCADE"), index=True)
    link_id: Mapped[str | None] = mapped_column(String(64))
    #: The patient on record, when known (survey answers; staff entry with a reference).
    patient_id: Mapped[int | None] = mapped_column(
        ForeignKey("patient.id", ondelete="CASCADE"), index=True)
    #: One of :data:`RESPONDENTS`, when the person said.
    respondent: Mapped[str | None] = mapped_column(String(8))
    #: The question answered, in English (it changes what the words mean).
    question: Mapped[str | None] = mapped_column(Text)
    #: The comment as written: identifiable; staff only, every view audited.
    text: Mapped[str] = mapped_column(Text)
    language: Mapped[str] = mapped_column(String(8), default="en")
    #: The comment with personal details replaced: what councils, exports and digests see.
    redacted_text: Mapped[str] = mapped_column(Text)
    #: What was found: ``[{"kind", "start", "end"}]`` (never the found text itself).
    pii: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)

    #: 1 very positive .. 5 very negative, as the model suggested.
    suggested_sentiment: Mapped[int | None]
    sentiment_confidence: Mapped[float | None]
    #: As staff confirmed or corrected it; None until they do.
    sentiment: Mapped[int | None]

    #: One of :data:`URGENCIES`; ``urgent`` and ``review`` are its safety level.
    urgency: Mapped[str] = mapped_column(String(8), default="normal")
    #: The level the safety screen gave it when it came in (never changed afterwards):
    #: compared with :attr:`safety_level`, it tells a miss from a false alarm.
    screen_level: Mapped[str] = mapped_column(String(8), default=Level.NONE.value)
    #: The safety rule that fired (its id), its category, and where it matched
    #: (``[{"rule", "start", "end", "level"}]`` into :attr:`text`).
    safety_reason: Mapped[str | None] = mapped_column(String(64))
    safety_category: Mapped[str | None] = mapped_column(String(16))
    safety_matches: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    safety_rules_version: Mapped[str | None] = mapped_column(String(40))
    #: The theme model that suggested the themes.
    model_version: Mapped[str | None] = mapped_column(String(100))

    #: One of :data:`STATUSES`.
    status: Mapped[str] = mapped_column(String(10), default="new")
    #: When the person gave it (a survey's submit time, or as staff recorded it).
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    status_changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: Respond or close by then (the target for its urgency).
    due_at: Mapped[datetime]
    #: Indexed: the retrain job counts the confirmations since the last model every minute.
    themes_confirmed_at: Mapped[datetime | None] = mapped_column(index=True)
    themes_confirmed_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("user.id", ondelete="SET NULL"))
    #: The member of staff looking after it.
    assigned_to_id: Mapped[int | None] = mapped_column(
        ForeignKey("user.id", ondelete="SET NULL"), index=True)
    #: Who typed it in (staff entry).
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))

    #: Contact details the person chose to leave, and whether they agreed to be contacted.
    contact_name: Mapped[str | None] = mapped_column(String(200))
    contact_email: Mapped[str | None] = mapped_column(String(254))
    contact_phone: Mapped[str | None] = mapped_column(String(32))
    contact_consent: Mapped[bool] = mapped_column(default=False)
    #: The public form's one-time value: a second press of "Send" finds the first item.
    form_nonce: Mapped[str | None] = mapped_column(String(64), unique=True)

    service: Mapped[Service] = relationship(lazy="joined")
    patient: Mapped[Patient | None] = relationship()
    assigned_to: Mapped[User | None] = relationship(foreign_keys=[assigned_to_id])
    themes: Mapped[list[ItemTheme]] = relationship(
        back_populates="item", cascade="all, delete-orphan", lazy="selectin")
    routes: Mapped[list[FeedbackRoute]] = relationship(
        back_populates="item", cascade="all, delete-orphan", lazy="selectin")

    @property
    def shown_sentiment(self) -> int | None:
        """Staff's sentiment where they gave one, else the model's."""
        return self.sentiment if self.sentiment is not None else self.suggested_sentiment

    @property
    def safety_level(self) -> str:
        """``urgent``, ``review`` or ``none``: how soon a person must read it, for safety."""
        return self.urgency if self.urgency in SAFETY_URGENCIES else Level.NONE.value

    @property
    def themes_confirmed(self) -> bool:
        return self.themes_confirmed_at is not None

    def live_themes(self) -> list[ItemTheme]:
        """Confirmed themes once staff confirmed them, the suggestions before."""
        wanted = "confirmed" if self.themes_confirmed else "suggested"
        return sorted((t for t in self.themes if t.status == wanted),
                      key=lambda t: -(t.confidence or 0))

    @property
    def has_contact(self) -> bool:
        return self.contact_consent and bool(self.contact_email or self.contact_phone)


class ItemTheme(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "feedback_theme"
    __table_args__ = (Index("ix_feedback_theme_theme_status", "theme_id", "status"),)

    item_id: Mapped[int] = mapped_column(ForeignKey("feedback_item.id", ondelete="CASCADE"),
                                         primary_key=True)
    theme_id: Mapped[int] = mapped_column(ForeignKey("theme.id"), primary_key=True)
    #: The model's confidence when it suggested the theme; None when staff added it.
    confidence: Mapped[float | None]
    #: One of :data:`THEME_STATES`.
    status: Mapped[str] = mapped_column(String(10), default="suggested")

    item: Mapped[FeedbackItem] = relationship(back_populates="themes")
    theme: Mapped[Theme] = relationship(lazy="joined")


class FeedbackEvent(db.Model):  # type: ignore[name-defined,misc]
    """Who did what to an item and when: the workflow history shown on its page."""

    __tablename__ = "feedback_event"
    __table_args__ = (Index("ix_feedback_event_item_at", "item_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("feedback_item.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    #: None for the patient, a job or the system.
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    #: e.g. ``received``, ``themes``, ``status``, ``assign``, ``route``, ``reply``, ``urgency``.
    action: Mapped[str] = mapped_column(String(16))
    from_status: Mapped[str | None] = mapped_column(String(10))
    to_status: Mapped[str | None] = mapped_column(String(10))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    user: Mapped[User | None] = relationship()


class RoutingRule(db.Model):  # type: ignore[name-defined,misc]
    """Items with this theme (in this service, or any service when None) go to this team."""

    __tablename__ = "routing_rule"

    id: Mapped[int] = mapped_column(primary_key=True)
    theme_id: Mapped[int] = mapped_column(ForeignKey("theme.id", ondelete="CASCADE"), index=True)
    service_id: Mapped[int | None] = mapped_column(ForeignKey("service.id", ondelete="CASCADE"))
    team_id: Mapped[int] = mapped_column(ForeignKey("improvement_team.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))

    theme: Mapped[Theme] = relationship(lazy="joined")
    service: Mapped[Service | None] = relationship(lazy="joined")
    team: Mapped[ImprovementTeam] = relationship(lazy="joined")


class FeedbackRoute(db.Model):  # type: ignore[name-defined,misc]
    """An item in a team's queue, and why it is there."""

    __tablename__ = "feedback_route"
    __table_args__ = (Index("ix_feedback_route_team_routed", "team_id", "routed_at"),)

    item_id: Mapped[int] = mapped_column(ForeignKey("feedback_item.id", ondelete="CASCADE"),
                                         primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("improvement_team.id", ondelete="CASCADE"),
                                         primary_key=True)
    #: The theme whose rule routed it; None when staff routed it by hand.
    theme_id: Mapped[int | None] = mapped_column(ForeignKey("theme.id", ondelete="SET NULL"))
    routed_at: Mapped[datetime] = mapped_column(default=utcnow)
    routed_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))

    item: Mapped[FeedbackItem] = relationship(back_populates="routes")
    team: Mapped[ImprovementTeam] = relationship(lazy="joined")


class Reply(db.Model):  # type: ignore[name-defined,misc]
    """A reply to the person who left a comment, sent through the outbox."""

    __tablename__ = "feedback_reply"

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("feedback_item.id", ondelete="CASCADE"),
                                         index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    #: The template it started from (``builtin:<key>`` or ``template:<id>``), if any.
    template: Mapped[str | None] = mapped_column(String(40))
    #: ``email`` or ``sms``.
    channel: Mapped[str] = mapped_column(String(8))
    to_address: Mapped[str] = mapped_column(String(254))
    language: Mapped[str] = mapped_column(String(8))
    subject: Mapped[str] = mapped_column(String(200), default="")
    body: Mapped[str] = mapped_column(Text)
    #: ``pending``, ``sent`` or ``failed``: follows its outbox message.
    status: Mapped[str] = mapped_column(String(10), default="pending")
    sent_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)

    user: Mapped[User | None] = relationship()


class ReplyTemplate(db.Model):  # type: ignore[name-defined,misc]
    """A reply staff start from, written by an admin for one language."""

    __tablename__ = "reply_template"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    language: Mapped[str] = mapped_column(String(8))
    subject: Mapped[str] = mapped_column(String(200), default="")
    body: Mapped[str] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))


class SafetyRuleSet(db.Model):  # type: ignore[name-defined,misc]
    """One saved version of the urgent-comment rules; the newest is in force."""

    __tablename__ = "safety_rule_set"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    #: Why it changed, in the safety officer's words.
    note: Mapped[str] = mapped_column(Text, default="")
    #: The rules, in the format of ``engage/feedback/text/data/safety_rules.json``.
    rules: Mapped[dict[str, Any]] = mapped_column(JSON)

    created_by: Mapped[User | None] = relationship()


class ThemeModelRecord(db.Model):  # type: ignore[name-defined,misc]
    """A theme model trained here (or imported), stored whole; at most one is active.

    With none active, the model shipped with Engage is used.
    """

    __tablename__ = "theme_model"

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[str] = mapped_column(String(100), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    #: ``retrain`` (base data plus staff confirmations) or ``import`` (a model directory).
    source: Mapped[str] = mapped_column(String(12))
    #: ``candidate``, ``active``, ``retired`` or ``rejected``.
    status: Mapped[str] = mapped_column(String(10), default="candidate", index=True)
    #: The model's manifest and its arrays (an ``.npz``): never a pickle.
    manifest: Mapped[dict[str, Any]] = mapped_column(JSON)
    arrays: Mapped[bytes] = mapped_column(LargeBinary)
    #: Scores on confirmed items held out of training, for this model and the one then active.
    evaluation: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: What it was trained on: base examples, confirmed items, held-out items.
    training: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    activated_at: Mapped[datetime | None]
    activated_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("user.id", ondelete="SET NULL"))


class TeamDigest(db.Model):  # type: ignore[name-defined,misc]
    """The weekly digest of one team for one week: claimed, then sent, once."""

    __tablename__ = "team_digest"

    team_id: Mapped[int] = mapped_column(ForeignKey("improvement_team.id", ondelete="CASCADE"),
                                         primary_key=True)
    #: The Monday the digest's week starts.
    week_start: Mapped[date] = mapped_column(Date, primary_key=True)
    #: ``sending``, ``sent``, ``failed`` (tried again) or ``skipped`` (nobody to send to).
    status: Mapped[str] = mapped_column(String(8), default="sending")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    recipients: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(Text)


class SafetyChange(db.Model):  # type: ignore[name-defined,misc]
    """Staff raised or lowered a comment's safety level: what the screen said, and why.

    ``kind`` says what it teaches: a ``miss`` (the screen said none, staff said review
    or urgent), a ``false_alarm`` (the screen flagged it, staff said none), a ``raise``
    (review made urgent) or a ``lower`` (urgent made review). Each item counts at most
    once as a miss and once as a false alarm. ``wording`` is the redacted text, so the
    clinical safety officer can write a rule from it without seeing who wrote it.
    """

    __tablename__ = "safety_change"
    __table_args__ = (
        Index("ix_safety_change_kind_at", "kind", "at"),
        CheckConstraint("kind IN ('miss', 'false_alarm', 'raise', 'lower')", name="kind"),
        CheckConstraint("from_level IN ('urgent', 'review', 'none')", name="from_level"),
        CheckConstraint("to_level IN ('urgent', 'review', 'none')", name="to_level"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("feedback_item.id", ondelete="CASCADE"),
                                         index=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("service.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    #: One of ``miss``, ``false_alarm``, ``raise``, ``lower``.
    kind: Mapped[str] = mapped_column(String(12))
    from_level: Mapped[str] = mapped_column(String(8))
    to_level: Mapped[str] = mapped_column(String(8))
    #: What the screen said when the comment came in, and the rules version it used.
    screen_level: Mapped[str] = mapped_column(String(8))
    rules_version: Mapped[str | None] = mapped_column(String(40))
    #: Why, in the words of the member of staff.
    reason: Mapped[str] = mapped_column(Text)
    #: The comment with personal details removed, as it was when the level changed.
    wording: Mapped[str] = mapped_column(Text)
    language: Mapped[str] = mapped_column(String(8), default="en")

    user: Mapped[User | None] = relationship()
    item: Mapped[FeedbackItem] = relationship()


class SafetyDigest(db.Model):  # type: ignore[name-defined,misc]
    """One service's daily email of comments waiting for a safety review: claimed, then sent."""

    __tablename__ = "safety_digest"

    service_id: Mapped[int] = mapped_column(ForeignKey("service.id", ondelete="CASCADE"),
                                            primary_key=True)
    #: The day (UTC) the digest is for.
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    #: ``sending``, ``sent``, ``failed`` (tried again) or ``skipped`` (nothing waiting).
    status: Mapped[str] = mapped_column(String(8), default="sending")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    #: Comments listed, and people it went to.
    items: Mapped[int] = mapped_column(default=0)
    recipients: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(Text)


class PublicSubmission(db.Model):  # type: ignore[name-defined,misc]
    """One sending of the public feedback page: what stops a flood (engage/feedback/flood.py).

    Each form may be sent once (``token_hash`` is unique); the same urgent text from the
    same place within minutes joins the first one's alert; a service takes at most
    ``ENGAGE_PUBLIC_MAX_PER_HOUR`` comments an hour. Only keyed hashes are kept: no
    address, no text. Rows are deleted once their form could no longer be sent.
    """

    __tablename__ = "public_submission"
    __table_args__ = (
        Index("ix_public_submission_service_at", "service_id", "created_at"),
        Index("ix_public_submission_repeat", "source_hash", "text_hash", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("service.id", ondelete="CASCADE"))
    #: HMAC of the form's signed one-time value: a second sending of the form finds it.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    #: HMAC of the client's address and the service: "the same place", not who.
    source_hash: Mapped[str] = mapped_column(String(64))
    #: HMAC of the comment, folded (case, spaces), to find the same text sent again.
    text_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: The comment it stored (None once retention or erasure removed the comment).
    feedback_item_id: Mapped[int | None] = mapped_column(
        ForeignKey("feedback_item.id", ondelete="SET NULL"))
    #: The alert the comment raised, or the open one it joined as a repeat.
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("alert.id", ondelete="SET NULL"))
