"""``engage apikeys``: create, list and revoke the keys EHR integrations use."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from engage.extensions import db


@click.group("apikeys")
def apikeys() -> None:
    """API keys for EHR integrations (docs/api.md)."""


@apikeys.command("create")
@click.argument("name")
@with_appcontext
def create_command(name: str) -> None:
    """Create a key for NAME (the system that will use it) and print it, once."""
    from engage.api.services import ApiKeyError, create_api_key
    from engage.console import fail

    try:
        api_key, key = create_api_key(name)
    except ApiKeyError as exc:
        fail(str(exc))
    db.session.commit()
    click.echo(f"Created API key {api_key.prefix} for {api_key.name}.")
    click.echo("Copy it now: it will not be shown again (Engage keeps only its hash).")
    click.echo(key)


@apikeys.command("list")
@with_appcontext
def list_command() -> None:
    """Every key: prefix, status, created, last used, name."""
    from engage.api.services import list_api_keys

    keys = list_api_keys()
    if not keys:
        click.echo("No API keys. Create one with `engage apikeys create NAME`.")
    for api_key in keys:
        status = "active" if api_key.active else f"revoked {api_key.revoked_at:%Y-%m-%d}"
        used = f"{api_key.last_used_at:%Y-%m-%d %H:%M}" if api_key.last_used_at else "never"
        click.echo(f"{api_key.prefix}\t{status}\tcreated {api_key.created_at:%Y-%m-%d}\t"
                   f"last used {used}\t{api_key.name}")


@apikeys.command("revoke")
@click.argument("prefix")
@with_appcontext
def revoke_command(prefix: str) -> None:
    """Revoke the key starting with PREFIX (as `engage apikeys list` shows it)."""
    from engage.api.services import ApiKeyError, revoke_api_key
    from engage.console import fail

    try:
        api_key = revoke_api_key(prefix)
    except ApiKeyError as exc:
        fail(str(exc))
    db.session.commit()
    click.echo(f"Revoked API key {api_key.prefix} ({api_key.name}); it no longer works.")
