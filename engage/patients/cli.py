"""``engage patients export|erase REF``: a person's right of access and right to erasure."""

from __future__ import annotations

import json
import os
import sys

import click
from flask.cli import with_appcontext

from engage.console import fail
from engage.extensions import db


@click.group()
def patients() -> None:
    """A patient's rights: what is held about them, and erasure."""


def _service(key: str | None):  # type: ignore[no-untyped-def]
    from engage.org.services import find_service

    if key is None:
        return None
    service = find_service(key)
    if service is None:
        fail(f"no service {key!r}")
    return service


@patients.command("export")
@click.argument("ref")
@click.option("--service", "service_key", help="Only this service's record (id or slug).")
@click.option("--output", type=click.Path(dir_okay=False, writable=True),
              help="Write the JSON here (readable by its owner only) instead of printing it.")
@with_appcontext
def export_command(ref: str, service_key: str | None, output: str | None) -> None:
    """Everything held about the person with hospital reference REF (every service's record
    unless --service), as one JSON document with each response also in FHIR R4. Audited."""
    from engage.patients.rights import RightsError, subject_access

    try:
        document = subject_access(ref, _service(service_key))
    except RightsError as exc:
        fail(str(exc))
    body = json.dumps(document, ensure_ascii=False, indent=2, sort_keys=False) + "\n"
    if output:
        # Health data: created readable by its owner alone, before anything is written.
        fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(body)
    db.session.commit()
    if output:
        click.echo(f"Wrote {len(document['records'])} record(s) for {ref.strip()} to {output}",
                   err=True)
    else:
        sys.stdout.write(body)


@patients.command("erase")
@click.argument("ref")
@click.option("--service", "service_key", help="Only this service's record (id or slug).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@with_appcontext
def erase_command(ref: str, service_key: str | None, yes: bool) -> None:
    """Erase what identifies the person with hospital reference REF (every service's record
    unless --service), keeping scores and counts. Cannot be undone. Audited."""
    from engage.patients.rights import RightsError, erase, erasure_plan, find_records

    records = find_records(ref, _service(service_key))
    if not records:
        fail(f"no patient record has the reference {ref.strip()!r}")
    try:
        plans = erasure_plan(records)
    except RightsError as exc:
        fail(str(exc))
    for plan in plans:
        counts = ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in plan.counts.items())
        click.echo(f"record {plan.patient_id} ({plan.service}): {counts}")
    if not yes:
        click.confirm(f"Erase {len(records)} record(s) of {ref.strip()}? This cannot be undone",
                      abort=True)
    try:
        done = erase(records)
    except RightsError as exc:
        db.session.rollback()
        fail(str(exc))
    db.session.commit()
    for plan in done:
        click.echo(f"Erased record {plan.patient_id} ({plan.service}): now erased-"
                   f"{plan.patient_id}")
