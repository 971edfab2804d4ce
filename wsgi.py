"""WSGI entry point for production servers: ``gunicorn wsgi:app``."""

from engage import create_app

app = create_app()


def _warm_up() -> None:
    """Load the shipped theme model and safety rules now (about half a second), so no
    patient's comment waits for it. ``create_app`` does not: tests and commands would pay."""
    from engage.feedback.text.model import default_model
    from engage.feedback.text.safety import default_rules

    default_model()
    default_rules()


_warm_up()
