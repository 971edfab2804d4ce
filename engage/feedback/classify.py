"""``engage feedback classify``: what Engage reads in one comment, or in a CSV of them.

The command starts in a fraction of a second because it builds no app: it needs only the
database's address (the app's own settings: ``ENGAGE_DATABASE_URL``, or ``engage.db`` in
the instance folder), which it opens read-only for the model, rules and staff names in
force (:mod:`engage.feedback.in_force`); before any database exists the shipped model and
rules answer. ``engage`` runs this command without importing Flask
(:func:`engage.cli.main`); the ``feedback`` group of the app's CLI holds a twin with the
same options that reads through the app's session instead (``app.test_cli_runner()``,
``flask --app engage``). Nothing here imports Flask.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import click

import config
from engage.console import fail
from engage.feedback import batch, in_force
from engage.feedback.text.reader import Analysis, Comment, read_comments

F = Callable[..., Any]


def options(command: F) -> F:
    """The command's options, shared by both commands."""
    for option in reversed([
        click.option("--text", default=None,
                     help="One comment: its analysis is printed as JSON."),
        click.option("--question", default=None,
                     help="The question it answers (changes its meaning)."),
        click.option("--language", default=None,
                     help="Its language, e.g. en, es, ar (a hint)."),
        click.option("--input", "input_path", default=None,
                     type=click.Path(dir_okay=False),
                     help="A CSV with the columns text, question and language (the last "
                          "two may be empty): every row is classified."),
        click.option("--output", "output_path", default=None,
                     type=click.Path(dir_okay=False),
                     help="With --input: the CSV to write, every row in order with level, "
                          "urgent, reason, themes, sentiment and redacted added."),
    ]):
        command = option(command)
    return command


HELP = """Themes, sentiment, safety level and personal details of comments.

    With --text, prints one JSON object. With --input and --output, classifies a CSV.
    Uses the theme model and safety rules in force (the shipped ones before any
    database exists). Writes nothing to the database.
    """


def run(analyse_many: Callable[[Sequence[Comment]], list[Analysis]], text: str | None,
        question: str | None, language: str | None, input_path: str | None,
        output_path: str | None) -> None:
    """What both commands do, reading comments with ``analyse_many``."""
    if input_path or output_path:
        if text is not None:
            fail("give either --text or --input and --output, not both")
        if not (input_path and output_path):
            fail("--input and --output go together")
        try:
            rows = batch.classify_csv(input_path, output_path, analyse_many)
        except batch.BatchError as exc:
            fail(str(exc))
        click.echo(f"classified {rows.total} comments into {output_path}: "
                   f"{rows.urgent} urgent, {rows.review} for a safety review")
        return
    if text is None:
        fail("give a comment with --text, or a CSV with --input and --output")
    analysis = analyse_many([(text, question, language)])[0]
    click.echo(json.dumps(analysis.as_json(text), ensure_ascii=False))


@click.command("classify", help=HELP)
@options
def command(text: str | None, question: str | None, language: str | None,
            input_path: str | None, output_path: str | None) -> None:
    try:
        url = config.database_url()
    except config.ConfigError as exc:
        fail(str(exc))
    try:
        with in_force.open_database(url) as execute:
            names = in_force.staff_names(execute)

            def analyse_many(comments: Sequence[Comment]) -> list[Analysis]:
                model, _model_id = in_force.model(execute)
                rules, rules_id = in_force.rules(execute)
                return read_comments(comments, model, rules, names=names,
                                     rules_version=in_force.rules_version(rules, rules_id))

            run(analyse_many, text, question, language, input_path, output_path)
    except in_force.DatabaseError as exc:
        fail(str(exc))
