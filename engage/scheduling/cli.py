"""``engage enroll`` and ``engage dispatch``."""

from __future__ import annotations

from datetime import datetime

import click
from flask import current_app
from flask.cli import with_appcontext

from engage.console import fail
from engage.extensions import db

# The CSV helpers live with the other enrolment rules; imported here for older callers.
from engage.scheduling.services import (  # noqa: F401
    CSV_COLUMNS,
    check_rows,
    read_enrolment_csv,
)


@click.command("enroll")
@click.argument("patient_ref", required=False)
@click.argument("protocol_id", required=False)
@click.option("--anchor", help="ISO date or date-time of the anchor event.")
@click.option("--tz", default="Europe/London", show_default=True, help="IANA time zone.")
@click.option("--email")
@click.option("--phone", help="International format, e.g. +447700900123.")
@click.option("--language", type=click.Choice(["en", "es", "ar"]))
@click.option("--csv", "csv_path", type=click.Path(exists=True, dir_okay=False),
              help="Enrol every row of a CSV file (all or nothing).")
@with_appcontext
def enroll(patient_ref: str | None, protocol_id: str | None, anchor: str | None, tz: str,
           email: str | None, phone: str | None, language: str | None,
           csv_path: str | None) -> None:
    """Enrol PATIENT_REF on PROTOCOL_ID from --anchor, or every row of --csv."""
    from engage.scheduling.services import (
        SchedulingError,
        check_enrolment_csv,
        enrol,
        enrol_all,
        parse_enrolment,
    )

    if csv_path:
        if patient_ref or protocol_id:
            fail("give either PATIENT_REF PROTOCOL_ID or --csv, not both")
        with open(csv_path, "rb") as fh:
            checked = check_enrolment_csv(fh.read(), max_rows=None)
        if checked.problems:
            fail("; ".join(checked.problems))
        if checked.errors:
            for line, fields in sorted(checked.errors.items()):
                for name, message in fields.items():
                    click.echo(f"line {line}: {name}: {message}", err=True)
            fail(f"{len(checked.errors)} of {len(checked.rows)} rows have errors; "
                  "nothing was enrolled")
        enrolments = enrol_all(checked.requests, source="csv")
        db.session.commit()
        click.echo(f"Enrolled {len(enrolments)} patients.")
        return
    if not (patient_ref and protocol_id and anchor):
        fail("give PATIENT_REF PROTOCOL_ID --anchor ISO_DATETIME, or --csv FILE")
    try:
        request = parse_enrolment(
            {"patient_ref": patient_ref, "protocol": protocol_id, "anchor": anchor, "tz": tz,
             "email": email, "phone": phone, "language": language},
            current_app.config["LANGUAGES"])
    except SchedulingError as exc:
        fail(str(exc))
    enrolment = enrol(request, source="cli")
    db.session.commit()
    planned = [i for i in _invitations(enrolment.id)]
    click.echo(f"Enrolled {patient_ref} on {protocol_id} (enrolment {enrolment.id}); "
               f"{len(planned)} questionnaires planned.")
    for invitation in planned:
        click.echo(f"  {invitation.due_at:%Y-%m-%d %H:%M} UTC  {invitation.instrument_id}  "
                   f"{invitation.status}")


def _invitations(enrolment_id: int) -> list:
    from sqlalchemy import select

    from engage.survey.models import Invitation

    return list(db.session.scalars(
        select(Invitation).where(Invitation.enrolment_id == enrolment_id,
                                 Invitation.status != "cancelled")
        .order_by(Invitation.due_at, Invitation.instrument_id)))


@click.command("dispatch")
@click.option("--now", "now_text", help="Run the pass as if it were this ISO date-time (UTC "
              "unless it has an offset). For operators and tests.")
@with_appcontext
def dispatch_command(now_text: str | None) -> None:
    """Run one dispatch pass: expire closed windows, plan and send what is due."""
    from datetime import UTC

    from engage.delivery.services import dispatch

    now = None
    if now_text:
        try:
            now = datetime.fromisoformat(now_text)
        except ValueError:
            fail(f"{now_text!r} is not an ISO date-time")
        if now.tzinfo is None:
            now = now.replace(tzinfo=UTC)
    report = dispatch(now)
    click.echo(str(report))
