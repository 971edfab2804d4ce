"""The ``engage`` command: a Flask CLI group bound to ``create_app``.

``engage --help`` lists the commands without building the app (which imports every
blueprint): Engage's commands are registered on the group as well as on ``app.cli``.
"""

from __future__ import annotations

import contextlib
import getpass
import sys
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, ScriptInfo, with_appcontext

from engage.accounts.login_cli import reset_2fa_command, unlock_command
from engage.console import fail
from engage.core.permissions import ROLES
from engage.extensions import db, migrate_command


def _create_app() -> Flask:
    from config import ConfigError
    from engage import create_app

    try:
        return create_app()
    except ConfigError as exc:
        # A clear sentence, not a traceback, for the operator at the console.
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)


class EngageGroup(FlaskGroup):
    """A ``FlaskGroup`` that lists Engage's commands without building the app.

    FlaskGroup builds the app to learn the commands on ``app.cli``, which imports every
    blueprint. Every one of those is also registered here (``commands()``, and
    Flask-Migrate's ``db`` as a stand-in that imports nothing until it runs), so help is
    written from this group alone: a command put on ``app.cli`` some other way runs, but is
    listed only once it is added here too. Running a command still builds the app first,
    pushes its context and runs the app's command, as FlaskGroup does.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._app_commands: set[str] = set()

    def _add_app_commands(self) -> None:
        if self._app_commands:
            return
        app_commands = [*commands(), migrate_command]
        for command in app_commands:
            self.add_command(command)
        self._app_commands = {command.name for command in app_commands if command.name}

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        self._add_app_commands()
        return super().get_command(ctx, name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._add_app_commands()
        self._load_plugin_commands()
        return sorted(self.commands)

    def resolve_command(self, ctx: click.Context, args: list[str]
                        ) -> tuple[str | None, click.Command | None, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        if name is None or name not in self._app_commands:  # run, shell, routes, plugins
            return name, command, rest
        app = ctx.ensure_object(ScriptInfo).load_app()
        if not current_app or current_app._get_current_object() is not app:  # type: ignore[attr-defined]
            ctx.with_resource(app.app_context())
        return name, app.cli.get_command(ctx, name) or command, rest


@click.group(cls=EngageGroup, create_app=_create_app, add_version_option=False,
             load_dotenv=False, set_debug_flag=False)
def cli() -> None:
    """Engage: patient and family engagement for a Learning Health System."""


def main() -> None:
    """Entry point of the ``engage`` console script (:func:`engage.console.main`)."""
    from engage.console import main as console_main

    console_main()


def commands() -> list[click.Command]:
    """Engage's own commands (Flask-Migrate adds ``db``)."""
    from engage.accounts.cli import add_commands as add_user_commands
    from engage.api.cli import apikeys
    from engage.demo.cli import demo
    from engage.feedback.cli import feedback, themes
    from engage.patients.cli import patients
    from engage.retention.cli import retention
    from engage.scheduling.cli import dispatch_command, enroll

    add_user_commands(users)
    return [users, services, invite, scheduler, demo, enroll, dispatch_command, apikeys,
            feedback, themes, retention, patients]


def register_commands(app: Flask) -> None:
    for command in commands():
        app.cli.add_command(command)


@click.group()
def users() -> None:
    """Staff accounts."""


users.add_command(unlock_command)
users.add_command(reset_2fa_command)


@users.command("create")
@click.argument("email")
@click.option("--role", required=True, type=click.Choice(list(ROLES)))
@click.option("--name", default="")
@click.option("--password", help="Asked for when not given (safer: not kept in shell history).")
@click.option("--service", "service_keys", multiple=True, help="Service id or slug; repeatable.")
@click.option("--language", type=click.Choice(["en", "es", "ar"]))
@with_appcontext
def create_user_command(email: str, role: str, name: str, password: str | None,
                        service_keys: tuple[str, ...], language: str | None) -> None:
    """Create a user with ROLE, member of the given services."""
    from engage.accounts.services import AccountError, create_user
    from engage.org.services import find_service

    found = []
    for key in service_keys:
        service = find_service(key)
        if service is None:
            fail(f"no service {key!r}")
        found.append(service)
    if password is None:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            fail("the passwords do not match")
    try:
        user = create_user(email, role, password, name=name, services=found, language=language)
    except AccountError as exc:
        fail(str(exc))
    db.session.commit()
    click.echo(f"Created {user.role} {user.email}")


@click.group()
def services() -> None:
    """Services (units of care)."""


@services.command("create")
@click.argument("slug")
@click.argument("name")
@with_appcontext
def create_service_command(slug: str, name: str) -> None:
    """Create a service with a short id SLUG and a display NAME."""
    from engage.org.services import create_service

    try:
        service = create_service(slug, name)
    except ValueError as exc:
        fail(str(exc))
    db.session.commit()
    click.echo(f"Created service {service.slug} (id {service.id})")


@services.command("list")
@with_appcontext
def list_services_command() -> None:
    from sqlalchemy import select

    from engage.org.models import Service

    for service in db.session.scalars(select(Service).order_by(Service.id)):
        click.echo(f"{service.id}\t{service.slug}\t{service.name}")


@click.command()
@click.argument("patient_ref")
@click.argument("instrument_id")
@click.option("--language", type=click.Choice(["en", "es", "ar"]),
              help="Language of the questionnaire (default: the patient's).")
@click.option("--service", "service_key", help="Service id or slug (default: the first one).")
@with_appcontext
def invite(patient_ref: str, instrument_id: str, language: str | None,
           service_key: str | None) -> None:
    """Invite PATIENT_REF to answer INSTRUMENT_ID; print the survey link last."""
    import surveys
    from engage.core.db import run_after_commit
    from engage.org.services import create_service, find_service
    from engage.patients.services import get_or_create_patient
    from engage.survey.services import create_invitation, survey_url

    try:
        surveys.get(instrument_id)
    except surveys.UnknownInstrument:
        fail(f"unknown instrument {instrument_id!r}; choose one of "
             + ", ".join(i.id for i in surveys.all()))
    if service_key:
        service = find_service(service_key)
        if service is None:
            fail(f"no service {service_key!r}")
    else:
        from sqlalchemy import select

        from engage.org.models import Service

        service = db.session.scalar(select(Service).order_by(Service.id).limit(1))
        if service is None:
            service = create_service("general", "General")
    try:
        patient, created = get_or_create_patient(service, patient_ref, language=None)
    except ValueError as exc:
        fail(str(exc))
    if created and language:
        patient.language = language
    invitation, token = create_invitation(
        patient, service, instrument_id, language=language,
        days=current_app.config["INVITATION_DAYS"],
    )
    db.session.commit()
    run_after_commit()
    click.echo(f"Patient {patient.ref} ({'new' if created else 'existing'}), "
               f"{instrument_id} for {service.name}, open until "
               f"{invitation.closes_at:%Y-%m-%d %H:%M} UTC")
    click.echo(survey_url(current_app.config["BASE_URL"], token))


@click.command()
@with_appcontext
def scheduler() -> None:
    """Run the periodic jobs (its own process; never inside web workers)."""
    from engage.jobs import JOBS, build_scheduler

    sched = build_scheduler(current_app._get_current_object())  # type: ignore[attr-defined]
    for job in JOBS:
        click.echo(f"job {job.id}: every {job.every}s - {job.description}")
    with contextlib.suppress(KeyboardInterrupt, SystemExit):
        sched.start()
