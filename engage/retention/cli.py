"""``engage retention run [--dry-run]``: apply the retention periods now, or see what would go."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from engage.console import fail

#: What a count means for each kind, in the command's output.
LABELS = {
    "responses": "responses deleted (with their answers and acknowledged alerts)",
    "comments": "comments reduced to their redacted text (contact details, original removed)",
    "messages": "sent, failed or cancelled outbox messages deleted",
    "audit": "audit events deleted",
}


@click.group()
def retention() -> None:
    """How long data is kept (ENGAGE_RETENTION_<KIND>_DAYS)."""


@retention.command("run")
@click.option("--dry-run", is_flag=True, help="Count what would be removed; remove nothing.")
@with_appcontext
def run_command(dry_run: bool) -> None:
    """Remove what is past its retention period, per kind; each kind's run is audited."""
    from engage.retention.services import RetentionError, run, run_exclusive

    try:
        results = run(dry_run=True) if dry_run else run_exclusive(actor="cli")
    except RetentionError as exc:
        fail(str(exc))
    if results is None:
        fail("another retention run is in progress; try again in a few minutes")
    for result in results:
        if not result.days:
            click.echo(f"{result.kind}: kept for ever (ENGAGE_RETENTION_"
                       f"{result.kind.upper()}_DAYS is 0)")
            continue
        verb = "would be" if dry_run else "were"
        label = LABELS[result.kind].replace(" deleted", f" {verb} deleted").replace(
            " reduced", f" {verb} reduced")
        assert result.cutoff is not None
        click.echo(f"{result.kind}: {result.count} {label}; older than {result.days} days "
                   f"(before {result.cutoff:%Y-%m-%d %H:%M} UTC)")
