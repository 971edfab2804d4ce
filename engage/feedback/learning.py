"""Learning from staff: confirmed themes become training data for a candidate model.

A candidate is trained on the shipped base data plus the items staff confirmed,
except one in five (chosen by a hash of who wrote them, so one person's comments
stay on one side), which are held out. Both the candidate and the model in force
are scored on those held-out items, and an admin sees the figures before switching
the candidate on. Nothing switches on by itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from flask import current_app
from sqlalchemy import func, select, update

from engage.audit.services import record
from engage.core.db import job_lease, release_lease, utcnow
from engage.extensions import db
from engage.feedback.analysis import active_model
from engage.feedback.models import FeedbackItem, ThemeModelRecord
from engage.feedback.text import model as textmodel
from engage.feedback.themes import active_themes, resolve, theme_index

BASE_DATA = Path(textmodel.__file__).parent / "data" / "fft-themes-v6.csv.gz"
#: A confirmed item counts this many times a base example: it is this hospital's own voice.
CONFIRMED_WEIGHT = 2.0
HOLDOUT_SALT = "engage-confirmed-holdout"
LEASE = "themes.retrain"


def base_examples() -> list[textmodel.Example]:
    """The base training data (``THEMES_BASE_DATA``, else the shipped copy), its themes
    renamed to the taxonomy as it is now.

    A merged theme's examples count for the theme it was merged into; a retired
    theme's are dropped from the labels (the comments still teach the others).
    """
    index = theme_index()
    path = current_app.config.get("THEMES_BASE_DATA") or BASE_DATA
    examples, _columns = textmodel.read_training_csv(path)
    return [_relabel(e, index) for e in examples]


def _relabel(example: textmodel.Example, index: Any) -> textmodel.Example:
    themes = frozenset(t.key for t in (index.get(k) for k in example.themes) if t is not None)
    return textmodel.Example(id=example.id, text=example.text, question=example.question,
                             themes=themes, sentiment=example.sentiment, group=example.group,
                             weight=example.weight)


def confirmed_examples() -> list[textmodel.Example]:
    """Every item whose themes staff confirmed, as a training example."""
    items = db.session.scalars(
        select(FeedbackItem).where(FeedbackItem.themes_confirmed_at.is_not(None))
        .order_by(FeedbackItem.id))
    examples = []
    for item in items:
        themes = set()
        for row in item.themes:
            if row.status != "confirmed":
                continue
            target = resolve(row.theme)
            if target is not None:
                themes.add(target.key)
        examples.append(textmodel.Example(
            id=f"item-{item.id}", text=item.text, question=item.question,
            themes=frozenset(themes), sentiment=item.sentiment,
            group=f"patient-{item.patient_id}" if item.patient_id else f"item-{item.id}",
            weight=CONFIRMED_WEIGHT,
        ))
    return examples


def split_confirmed(
    examples: Sequence[textmodel.Example],
) -> tuple[list[textmodel.Example], list[textmodel.Example]]:
    """(for training, held out): the same items are held out every time."""
    return textmodel.grouped_split(list(examples), fraction=0.2, salt=HOLDOUT_SALT)


def score(model: textmodel.ThemeModel, examples: Sequence[textmodel.Example]) -> dict[str, Any]:
    """Micro- and macro-F1 of ``model`` on ``examples``, its labels read as the taxonomy is now.

    Macro-F1 averages the themes present in ``examples``; sentiment accuracy counts
    the examples that have a confirmed sentiment.
    """
    if not examples:
        return {"n": 0}
    index = theme_index()
    predictions = model.predict([e.text for e in examples], [e.question for e in examples])
    tp: dict[str, int] = {}
    fp: dict[str, int] = {}
    fn: dict[str, int] = {}
    present: set[str] = set()
    right = rated = 0
    for example, prediction in zip(examples, predictions, strict=True):
        got = {t.key for t in (index.get(name) for name, _c in prediction.themes)
               if t is not None}
        want = set(example.themes)
        present |= want
        for key in got & want:
            tp[key] = tp.get(key, 0) + 1
        for key in got - want:
            fp[key] = fp.get(key, 0) + 1
        for key in want - got:
            fn[key] = fn.get(key, 0) + 1
        if example.sentiment is not None:
            rated += 1
            right += int(prediction.sentiment == example.sentiment)

    def f1(t: int, p: int, n: int) -> float:
        return 2 * t / (2 * t + p + n) if t + p + n else 0.0

    all_tp, all_fp, all_fn = sum(tp.values()), sum(fp.values()), sum(fn.values())
    per = {k: f1(tp.get(k, 0), fp.get(k, 0), fn.get(k, 0)) for k in present}
    return {
        "n": len(examples),
        "micro_f1": round(f1(all_tp, all_fp, all_fn), 4),
        "macro_f1": round(sum(per.values()) / len(per), 4) if per else None,
        "themes_present": len(per),
        "sentiment_n": rated,
        "sentiment_accuracy": round(right / rated, 4) if rated else None,
    }


def retrain(user: Any = None, now: datetime | None = None) -> ThemeModelRecord:
    """Train a candidate on base data plus confirmed items; score it; store it. Flushes."""
    now = now or utcnow()
    base = base_examples()
    confirmed = confirmed_examples()
    learn, held_out = split_confirmed(confirmed)
    columns = [t.key for t in active_themes()]
    model = textmodel.train(base + learn, columns=columns, seed=0)
    current, current_id = active_model()
    manifest, arrays = model.to_parts()
    record_ = ThemeModelRecord(
        version=model.version, source="retrain", status="candidate", created_at=now,
        created_by_id=getattr(user, "id", None), manifest=manifest, arrays=arrays,
        evaluation={
            "held_out": len(held_out),
            "candidate": score(model, held_out),
            "active": score(current, held_out),
            "active_version": current.version,
            "active_id": current_id,
        },
        training={"base_examples": len(base), "confirmed_used": len(learn),
                  "confirmed_held_out": len(held_out), "confirmed_total": len(confirmed),
                  "labels": len(model.labels)},
    )
    db.session.add(record_)
    db.session.flush()
    record("create", "theme_model", record_.id, version=model.version)
    return record_


def import_model(directory: str | Path, user: Any = None) -> ThemeModelRecord:
    """A model directory (``engage themes train``) stored as a candidate, scored like one."""
    model = textmodel.ThemeModel.load(directory)
    if db.session.scalar(select(ThemeModelRecord.id)
                         .where(ThemeModelRecord.version == model.version)) is not None:
        raise ValueError(f"model {model.version} is already stored")
    _learn, held_out = split_confirmed(confirmed_examples())
    current, current_id = active_model()
    manifest, arrays = model.to_parts()
    record_ = ThemeModelRecord(
        version=model.version, source="import", status="candidate",
        created_by_id=getattr(user, "id", None), manifest=manifest, arrays=arrays,
        evaluation={"held_out": len(held_out), "candidate": score(model, held_out),
                    "active": score(current, held_out), "active_version": current.version,
                    "active_id": current_id},
        training={"labels": len(model.labels), "meta": model.meta.get("training", {})},
    )
    db.session.add(record_)
    db.session.flush()
    record("create", "theme_model", record_.id, version=model.version, source="import")
    return record_


def activate(record_: ThemeModelRecord | None, user: Any = None,
             now: datetime | None = None) -> None:
    """Switch ``record_`` on (None: go back to the shipped model); the one in force retires."""
    now = now or utcnow()
    db.session.execute(update(ThemeModelRecord).where(ThemeModelRecord.status == "active")
                       .values(status="retired"))
    if record_ is not None:
        record_.status = "active"
        record_.activated_at = now
        record_.activated_by_id = getattr(user, "id", None)
    db.session.flush()
    record("activate", "theme_model", record_.id if record_ else None,
           version=record_.version if record_ else "shipped")


def reject(record_: ThemeModelRecord, user: Any = None) -> None:
    if record_.status != "candidate":
        raise ValueError("only a candidate can be rejected")
    record_.status = "rejected"
    db.session.flush()
    record("reject", "theme_model", record_.id, version=record_.version)


def new_confirmations_since_last_model() -> int:
    """Confirmed items newer than the newest stored model (all of them when there is none)."""
    last = db.session.scalar(select(func.max(ThemeModelRecord.created_at))
                             .where(ThemeModelRecord.source == "retrain"))
    query = select(func.count()).select_from(FeedbackItem).where(
        FeedbackItem.themes_confirmed_at.is_not(None))
    if last is not None:
        query = query.where(FeedbackItem.themes_confirmed_at > last)
    return int(db.session.scalar(query) or 0)


def request_training(user: Any = None, now: datetime | None = None) -> None:
    """An admin's "train a candidate now": the scheduler trains it at its next run (within a
    minute). Training can outlast a web request, so it never runs in one. Flushes."""
    from engage.core.models import JobRequest

    request = db.session.get(JobRequest, LEASE)
    if request is None:
        request = JobRequest(name=LEASE)
        db.session.add(request)
    request.requested_at = now or utcnow()
    request.requested_by_id = getattr(user, "id", None)
    db.session.flush()
    record("request", "theme_model", None)


def training_requested() -> Any:
    """The pending request to train (its time and who asked), or None."""
    from engage.core.models import JobRequest

    return db.session.get(JobRequest, LEASE)


def _due() -> Any:
    """Why a candidate should be trained now: a pending request, or enough confirmations."""
    request = training_requested()
    if request is not None:
        return request
    return new_confirmations_since_last_model() >= current_app.config["THEMES_RETRAIN_MIN_NEW"]


def retrain_if_due(now: datetime | None = None) -> ThemeModelRecord | None:
    """The ``themes.retrain`` job: a candidate when an admin asked for one or enough new
    confirmations came in.

    A lease keeps two scheduler processes from training at once. Commits.
    """
    from sqlalchemy import delete

    from engage.core.models import JobRequest
    from engage.delivery.services import worker_name

    now = now or utcnow()
    if not _due():
        return None
    holder = worker_name()
    if not job_lease(LEASE, holder, seconds=3600, now=now):
        return None
    try:
        # Checked again under the lease: another process may have just trained one.
        request = _due()
        if not request:
            return None
        asked = request if isinstance(request, JobRequest) else None
        candidate = retrain(_user(asked.requested_by_id) if asked else None, now=now)
        if asked is not None:
            # Only the request this run answered: one made while it trained stays.
            db.session.execute(delete(JobRequest).where(
                JobRequest.name == LEASE, JobRequest.requested_at <= asked.requested_at))
        db.session.commit()
        current_app.logger.info("theme model candidate %s trained", candidate.version)
        return candidate
    finally:
        release_lease(LEASE, holder)


def _user(user_id: int | None) -> Any:
    from engage.accounts.models import User

    return db.session.get(User, user_id) if user_id else None
