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
