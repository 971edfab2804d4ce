"""The Flask extensions, created unbound here and bound to the app in ``create_app``."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click
from flask_babel import Babel
from flask_login import LoginManager
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect

from engage.core.db import Base

if TYPE_CHECKING:
    from flask import Flask


class DeferredGroup(click.Group):
    """A command group imported only when it runs or shows its own help.

    Listed by its name and one-line help alone, so listing it (``engage --help``) imports
    nothing. Click runs a subcommand as ``ctx.command`` of the context ``make_context``
    returns, so handing over the real group's context hands over everything else.
    """

    def __init__(self, name: str, load: Callable[[], click.Group], short_help: str) -> None:
        super().__init__(name, help=short_help, short_help=short_help)
        self._load = load

    def make_context(self, info_name: str | None, args: list[str],
                     parent: click.Context | None = None, **extra: Any) -> click.Context:
        return self._load().make_context(info_name, args, parent=parent, **extra)

    def invoke(self, ctx: click.Context) -> Any:
        return self._load().invoke(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return self._load().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return self._load().list_commands(ctx)

    def to_info_dict(self, ctx: click.Context) -> dict[str, Any]:
        return self._load().to_info_dict(ctx)


def _flask_migrate_commands() -> click.Group:
    from flask_migrate.cli import db as commands

    return commands  # type: ignore[no-any-return]


#: ``engage db ...``: Flask-Migrate's commands, with its own one-line help.
migrate_command = DeferredGroup("db", _flask_migrate_commands, "Perform database migrations.")


class Migrate:
    """Flask-Migrate's ``Migrate``, imported on first use rather than at start-up.

    ``flask_migrate`` imports Alembic, a tenth of a second or more that only ``engage db``,
    the demo and the tests use. ``init_app`` takes Flask-Migrate's arguments and puts the
    ``db`` commands on ``app.cli`` (``migrate_command``) and a stand-in at
    ``app.extensions["migrate"]``; the first read of the stand-in imports Flask-Migrate and
    binds its ``Migrate`` to the app with those arguments, which replaces both.
    """

    def __init__(self) -> None:
        self._real: Any = None

    @property
    def real(self) -> Any:
        """The ``flask_migrate.Migrate`` (imported now if it was not yet)."""
        if self._real is None:
            from flask_migrate import Migrate as FlaskMigrate

            self._real = FlaskMigrate()
        return self._real

    def init_app(self, app: Flask, db: SQLAlchemy, **kwargs: Any) -> None:
        app.extensions["migrate"] = _UnboundMigrate(self, app, db, kwargs)
        app.cli.add_command(migrate_command)


class _UnboundMigrate:
    """``app.extensions["migrate"]`` until something reads it (Flask-Migrate's functions,
    ``migrations/env.py``); then Flask-Migrate's own, which it answers for."""

    def __init__(self, migrate: Migrate, app: Flask, db: SQLAlchemy,
                 kwargs: dict[str, Any]) -> None:
        self._migrate = migrate
        self._app = app
        self._db = db
        self._kwargs = kwargs
        self._bound: Any = None

    def __getattr__(self, name: str) -> Any:
        # Called only for what this object lacks: every attribute of Flask-Migrate's.
        if name.startswith("_"):
            raise AttributeError(name)
        if self._bound is None:
            self._migrate.real.init_app(self._app, self._db, **self._kwargs)
            self._bound = self._app.extensions["migrate"]
        return getattr(self._bound, name)


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
babel = Babel()
