"""The Alembic migrations are the only source of the schema: one head, matching the models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from engage.extensions import db


def _script(app):
    return ScriptDirectory.from_config(app.extensions["migrate"].migrate.get_config())


def test_migrations_have_a_single_head(app):
    with app.app_context():
        assert len(_script(app).get_heads()) == 1


def test_database_is_at_the_head_after_upgrade(app):
    with app.app_context(), db.engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
        assert current == _script(app).get_current_head()


def test_models_and_migrations_agree(app):
    with app.app_context(), db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, db.metadata)
    assert diff == [], f"models differ from the migrations: {diff}"


def test_upgrading_a_sqlite_database_keeps_rows_that_reference_rebuilt_tables(tmp_path):
    """0004 rebuilds ``message`` on SQLite; with foreign keys on, dropping it would cascade
    into ``message_invitation`` and silently lose which invitations each message carried."""
    import sqlite3

    from flask_migrate import downgrade, upgrade

    import config
    from engage import create_app

    class Cfg(config.TestConfig):
        SQLALCHEMY_DATABASE_URI = f"sqlite:///{tmp_path}/old.db"

    app = create_app(Cfg)
    with app.app_context():
        upgrade(revision="0003")
        db.engine.dispose()
    con = sqlite3.connect(tmp_path / "old.db")
    con.executescript("""
        INSERT INTO service (id, slug, name, created_at) VALUES (1, 's', 'S', '2027-01-01');
        INSERT INTO patient (id, ref, language, timezone, channel, created_at)
            VALUES (1, 'MRN1', 'en', 'Europe/London', 'email', '2027-01-01');
        INSERT INTO invitation (id, patient_id, service_id, instrument_id, language, status,
            opens_at, closes_at, created_at, channel, messages_planned)
            VALUES (1, 1, 1, 'phq-9', 'en', 'sent', '2027-01-01', '2027-02-01', '2027-01-01',
                    'patient', 1);
        INSERT INTO message (id, patient_id, kind, channel, status, created_at, next_attempt_at,
            attempts) VALUES (1, 1, 'invitation', 'email', 'sent', '2027-01-01', '2027-01-01', 1);
        INSERT INTO message_invitation (message_id, invitation_id) VALUES (1, 1);
    """)
    con.commit()
    con.close()
    with app.app_context():
        upgrade()
        db.engine.dispose()
        con = sqlite3.connect(tmp_path / "old.db")
        assert con.execute("SELECT count(*) FROM message_invitation").fetchone()[0] == 1
        assert con.execute("PRAGMA foreign_key_check").fetchall() == []
        con.close()
        downgrade(revision="0003")
        db.engine.dispose()
    con = sqlite3.connect(tmp_path / "old.db")
    assert con.execute("SELECT count(*) FROM message_invitation").fetchone()[0] == 1
    con.close()
