"""``engage users unlock`` and ``engage users reset-2fa``: an admin's help at the console."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from engage.console import fail


def _user(email: str):  # type: ignore[no-untyped-def]
    from engage.accounts.login import find_user

    user = find_user(email)
    if user is None:
        fail(f"no user {email!r}")
    return user


@click.command("unlock")
@click.argument("email")
@click.option("--address", help="Also lift the lock on this client address.")
@with_appcontext
def unlock_command(email: str, address: str | None) -> None:
    """Lift the lock-out of the account EMAIL after too many failed logins (audited)."""
    from engage.accounts.throttle import unblock_address, unlock
    from engage.extensions import db

    user = _user(email)
    had = unlock(user)
    if address:
        unblock_address(address)
    db.session.commit()
    click.echo(f"Unlocked {user.email}" if had else f"{user.email} was not locked")


@click.command("reset-2fa")
@click.argument("email")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@with_appcontext
def reset_2fa_command(email: str, yes: bool) -> None:
    """Remove the second factor of EMAIL (a lost phone); they set up a new one at their
    next login if their role requires one (audited)."""
    from engage.accounts.two_factor import reset
    from engage.extensions import db

    user = _user(email)
    if not yes:
        click.confirm(f"Remove the second factor and recovery codes of {user.email}?",
                      abort=True)
    had = reset(user)
    db.session.commit()
    click.echo(f"Removed the second factor of {user.email}" if had
               else f"{user.email} had no second factor")
