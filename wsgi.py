"""WSGI entry point for production servers: ``gunicorn wsgi:app``."""

from engage import create_app

app = create_app()


def _warm_up() -> None:
    """Load the shipped theme model and safety rules now (under a second), so no
    patient's comment waits for it. ``create_app`` does not: tests and commands would pay.
    One prediction imports what predicting needs (numpy is imported on first use, not
    with the model's module)."""
    from engage.feedback.text.model import default_model
    from engage.feedback.text.safety import default_rules

    default_model().predict(["Thank you."])
    rules = default_rules()
    # The speller's indexes and its everyday words, and the phrases a typical comment needs.
    rules.speller.warm()
    rules.check("She was left waiting on her own for hours, thank you.")


_warm_up()
