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
@click.option("--scope", required=True, type=click.Choice(["read", "write"]),
              help="read: list protocols, read enrolments; write: also enrol and withdraw.")
@click.option("--service", "service_keys", multiple=True, required=True, metavar="SLUG",
              help="A service the key acts for (repeat for more); it acts on nothing else.")
@click.option("--expires", "expires_days", type=int, metavar="DAYS",
              help="Refuse the key after this many days (default: until revoked).")
@with_appcontext
def create_command(name: str, scope: str, service_keys: tuple[str, ...],
                   expires_days: int | None) -> None:
    """Create a key for NAME (the system that will use it) and print it, once."""
    from engage.api.services import ApiKeyError, create_api_key
    from engage.console import fail
    from engage.org.services import find_service

    services = []
    for service_key in service_keys:
        service = find_service(service_key)
        if service is None:
            fail(f"no service {service_key!r} (see `engage services list`)")
        services.append(service)
    try:
        api_key, key = create_api_key(name, scope=scope, services=services,
                                      expires_in_days=expires_days)
    except ApiKeyError as exc:
        fail(str(exc))
    db.session.commit()
    until = f"until {api_key.expires_at:%Y-%m-%d %H:%M} UTC" if api_key.expires_at else (
        "until revoked")
    click.echo(f"Created API key {api_key.prefix} for {api_key.name}: scope {api_key.scope}, "
               f"services {', '.join(sorted(s.slug for s in api_key.services))}, {until}.")
    click.echo("Copy it now: it will not be shown again (Engage keeps only its hash).")
    click.echo(key)


@apikeys.command("list")
@with_appcontext
def list_command() -> None:
    """Every key: prefix, status, scope, services, expiry, created, last used, name."""
    from engage.api.services import list_api_keys
    from engage.core.db import utcnow

    keys = list_api_keys()
    if not keys:
        click.echo("No API keys. Create one with "
                   "`engage apikeys create NAME --scope read --service SLUG`.")
    now = utcnow()
    for api_key in keys:
        if not api_key.active:
            status = f"revoked {api_key.revoked_at:%Y-%m-%d}"
        elif api_key.expired(now):
            status = f"expired {api_key.expires_at:%Y-%m-%d}"
        else:
            status = "active"
        expires = f"{api_key.expires_at:%Y-%m-%d}" if api_key.expires_at else "never"
        used = f"{api_key.last_used_at:%Y-%m-%d %H:%M}" if api_key.last_used_at else "never"
        services = ",".join(s.slug for s in api_key.services) or "(none)"
        click.echo(f"{api_key.prefix}\t{status}\tscope {api_key.scope}\tservices {services}\t"
                   f"expires {expires}\tcreated {api_key.created_at:%Y-%m-%d}\t"
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
