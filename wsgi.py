"""WSGI entry point for production servers: ``gunicorn wsgi:app``."""

from engage import create_app

app = create_app()
