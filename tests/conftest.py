"""Shared fixtures: the app, a per-test rolled-back database, clients, factories, SMTP.

The suite runs on SQLite by default and on PostgreSQL when
``ENGAGE_TEST_DATABASE_URL`` is set. The schema always comes from the Alembic
migrations, never from ``create_all``.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text
from sqlalchemy.orm import scoped_session, sessionmaker

from config import TestConfig
from engage import create_app
from engage.extensions import db as _db
from tests.factories import *  # noqa: F403  (factory fixtures)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def reset_database(app: Flask) -> None:
    """Drop everything and upgrade to the newest migration."""
    from flask_migrate import upgrade

    with app.app_context():
        engine = _db.engine
        if engine.dialect.name == "postgresql":
            with engine.begin() as conn:
                conn.execute(text("DROP SCHEMA public CASCADE"))
                conn.execute(text("CREATE SCHEMA public"))
        upgrade()
        _db.session.remove()


def _base_sample(path: Path, rows: int) -> Path:
    import csv
    import gzip

    from engage.feedback.learning import BASE_DATA

    with gzip.open(BASE_DATA, "rt", encoding="utf-8", newline="") as source, \
            path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        for n, row in enumerate(csv.reader(source)):
            if n > rows:
                break
            writer.writerow(row)
    return path


@pytest.fixture(scope="session")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    instance = tmp_path_factory.mktemp("instance")
    url = os.environ.get("ENGAGE_TEST_DATABASE_URL") or f"sqlite:///{instance / 'test.db'}"

    class Config(TestConfig):
        SQLALCHEMY_DATABASE_URI = url

    os.environ["ENGAGE_INSTANCE_PATH"] = str(instance)
    app = create_app(Config)
    # Retraining starts from the first 1,200 base comments: the same code, a quarter of the
    # time. The shipped model's own tests and bench/themes.py use all of them.
    app.config["THEMES_BASE_DATA"] = str(_base_sample(instance / "base-sample.csv", 1200))
    reset_database(app)
    yield app
    with app.app_context():
        _db.engine.dispose()


@pytest.fixture
def db(app: Flask) -> Iterator[Any]:
    """The database, inside a transaction rolled back after the test.

    Commits made by the code under test (one per request) only release a
    savepoint, so every test starts from the same empty schema.
    """
    from flask_sqlalchemy.session import _app_ctx_id

    with app.app_context():
        connection = _db.engine.connect()
        transaction = connection.begin()
        factory = sessionmaker(bind=connection, join_transaction_mode="create_savepoint")
        original = _db.session
        _db.session = scoped_session(factory, scopefunc=_app_ctx_id)
        try:
            yield _db
        finally:
            _db.session.remove()
            _db.session = original
            transaction.rollback()
            connection.close()


@pytest.fixture
def committed_db(app: Flask) -> Iterator[Any]:
    """A database whose commits are real, for tests with other threads or processes.

    Every table is emptied afterwards.
    """
    with app.app_context():
        yield _db
        _db.session.remove()
        tables = [t.name for t in reversed(_db.metadata.sorted_tables)]
        with _db.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) +
                                  " RESTART IDENTITY CASCADE"))
            else:
                for table in tables:
                    conn.execute(text(f'DELETE FROM "{table}"'))


class IsolatedClient(FlaskClient):
    """A test client whose every request gets its own app context, as in production.

    Without this, a request made while a test holds an app context reuses it,
    so ``g`` (the locale, the invitation, work queued for after the commit) and
    the database session would leak from one request into the next.
    """

    def open(self, *args: Any, **kwargs: Any) -> Any:
        from flask.globals import _cv_app

        token = _cv_app.set(None)  # type: ignore[arg-type]
        try:
            return super().open(*args, **kwargs)
        finally:
            _cv_app.reset(token)


@pytest.fixture
def client(app: Flask, db: Any) -> FlaskClient:
    app.test_client_class = IsolatedClient
    return app.test_client()


@pytest.fixture
def runner(app: Flask, db: Any):  # type: ignore[no-untyped-def]
    return app.test_cli_runner()


class AuthActions:
    def __init__(self, client: FlaskClient) -> None:
        self.client = client

    def login(self, email: str, password: str = "correct-horse-battery") -> Any:
        from tests.helpers import csrf_from

        page = self.client.get("/login")
        return self.client.post(
            "/login",
            data={"email": email, "password": password, "csrf_token": csrf_from(page)},
        )

    def logout(self) -> Any:
        return self.client.post("/logout")


@pytest.fixture
def auth(client: FlaskClient) -> AuthActions:
    return AuthActions(client)


class Mailbox:
    """Messages received by a real SMTP server (aiosmtpd) running in the test process."""

    def __init__(self) -> None:
        self.messages: list[Any] = []
        self.event = threading.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        from email import message_from_bytes, policy

        msg = message_from_bytes(envelope.content, policy=policy.default)
        self.messages.append(msg)
        self.event.set()
        return "250 OK"


@pytest.fixture
def smtp(app: Flask) -> Iterator[Mailbox]:
    from aiosmtpd.controller import Controller

    mailbox = Mailbox()
    port = _free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    old = app.config["SMTP_HOST"], app.config["SMTP_PORT"]
    app.config["SMTP_HOST"], app.config["SMTP_PORT"] = "127.0.0.1", port
    try:
        yield mailbox
    finally:
        controller.stop()
        app.config["SMTP_HOST"], app.config["SMTP_PORT"] = old


@pytest.fixture(scope="session")
def project_root() -> Path:
    return Path(__file__).resolve().parent.parent
