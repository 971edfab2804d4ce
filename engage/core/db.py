"""The declarative base, constraint naming and the UTC datetime column type."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import DateTime, MetaData
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, registry
from sqlalchemy.types import TypeDecorator

#: Constraint names that Alembic can find again on every database.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC. Use it (uncalled) as a column default."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC in Python.

    PostgreSQL stores ``timestamptz``; SQLite has no time zones, so the value is
    stored as naive UTC and made aware again on the way out.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    registry = registry(
        metadata=MetaData(naming_convention=NAMING_CONVENTION),
        type_annotation_map={datetime: UTCDateTime()},
    )


def configure_engine_events(engine: Any) -> None:
    """SQLite: enforce foreign keys and wait for locks instead of failing at once."""
    from sqlalchemy import event

    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # pysqlite's own transaction handling breaks SAVEPOINT; let SQLAlchemy
        # emit BEGIN itself (the recipe from SQLAlchemy's SQLite documentation).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA journal_mode=WAL")
        # With WAL, NORMAL is safe against an application crash and skips an fsync per
        # commit; a power cut may lose the last commits, never corrupt the file.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # IMMEDIATE: take the write lock when the transaction starts. Nearly every
        # transaction writes (answers, audit rows), and in WAL mode a deferred one
        # that read first and then writes after another connection committed fails
        # at once with "database is locked": the busy timeout does not cover that.
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def after_commit(func: Any, *args: Any) -> None:
    """Run ``func(*args)`` once the current request's transaction has committed.

    Outside a request (CLI, jobs) the caller commits and then calls
    :func:`run_after_commit` itself.
    """
    from flask import g

    g.setdefault("_after_commit", []).append((func, args))


def take_after_commit() -> list[tuple[Any, tuple[Any, ...]]]:
    """The work queued with :func:`after_commit`, removed from the queue."""
    from flask import g

    return list(g.pop("_after_commit", []))


def run_after_commit() -> None:
    """Run the queued work now (CLI and jobs, after their own commit)."""
    for func, args in take_after_commit():
        func(*args)


def run_deferred(app: Any, pending: list[tuple[Any, tuple[Any, ...]]]) -> None:
    """Run queued work in a fresh app context; one failure does not stop the rest."""
    from engage.extensions import db

    with app.app_context():
        for func, args in pending:
            try:
                func(*args)
            except Exception:
                app.logger.exception("deferred %s failed", getattr(func, "__name__", func))
                db.session.rollback()


def claim(statement: Any) -> int:
    """Run a conditional UPDATE and return how many rows it changed.

    This is how Engage claims work that two processes might race for: the
    ``WHERE`` states what must still be true, and only one caller sees 1.
    """
    from engage.extensions import db

    result = db.session.execute(statement.execution_options(synchronize_session=False))
    return int(getattr(result, "rowcount", 0) or 0)


def job_lease(name: str, holder: str, seconds: int, now: datetime | None = None) -> bool:
    """Take the named lease for ``seconds`` unless another holder has it; commits.

    For periodic work that must not run twice at once in two scheduler processes
    and that has no row of its own to claim (e.g. training a model). The lease
    lapses by itself, so a crashed holder blocks nobody for long.
    """
    from sqlalchemy import or_, select, update
    from sqlalchemy.exc import IntegrityError

    from engage.core.models import JobLease
    from engage.extensions import db

    now = now or utcnow()
    if db.session.scalar(select(JobLease.name).where(JobLease.name == name)) is None:
        try:
            with db.session.begin_nested():
                db.session.add(JobLease(name=name))
        except IntegrityError:
            pass  # another process created it first: fine, now claim it like them
    won = claim(
        update(JobLease)
        .where(JobLease.name == name,
               or_(JobLease.lease_until.is_(None), JobLease.lease_until <= now))
        .values(holder=holder, lease_until=now + timedelta(seconds=seconds))
    )
    db.session.commit()
    return bool(won)


def release_lease(name: str, holder: str) -> None:
    """Give the lease back early (the work is done); commits."""
    from sqlalchemy import update

    from engage.core.models import JobLease
    from engage.extensions import db

    claim(update(JobLease).where(JobLease.name == name, JobLease.holder == holder)
          .values(lease_until=None))
    db.session.commit()
