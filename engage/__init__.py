"""Engage: patient and family engagement for a Learning Health System.

Importing the package imports nothing else: the pure packages inside it (the text
analysis under ``engage.feedback.text``) load without Flask, and ``engage feedback
classify`` starts without building the app. ``create_app`` (in :mod:`engage.app`) is
imported the first time it is asked for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engage.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from engage.app import create_app

        return create_app
    raise AttributeError(f"module 'engage' has no attribute {name!r}")
