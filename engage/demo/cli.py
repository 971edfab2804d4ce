"""``engage demo``: upgrade the database, load demo data once, print logins, serve."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--no-serve", is_flag=True, help="Load the demo data and exit.")
@with_appcontext
def demo(host: str, port: int, no_serve: bool) -> None:
    """Run Engage on this machine with demo data and the scheduler."""
    import os

    from flask_migrate import upgrade

    from engage.demo import data

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if not os.environ.get("ENGAGE_BASE_URL"):
        # Links printed and emailed must point at where this demo actually serves.
        app.config["BASE_URL"] = f"http://{host}:{port}"
    upgrade()
    if data.is_loaded():
        click.echo("Demo data already loaded.")
    else:
        click.echo("Loading demo data (30 patients, six months of answers)...")
        data.load()
    base = app.config["BASE_URL"]
    click.echo("\nDemo logins (" + base + "/login):")
    for email, role, _name in data.LOGINS:
        click.echo(f"  {role:<14} {email:<26} password: {data.PASSWORD.format(role=role)}")
    link = data.fresh_link(base)
    click.echo(f"\nA service's public feedback page (no account): {base}/tell-us/orthopaedics")
    click.echo(f"The triage inbox (log in as staff): {base}/feedback")
    click.echo(f"Comments waiting for a safety review (log in as safeguarding): "
               f"{base}/feedback?safety=1")
    click.echo(f"What the safety screen missed (log in as safety_officer): "
               f"{base}/feedback/safety/misses")
    click.echo(f"Staff accounts, and the audit log (log in as admin): {base}/staff, "
               f"{base}/audit")
    click.echo(f"Your password, sessions and second factor (any login): {base}/account")
    click.echo("\nA patient's link (PHQ-9, works on a phone):")
    click.echo(f"  {link}")
    key = data.fresh_api_key()
    click.echo("\nAn API key (write scope, orthopaedics, 30 days; docs/api.md):")
    click.echo(f"  curl -H 'Authorization: Bearer {key}' {base}/api/v1/protocols")
    if no_serve:
        return
    sink = _start_mail_sink(app)
    from engage.jobs import build_scheduler

    scheduler = build_scheduler(app, background=True)
    scheduler.start()
    click.echo(f"\nServing on http://{host}:{port} with the scheduler. Ctrl-C stops.")
    if sink:
        click.echo(f"Emails are printed here (a local SMTP sink on port {sink}).")
    from werkzeug.serving import run_simple

    try:
        run_simple(host, port, app, threaded=True, use_reloader=False)
    finally:
        scheduler.shutdown(wait=False)


def _start_mail_sink(app):  # type: ignore[no-untyped-def]
    """Print emails to the console when no real SMTP server was configured."""
    import os

    if os.environ.get("ENGAGE_SMTP_HOST"):
        return None
    try:
        from aiosmtpd.controller import Controller
    except ImportError:
        return None

    class Printer:
        async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
            click.echo(f"\n--- email to {', '.join(envelope.rcpt_tos)} ---")
            click.echo(envelope.content.decode("utf8", errors="replace"))
            return "250 OK"

    controller = Controller(Printer(), hostname="127.0.0.1", port=app.config["SMTP_PORT"])
    try:
        controller.start()
    except Exception:  # port taken: someone already runs a sink there
        return None
    app.config["SMTP_HOST"] = "127.0.0.1"
    return app.config["SMTP_PORT"]
