"""The theme model, safety rules and staff names in force, read from the database.

The newest saved rule set and the active trained model live in the database and fall
back to the ones shipped with Engage. Two kinds of caller read them, with the same
statements: the app (web workers, the scheduler) through its session
(:mod:`engage.feedback.analysis`), and ``engage feedback classify`` through a read-only
connection of its own (:func:`open_database`), so that classifying one comment starts
without Flask, the app or (on SQLite and PostgreSQL) SQLAlchemy.

Each process keeps the parsed model and rules in memory and asks the database only which
version is current, so a model switched on by an admin reaches every worker at its next
comment. Nothing here imports Flask.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from engage.feedback.text.model import ThemeModel, default_model
from engage.feedback.text.safety import SafetyRules, default_rules

#: Runs one SQL statement (no parameters) and returns its rows.
Execute = Callable[[str], Sequence[Sequence[Any]]]

#: Fails when the tables do not exist yet (before ``engage db upgrade``).
PROBE = "SELECT 1 FROM theme_model LIMIT 1"
_ACTIVE_MODEL = "SELECT id, version FROM theme_model WHERE status = 'active' ORDER BY id LIMIT 1"
_MODEL = "SELECT manifest, arrays FROM theme_model WHERE id = {id:d}"
_NEWEST_RULES = "SELECT id, created_at FROM safety_rule_set ORDER BY id DESC LIMIT 1"
_RULES = "SELECT rules FROM safety_rule_set WHERE id = {id:d}"
_STAFF_NAMES = "SELECT name FROM \"user\" WHERE name <> ''"

_lock = threading.Lock()
#: Parsed once per process, keyed by what identifies the stored row's content (an id alone
#: can come back for other content after a rollback on SQLite).
_models: dict[tuple[int, str], ThemeModel] = {}
_rules: dict[tuple[int, str], SafetyRules] = {}


def _cached(cache: dict[Any, Any], key: Any, load: Callable[[], Any]) -> Any:
    """The parsed value for ``key``, loading it (and forgetting any other) when new."""
    with _lock:
        value = cache.get(key)
    if value is None:
        value = load()
        with _lock:
            cache.clear()  # one version in memory at a time
            cache[key] = value
    return value


def _json(value: Any) -> Any:
    """A JSON column as Python: SQLite's drivers give its text, PostgreSQL's the value."""
    return json.loads(value) if isinstance(value, str | bytes) else value


def model(execute: Execute | None) -> tuple[ThemeModel, int | None]:
    """The model in force and its database id (None: the shipped one). ``execute`` None
    means there is no database yet."""
    rows = execute(_ACTIVE_MODEL) if execute is not None else []
    if not rows:
        return default_model(), None
    model_id, version = int(rows[0][0]), str(rows[0][1])

    def load() -> ThemeModel:
        assert execute is not None
        manifest, arrays = execute(_MODEL.format(id=model_id))[0]
        return ThemeModel.from_parts(_json(manifest), bytes(arrays))

    return _cached(_models, (model_id, version), load), model_id


def rules(execute: Execute | None) -> tuple[SafetyRules, int | None]:
    """The newest saved safety rules and their id (None: the shipped file)."""
    rows = execute(_NEWEST_RULES) if execute is not None else []
    if not rows:
        return default_rules(), None
    rules_id, created_at = int(rows[0][0]), str(rows[0][1])

    def load() -> SafetyRules:
        assert execute is not None
        return SafetyRules.from_dict(_json(execute(_RULES.format(id=rules_id))[0][0]))

    return _cached(_rules, (rules_id, created_at), load), rules_id


def rules_version(found: SafetyRules, rules_id: int | None) -> str:
    """What an analysis records as the rules it used: the shipped version, or ``#id``
    after it for a saved rule set."""
    return found.version if rules_id is None else f"{found.version}#{rules_id}"


def staff_names(execute: Execute | None) -> list[str]:
    """The words of staff names (comments often name the nurse or doctor), for the PII
    finder."""
    if execute is None:
        return []
    names: set[str] = set()
    for (full,) in execute(_STAFF_NAMES):
        names.update(part for part in str(full).split() if len(part) > 1)
    return sorted(names)


# --- a connection of one's own (the command line) ------------------------------------------


class DatabaseError(RuntimeError):
    """The database cannot be read; the message says which one and why (without its
    password)."""


@contextlib.contextmanager
def open_database(url: str) -> Iterator[Execute | None]:
    """A read-only way into the database at ``url`` (a SQLAlchemy URL), or None when it
    has no Engage tables yet: a SQLite file that does not exist is not created. Raises
    :class:`DatabaseError` when it cannot be reached or read.

    A SQLite file opens with the standard library and a PostgreSQL URL with psycopg
    directly, which saves importing SQLAlchemy (a fifth of a second); any other URL goes
    through SQLAlchemy.
    """
    scheme, _, rest = url.partition("://")
    if scheme == "sqlite" and "?" not in rest:
        opened = _sqlite(rest)
    elif scheme in ("postgresql", "postgresql+psycopg", "postgres"):
        opened = _postgresql("postgresql://" + rest)
    else:
        opened = _sqlalchemy(url)
    try:
        with opened as execute:
            yield execute
    except DatabaseError:
        raise
    except Exception as exc:
        if not _is_database_error(exc):
            raise
        raise DatabaseError(f"cannot read the database {_safe(url)}: "
                            f"{str(exc).strip().splitlines()[0]}") from exc


def _is_database_error(exc: BaseException) -> bool:
    """A driver's error (sqlite3, psycopg, SQLAlchemy), told by its module: importing
    the drivers to compare classes would cost the time this module saves."""
    module = type(exc).__module__ or ""
    return module.split(".")[0] in ("sqlite3", "psycopg", "sqlalchemy")


def _safe(url: str) -> str:
    """``url`` without its password."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(":" + parts.password + "@", ":***@", 1)
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


@contextlib.contextmanager
def _sqlite(rest: str) -> Iterator[Execute | None]:
    import sqlite3

    path = urllib.parse.unquote(rest[1:]) if rest.startswith("/") else ""
    if path in ("", ":memory:") or not os.path.exists(path):
        yield None  # an empty database: nothing saved, the shipped model and rules
        return
    uri = "file:" + urllib.parse.quote(os.path.abspath(path)) + "?mode=ro"
    connection = sqlite3.connect(uri, uri=True)
    try:
        def execute(sql: str) -> list[Any]:
            return connection.execute(sql).fetchall()

        try:
            execute(PROBE)
        except sqlite3.OperationalError:  # no tables yet
            yield None
        else:
            yield execute
    finally:
        connection.close()


@contextlib.contextmanager
def _postgresql(conninfo: str) -> Iterator[Execute | None]:
    import psycopg

    with psycopg.connect(conninfo) as connection:
        connection.read_only = True

        def execute(sql: str) -> list[Any]:
            return connection.execute(sql).fetchall()  # type: ignore[arg-type]

        try:
            execute(PROBE)
        except psycopg.errors.UndefinedTable:
            connection.rollback()
            yield None
        else:
            yield execute


@contextlib.contextmanager
def _sqlalchemy(url: str) -> Iterator[Execute | None]:
    from sqlalchemy import create_engine
    from sqlalchemy.exc import DBAPIError
    from sqlalchemy.pool import NullPool

    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            def execute(sql: str) -> list[Any]:
                return list(connection.exec_driver_sql(sql).all())

            try:
                execute(PROBE)
            except DBAPIError:
                connection.rollback()
                yield None
            else:
                yield execute
            connection.rollback()  # read only: nothing to keep
    finally:
        engine.dispose()
