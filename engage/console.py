"""The ``engage`` console script's entry point, and what its commands share, free of
Flask: a command that builds no app (``engage feedback classify``) imports none of it."""

from __future__ import annotations

import os
import sys
from typing import NoReturn

import click


def fail(message: str) -> NoReturn:
    """Stop the command with ``Error: message`` on standard error and exit status 2."""
    click.echo(f"Error: {message}", err=True)
    sys.exit(2)


#: Commands that need no app, run without importing Flask (``engage`` ARGS... -> module).
STANDALONE: dict[tuple[str, ...], str] = {("feedback", "classify"): "engage.feedback.classify"}


def main() -> None:
    """Entry point of the ``engage`` console script."""
    if sys.argv[1:2] == ["demo"]:
        # The demo runs on this machine only: a generated secret, http cookies.
        os.environ.setdefault("ENGAGE_ENV", "development")
    # Before numpy is imported: one BLAS thread makes model training repeatable (the same
    # data gives the same model, byte for byte) and leaves the other cores to the web.
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, "1")
    standalone = STANDALONE.get(tuple(sys.argv[1:3]))
    if standalone is not None:
        import importlib

        command = importlib.import_module(standalone).command
        command.main(sys.argv[3:], prog_name="engage " + " ".join(sys.argv[1:3]))
        return
    from engage.cli import cli

    cli()
