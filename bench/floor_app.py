"""The floor for the survey benchmark: the least a Flask request that writes can cost.

One route, ``POST /hit``, inserts one row into its own tiny table with SQLAlchemy
(one transaction, committed) and answers with a short text. It reads the same
``ENGAGE_DATABASE_URL`` as Engage and opens SQLite the way Engage does (WAL,
busy timeout, foreign keys, ``pool_pre_ping``), so the difference between the
two is what Engage itself adds: templates, ORM, several queries, audit rows.

Run by ``bench/survey.py`` as ``gunicorn -w 2 "floor_app:create_app()"`` (cwd ``bench/``).
Call :func:`create_table` once before the workers start.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

from flask import Flask
from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    event,
    insert,
)
from sqlalchemy.engine import Engine

metadata = MetaData()
hits = Table(
    "bench_floor_hit",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("note", String(32), nullable=False),
)


def make_engine(url: str) -> Engine:
    engine = create_engine(url, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=10000")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.close()

    return engine


def create_table(url: str) -> None:
    """Create (or empty) the floor's table."""
    engine = make_engine(url)
    try:
        metadata.drop_all(engine)
        metadata.create_all(engine)
    finally:
        engine.dispose()


def create_app(url: str | None = None) -> Flask:
    engine = make_engine(url or os.environ["ENGAGE_DATABASE_URL"])
    app = Flask(__name__)

    @app.post("/hit")
    def hit() -> tuple[str, int, dict[str, str]]:
        with engine.begin() as conn:
            conn.execute(insert(hits).values(created_at=datetime.now(UTC), note="floor"))
        return "ok\n", 200, {"Content-Type": "text/plain; charset=utf-8"}

    return app
