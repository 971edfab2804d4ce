"""Periodic jobs: declared once with stable ids, run only by the scheduler process."""

from __future__ import annotations

import threading

from engage import create_app
from engage.jobs import JOBS, build_scheduler, run_job


def test_job_ids_are_unique_and_stable():
    ids = [job.id for job in JOBS]
    assert len(ids) == len(set(ids))
    assert "alerts.renotify" in ids


def test_the_scheduler_gets_every_job(app):
    scheduler = build_scheduler(app, background=True)
    assert {job.id for job in scheduler.get_jobs()} == {job.id for job in JOBS}


def test_creating_the_app_starts_no_threads(monkeypatch, tmp_path):
    import config

    monkeypatch.setenv("ENGAGE_INSTANCE_PATH", str(tmp_path))

    class Cfg(config.TestConfig):
        SQLALCHEMY_DATABASE_URI = f"sqlite:///{tmp_path}/x.db"

    before = threading.active_count()
    create_app(Cfg)
    assert threading.active_count() == before


def test_a_job_runs_in_its_own_app_context(app, committed_db):
    job = next(j for j in JOBS if j.id == "alerts.renotify")
    assert run_job(app, job) == 0  # no alerts: nothing to send, and no error
