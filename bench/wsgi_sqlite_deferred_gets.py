"""Engage with one change, for comparison only: on SQLite, GET requests begin DEFERRED.

Used by ``bench/survey.py --databases ...,sqlite-deferred-gets``. Engage opens
every SQLite transaction with ``BEGIN IMMEDIATE`` (``engage/core/db.py``,
``configure_engine_events``): safe, because a deferred transaction that reads
and then writes fails at once with "database is locked" when another
connection committed in between. But it also makes read-only page views take
the write lock, and hold it while the page renders (the request commits after
the template), so the two gunicorn workers take turns even for GETs.

This module swaps that one listener for one that keeps ``BEGIN IMMEDIATE`` for
requests other than GET/HEAD and uses a plain (deferred) ``BEGIN`` for GET/HEAD
and outside requests, to measure what that costs. It is not Engage, and a GET
that writes (``?lang=`` on a patient link, ``engage/survey/views.py``) would
be exposed to the failure above again; the figures it gives are labelled.
"""

from __future__ import annotations

from typing import Any

import engage.core.db as core_db
from engage import create_app

_original = core_db.configure_engine_events


def configure_engine_events(engine: Any) -> None:
    _original(engine)
    if engine.dialect.name != "sqlite":
        return
    from flask import has_request_context, request
    from sqlalchemy import event

    begins = [fn for fn in engine.dispatch.begin if getattr(fn, "__name__", "") == "_on_begin"]
    if len(begins) != 1:
        raise RuntimeError("engage.core.db no longer has one _on_begin listener; update this")
    event.remove(engine, "begin", begins[0])

    @event.listens_for(engine, "begin")
    def _on_begin_by_method(conn: Any) -> None:
        reads = not has_request_context() or request.method in ("GET", "HEAD")
        conn.exec_driver_sql("BEGIN" if reads else "BEGIN IMMEDIATE")


core_db.configure_engine_events = configure_engine_events
app = create_app()
