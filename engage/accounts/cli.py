"""``engage users list | set-role | deactivate | reactivate | reset-password``.

``engage users create`` stays in ``engage/cli.py``; these join it on the same group.
"""

from __future__ import annotations

import click
from flask.cli import with_appcontext
from sqlalchemy import func, select

from engage.console import fail
from engage.core.permissions import ROLES
from engage.extensions import db


def _user(email: str):  # type: ignore[no-untyped-def]
    from engage.accounts.models import User

    user = db.session.scalar(select(User).where(func.lower(User.email) == email.strip().lower()))
    if user is None:
        fail(f"no user with the email {email}")
    return user


@click.command("list")
@with_appcontext
def list_users() -> None:
    """Every account: email, name, role, services, status, last login."""
    from engage.accounts.admin import status_of
    from engage.accounts.lifecycle import open_invitations
    from engage.accounts.models import User

    users = list(db.session.scalars(select(User).order_by(User.email)))
    invited = open_invitations([u.id for u in users if not u.active])
    rows = [("EMAIL", "NAME", "ROLE", "SERVICES", "STATUS", "LAST LOGIN")]
    for u in users:
        rows.append((
            u.email, u.name or "-", u.role, ",".join(s.slug for s in u.services) or "-",
            status_of(u, invited),
            u.last_login_at.strftime("%Y-%m-%d %H:%M UTC") if u.last_login_at else "never"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
                   .rstrip())


@click.command("set-role")
@click.argument("email")
@click.argument("role")
@with_appcontext
def set_role_command(email: str, role: str) -> None:
    """Give the user with EMAIL the role ROLE."""
    from engage.accounts.lifecycle import set_role
    from engage.accounts.services import AccountError

    if role not in ROLES:
        fail(f"no role {role!r}: choose one of {', '.join(ROLES)}")
    user = _user(email)
    try:
        changed = set_role(user, role)
    except AccountError as exc:
        fail(str(exc))
    db.session.commit()
    click.echo(f"{user.email} is now {role}" if changed else f"{user.email} was already {role}")


@click.command("deactivate")
@click.argument("email")
@with_appcontext
def deactivate_command(email: str) -> None:
    """Deactivate the user with EMAIL: their sessions end at once."""
    from engage.accounts.lifecycle import deactivate
    from engage.accounts.services import AccountError

    user = _user(email)
    try:
        ended = deactivate(user)
    except AccountError as exc:
        fail(str(exc))
    db.session.commit()
    click.echo(f"Deactivated {user.email}; {ended} session(s) ended")


@click.command("reactivate")
@click.argument("email")
@with_appcontext
def reactivate_command(email: str) -> None:
    """Let the user with EMAIL log in again (one who never set a password is re-invited)."""
    from engage.accounts.lifecycle import reactivate
    from engage.accounts.services import AccountError
    from engage.core.db import run_after_commit

    user = _user(email)
    invitation = user.password_changed_at is None
    try:
        reactivate(user)
    except AccountError as exc:
        fail(str(exc))
    db.session.commit()
    run_after_commit()
    click.echo(f"Invited {user.email} again" if invitation else f"Reactivated {user.email}")


@click.command("reset-password")
@click.argument("email")
@click.option("--email", "send_email", is_flag=True,
              help="Email the link to the user instead of printing it.")
@with_appcontext
def reset_password_command(email: str, send_email: bool) -> None:
    """Print a single-use link that lets the user with EMAIL choose a new password.

    The link works for ENGAGE_RESET_HOURS (2); give it to the person only, since it opens
    their account. With --email it goes to their address instead.
    """
    from flask import current_app

    from engage.accounts.lifecycle import issue_reset_token, link_url, send_password_reset
    from engage.accounts.services import AccountError
    from engage.core.db import run_after_commit
    from engage.core.mail import MailError

    user = _user(email)
    try:
        token = send_password_reset(user) if send_email else issue_reset_token(user)
    except AccountError as exc:
        fail(str(exc))
    db.session.commit()
    hours = current_app.config["RESET_HOURS"]
    if send_email:
        try:
            run_after_commit()
        except MailError as exc:
            fail(f"the email could not be sent ({exc}); run without --email to print the link")
        click.echo(f"Emailed a reset link to {user.email} (valid {hours} h)")
    else:
        click.echo(link_url(token))
        click.echo(f"Single use, valid {hours} h. Give it to {user.email} only.", err=True)


def add_commands(group: click.Group) -> None:
    """Put these commands on ``engage users``."""
    for command in (list_users, set_role_command, deactivate_command, reactivate_command,
                    reset_password_command):
        group.add_command(command)
