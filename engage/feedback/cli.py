"""``engage feedback ...`` and ``engage themes ...``: classify a comment, train and run models."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click
from flask.cli import with_appcontext

from engage.console import fail
from engage.extensions import db
from engage.feedback import classify


@click.group()
def feedback() -> None:
    """Free-text feedback: classify, take in, digests."""


@feedback.command("classify", help=classify.HELP)
@classify.options
@with_appcontext
def classify_command(text: str | None, question: str | None, language: str | None,
                     input_path: str | None, output_path: str | None) -> None:
    # The twin of engage.feedback.classify.command (which ``engage`` runs), reading
    # through the app's session: for app.test_cli_runner() and ``flask --app engage``.
    from engage.feedback.analysis import analyse_many

    try:
        classify.run(analyse_many, text, question, language, input_path, output_path)
    finally:
        db.session.rollback()


@feedback.command("intake")
@with_appcontext
def intake_command() -> None:
    """Take in free-text answers that were not taken in yet (what the job does)."""
    from engage.feedback.services import intake_pending

    taken = intake_pending()
    click.echo(f"took in {taken} comments")


@feedback.command("safety-digest")
@click.option("--now", "now_text", default=None,
              help="Act as if it were this UTC time (ISO 8601), e.g. 2027-03-08T08:00.")
@with_appcontext
def safety_digest_command(now_text: str | None) -> None:
    """Email today's safety-review digests that are due (what the job does)."""
    from engage.feedback.safety_digest import send_safety_digests

    click.echo(f"sent {send_safety_digests(_parse_now(now_text))} safety digests")


@feedback.command("digest")
@click.option("--now", "now_text", default=None,
              help="Act as if it were this UTC time (ISO 8601), e.g. 2027-03-08T08:00.")
@with_appcontext
def digest_command(now_text: str | None) -> None:
    """Send the weekly team digests that are due (what the job does)."""
    from engage.feedback.digest import send_digests

    now = _parse_now(now_text)
    click.echo(f"sent {send_digests(now)} digests")


def _parse_now(text: str | None) -> datetime | None:
    from datetime import UTC

    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        fail(f"--now {text!r} is not an ISO 8601 time such as 2027-03-08T08:00")
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@click.group()
def themes() -> None:
    """The theme and sentiment model: train, predict, retrain from staff, switch on."""


@themes.command("train")
@click.option("--data", "data_path", required=True, type=click.Path(exists=True, dir_okay=False),
              help="A CSV in the format of the framework's train.csv.")
@click.option("--model", "model_dir", required=True, type=click.Path(file_okay=False),
              help="Directory to write the model to (created).")
@click.option("--seed", default=0, show_default=True)
@click.option("--evaluate", is_flag=True,
              help="First train on 80% of the respondents and score on the other 20%; the "
                   "figures go in the model's meta (how the shipped model was made).")
def train_command(data_path: str, model_dir: str, seed: int, evaluate: bool) -> None:
    """Train a theme and sentiment model on DATA and save it in MODEL (no database needed)."""
    import time

    from engage.feedback.text import model as textmodel

    try:
        examples, columns = textmodel.read_training_csv(data_path)
    except (ValueError, KeyError) as exc:
        fail(f"{data_path}: {exc}")
    started = time.perf_counter()
    if evaluate:
        model = textmodel.train_default(data_path, model_dir, seed=seed)
        figures = model.meta.get("evaluation", {})
        click.echo(f"on the held-out 20%: micro-F1 {figures.get('micro_f1', 0):.3f}, "
                   f"macro-F1 {figures.get('macro_f1', 0):.3f}")
    else:
        model = textmodel.train(examples, columns=columns, seed=seed)
        model.save(model_dir)
    click.echo(f"trained on {len(examples)} comments in {time.perf_counter() - started:.1f}s: "
               f"{len(model.labels)} themes; model {model.version} saved in {model_dir}")


@themes.command("predict")
@click.option("--model", "model_dir", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--input", "input_path", required=True,
              type=click.Path(exists=True, dir_okay=False))
@click.option("--output", "output_path", required=True, type=click.Path(dir_okay=False))
def predict_command(model_dir: str, input_path: str, output_path: str) -> None:
    """Write OUTPUT: `Comment ID`, a 0/1 column per theme, and `Comment sentiment`."""
    from engage.feedback.text import model as textmodel

    try:
        model = textmodel.ThemeModel.load(model_dir)
    except textmodel.ModelFormatError as exc:
        fail(str(exc))
    try:
        rows = textmodel.write_predictions_csv(model, input_path, output_path)
    except (ValueError, KeyError) as exc:
        fail(f"{input_path}: {exc}")
    click.echo(f"wrote {rows} rows to {output_path}")


@themes.command("retrain")
@click.option("--activate", is_flag=True,
              help="Switch the new model on at once (otherwise an admin does, after reading "
                   "its scores).")
@with_appcontext
def retrain_command(activate: bool) -> None:
    """Train a candidate on the base data plus every theme staff confirmed."""
    from engage.feedback import learning

    candidate = learning.retrain()
    if activate:
        learning.activate(candidate)
    db.session.commit()
    ev = candidate.evaluation
    click.echo(f"candidate {candidate.version} (id {candidate.id}): "
               f"{candidate.training.get('confirmed_used', 0)} confirmed items learned, "
               f"{ev.get('held_out', 0)} held out")
    for name in ("candidate", "active"):
        score = ev.get(name) or {}
        if score.get("n"):
            click.echo(f"  {name:9} on held-out: micro-F1 {score.get('micro_f1')}, "
                       f"macro-F1 {score.get('macro_f1')}, "
                       f"sentiment accuracy {score.get('sentiment_accuracy')}")
    click.echo("active now" if activate else
               f"not active: switch it on with `engage themes activate {candidate.id}` "
               "or on the model page")


@themes.command("list")
@with_appcontext
def list_command() -> None:
    """The stored models, newest first (the shipped model is used when none is active)."""
    from sqlalchemy import select

    from engage.feedback.models import ThemeModelRecord

    rows = db.session.scalars(select(ThemeModelRecord).order_by(ThemeModelRecord.id.desc())).all()
    if not any(r.status == "active" for r in rows):
        click.echo("the shipped model is active")
    for r in rows:
        click.echo(f"{r.id}\t{r.status}\t{r.source}\t{r.created_at:%Y-%m-%d %H:%M}\t{r.version}")


@themes.command("activate")
@click.argument("model_id")
@with_appcontext
def activate_command(model_id: str) -> None:
    """Switch on a stored model by id, or `shipped` to go back to the shipped model."""
    from engage.feedback import learning
    from engage.feedback.models import ThemeModelRecord

    if model_id == "shipped":
        learning.activate(None)
    else:
        record = db.session.get(ThemeModelRecord, int(model_id)) if model_id.isdigit() else None
        if record is None:
            fail(f"no stored model {model_id!r}; see `engage themes list`")
        learning.activate(record)
    db.session.commit()
    click.echo(f"model {model_id} is active")


@themes.command("import")
@click.option("--model", "model_dir", required=True, type=click.Path(exists=True, file_okay=False))
@with_appcontext
def import_command(model_dir: str) -> None:
    """Store a model directory as a candidate, scored on the held-out confirmed items."""
    from engage.feedback import learning
    from engage.feedback.text.model import ModelFormatError

    try:
        record = learning.import_model(Path(model_dir))
    except (ModelFormatError, ValueError) as exc:
        fail(str(exc))
    db.session.commit()
    click.echo(f"stored as candidate {record.id} ({record.version})")
