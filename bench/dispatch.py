#!/usr/bin/env python
"""Benchmark of one dispatch pass, against floors measured in the same run.

    python bench/dispatch.py [--patients 100000] [--databases sqlite,postgresql]
                             [--smtp-messages 2000] [--json out.json] [--keep]

For each database it

1. prepares a fresh database (a new SQLite file in a temporary folder, or drops
   and recreates the PostgreSQL database ``engage_bench_dispatch`` on
   127.0.0.1:5432; never any other), upgrades it with the Alembic migrations,
   and creates the demo's depression follow-up protocol (5 timepoints, PHQ-9 and
   GAD-7 at each, reminders at +3d and +6d: 10 invitations per patient);
2. enrols ``--patients`` patients, all anchored at the same moment, so at time
   T every patient's baseline (2 questionnaires, one email) is due. The first
   1,000 go through ``parse_enrolment`` + ``enrol`` (timed: the real path); the
   rest are copied from the first one's planned invitations with Core
   executemany, and a sample of them is then checked with ``plan_invitations``,
   which must find nothing to change (so the rows are exactly what it plans);
3. runs one dispatch pass at T in a *fresh child process* (``expire_closed``,
   ``plan_messages``, ``send_due``, each timed) that claims, renders and hands
   every message to ``NullBackend(keep=False)``, and reports the child's peak
   resident memory (``VmHWM``: see :func:`vm` for why not ``ru_maxrss``), its SQL
   statement count and time, the time spent rendering, and the largest batch it
   claimed (the pass must stream in batches, not load everything). tracemalloc
   slows the pass about five times, so the peak of Python allocations comes
   from a separate traced pass over the first ``--trace-messages`` messages
   (planning and sending stop there), run before the timed one and undone;
4. measures floors on the same rows: every message's claim alone
   (``claim_batch`` until nothing is left, nothing rendered or sent), and one
   plain ``UPDATE message SET status='sent' … RETURNING id`` of all of them;
5. once, on the first database: renders ``--smtp-messages`` real messages and
   sends them through Engage's SMTP backend to an aiosmtpd sink (a child
   process on 127.0.0.1), next to raw ``smtplib`` sends of the same messages,
   one connection per message and all over one connection.

The dispatcher does about 65-105 messages a second on a 2-core machine, so the
default 100,000 patients take about 50 minutes (docs/benchmarks.md, "Dispatch");
``--patients 20000`` takes about 15.

Only 127.0.0.1 is contacted. Every loop is bounded; the temporary folder, the
bench database and the child processes are removed on the way out.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import shutil
import signal
import smtplib
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PG_HOST = "postgresql+psycopg://root@127.0.0.1:5432"
PG_NAME = "engage_bench_dispatch"  # the only database this script creates or drops
SECRET = "bench-dispatch-" + "s" * 49
BASE_URL = "https://engage.example.org"
ANCHOR = datetime(2027, 3, 1, 10, 0, tzinfo=UTC)  # Europe/London is on GMT then
T = ANCHOR + timedelta(minutes=5)  # every baseline is due, outside quiet hours
SETUP_NOW = T - timedelta(days=30)
TIMEPOINTS = (("Baseline", "0"), ("2 weeks", "+2w"), ("4 weeks", "+4w"),
              ("8 weeks", "+8w"), ("12 weeks", "+12w"))
ENROL_REAL = 1000  # enrolments made through enrol() itself, timed
CHUNK = 5000  # patients per bulk insert
CHECK_SAMPLE = 200  # bulk enrolments re-planned to prove they match plan_invitations
CHILD_TIMEOUT = 3600  # seconds; no child runs longer, whatever the options
MAX_CLAIMS = 100_000  # claim loops stop after this many batches


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def language_of(i: int) -> str:
    """80 % English, 15 % Spanish, 5 % Arabic: the templates render in each."""
    return "ar" if i % 20 == 0 else "es" if i % 20 in (1, 2, 3) else "en"


# --------------------------------------------------------------------------- the app

def make_app(url: str, instance: str) -> Any:
    os.environ["ENGAGE_INSTANCE_PATH"] = instance
    from config import DevelopmentConfig
    from engage import create_app

    class Bench(DevelopmentConfig):
        SQLALCHEMY_DATABASE_URI = url
        SECRET_KEY = SECRET
        BASE_URL = "https://engage.example.org"
        EMAIL_BACKEND = "null"
        SMS_BACKEND = "null"

    import logging

    logging.getLogger("alembic").setLevel(logging.WARNING)
    return create_app(Bench)


def pg_admin() -> Any:
    import psycopg

    return psycopg.connect("host=127.0.0.1 port=5432 user=root dbname=postgres",
                           autocommit=True)


def recreate_pg() -> str:
    with pg_admin() as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {PG_NAME} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {PG_NAME}")
    return f"{PG_HOST}/{PG_NAME}"


def drop_pg() -> None:
    with contextlib.suppress(Exception), pg_admin() as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {PG_NAME} WITH (FORCE)")


# --------------------------------------------------------------------------- set-up

def setup(app: Any, n: int) -> dict[str, Any]:
    """Schema, protocol and n enrolled patients; returns what it took."""
    from flask_migrate import upgrade
    from sqlalchemy import func, insert, select, text

    from engage.extensions import db
    from engage.org.services import create_service
    from engage.patients.models import Patient
    from engage.scheduling.models import Enrolment
    from engage.scheduling.services import (
        TimepointSpec,
        enrol,
        parse_enrolment,
        plan_invitations,
        save_protocol,
    )
    from engage.survey.models import Invitation

    out: dict[str, Any] = {}
    with app.app_context():
        t0 = time.perf_counter()
        upgrade()
        out["upgrade_s"] = time.perf_counter() - t0
        service = create_service("bench", "Bench clinic")
        protocol = save_protocol("depression-followup", "Depression follow-up", service, [
            TimepointSpec(label, offset, ["phq-9", "gad-7"], "0", "+7d", ["+3d", "+6d"])
            for label, offset in TIMEPOINTS])
        db.session.commit()
        protocol_id, service_id = protocol.id, service.id

        def row(i: int) -> dict[str, str]:
            return {"patient_ref": f"B{i:07d}", "protocol": "depression-followup",
                    "anchor": ANCHOR.isoformat(), "tz": "Europe/London",
                    "email": f"p{i:07d}@bench.example", "language": language_of(i)}

        real = min(n, ENROL_REAL)
        t0 = time.perf_counter()
        first_id = None
        for i in range(real):
            enrolment = enrol(parse_enrolment(row(i), app.config["LANGUAGES"]), source="csv",
                              now=SETUP_NOW)
            first_id = first_id or enrolment.id
            if i % 500 == 499:
                db.session.commit()
        db.session.commit()
        out["enrol_real"] = real
        out["enrol_real_s"] = time.perf_counter() - t0
        template = [
            {"timepoint_id": inv.timepoint_id, "instrument_id": inv.instrument_id,
             "due_at": inv.due_at, "opens_at": inv.opens_at, "closes_at": inv.closes_at,
             "channel": inv.channel, "status": inv.status}
            for inv in db.session.scalars(select(Invitation)
                                          .where(Invitation.enrolment_id == first_id)
                                          .order_by(Invitation.id))]
        assert len(template) == 2 * len(TIMEPOINTS), template
        db.session.rollback()

        t0 = time.perf_counter()
        for start in range(real, n, CHUNK):
            idx = range(start, min(n, start + CHUNK))
            patient_ids = db.session.scalars(
                insert(Patient).returning(Patient.id, sort_by_parameter_order=True),
                [{"ref": f"B{i:07d}", "language": language_of(i),
                  "email": f"p{i:07d}@bench.example", "timezone": "Europe/London"}
                 for i in idx]).all()
            enrolment_ids = db.session.scalars(
                insert(Enrolment).returning(Enrolment.id, sort_by_parameter_order=True),
                [{"patient_id": pid, "protocol_id": protocol_id, "anchor_at": ANCHOR,
                  "timezone": "Europe/London", "status": "active", "source": "csv"}
                 for pid in patient_ids]).all()
            db.session.execute(insert(Invitation), [
                {**tpl, "patient_id": pid, "service_id": service_id, "enrolment_id": eid,
                 "language": language_of(i)}
                for i, pid, eid in zip(idx, patient_ids, enrolment_ids, strict=True)
                for tpl in template])
            db.session.commit()
        out["bulk"] = max(0, n - real)
        out["bulk_s"] = time.perf_counter() - t0

        # The copies must be exactly what plan_invitations plans: re-planning changes nothing.
        sample = db.session.scalars(
            select(Enrolment).where(Enrolment.id > first_id + real - 1)
            .order_by(func.random()).limit(CHECK_SAMPLE)).all()
        changed = sum(plan_invitations(e, now=SETUP_NOW) for e in sample)
        assert changed == 0, f"{changed} bulk invitations differ from what enrol() plans"
        db.session.rollback()
        out["checked"] = len(sample)
        counts = dict(db.session.execute(
            select(Invitation.status, func.count()).group_by(Invitation.status)).all())
        assert counts == {"scheduled": n * len(template)}, counts
        due = db.session.scalar(select(func.count()).select_from(Invitation).where(
            Invitation.opens_at <= T, Invitation.closes_at > T))
        assert due == 2 * n, due
        if db.engine.dialect.name == "postgresql":
            db.session.commit()
            with db.engine.connect() as conn:  # as autovacuum would after such a load
                conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))
        db.session.remove()
        db.engine.dispose()
    return out


# --------------------------------------------------------------------------- the pass

def child_pass(url: str, instance: str, trace_limit: int | None) -> None:
    """Run one pass at T in this (fresh) process; print its figures as JSON.

    With ``trace_limit`` the pass runs under tracemalloc, and when the limit is
    not 0 it plans and sends only about that many messages (planning stops after
    the candidate batch that reaches it, sending after the claim that does).
    """
    import tracemalloc

    trace = trace_limit is not None
    if trace:
        tracemalloc.start()
    app = make_app(url, instance)
    from sqlalchemy import event

    from engage.delivery import services
    from engage.delivery.channels import NullBackend
    from engage.extensions import db

    rss_start = vm("VmRSS")
    stats = {"statements": 0, "sql_s": 0.0, "render_s": 0.0, "renders": 0,
             "claims": 0, "largest_claim": 0}
    with app.app_context():
        app.extensions["engage.email_backend"] = NullBackend(keep=False)
        engine = db.engine

        @event.listens_for(engine, "before_cursor_execute")
        def _before(conn: Any, cursor: Any, statement: str, params: Any, context: Any,
                    executemany: bool) -> None:
            conn.info["bench_t0"] = time.perf_counter()

        @event.listens_for(engine, "after_cursor_execute")
        def _after(conn: Any, cursor: Any, statement: str, params: Any, context: Any,
                   executemany: bool) -> None:
            stats["statements"] += 1
            stats["sql_s"] += time.perf_counter() - conn.info.pop("bench_t0")

        render, claim_batch, candidates, queue = (services.render, services.claim_batch,
                                                  services._candidates, services._queue)
        seen = {"queued": 0, "claimed": 0}

        def timed_render(*a: Any, **kw: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return render(*a, **kw)
            finally:
                stats["render_s"] += time.perf_counter() - t0
                stats["renders"] += 1

        def limited_candidates(*a: Any, **kw: Any) -> list[Any]:
            if trace_limit and seen["queued"] >= trace_limit:
                return []
            return list(candidates(*a, **kw))

        def counted_queue(*a: Any, **kw: Any) -> int:
            created = int(queue(*a, **kw))
            seen["queued"] += created
            return created

        def counted_claim(*a: Any, **kw: Any) -> list[int]:
            if trace_limit and seen["claimed"] >= trace_limit:
                return []
            ids = claim_batch(*a, **kw)
            seen["claimed"] += len(ids)
            stats["claims"] += 1
            stats["largest_claim"] = max(stats["largest_claim"], len(ids))
            return ids

        services.render, services.claim_batch = timed_render, counted_claim
        services._candidates, services._queue = limited_candidates, counted_queue
        if trace:
            tracemalloc.reset_peak()
        traced_start = tracemalloc.get_traced_memory()[0] if trace else 0
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.perf_counter()
        expired = services.expire_closed(T)
        t1 = time.perf_counter()
        planned = services.plan_messages(T)
        t2 = time.perf_counter()
        report = services.send_due(T)
        t3 = time.perf_counter()
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        traced = tracemalloc.get_traced_memory() if trace else (0, 0)
        db.session.remove()
    print(json.dumps({
        "expired": expired, "planned": planned, "sent": report.sent,
        "failed": report.failed, "cancelled": report.cancelled, "deferred": report.deferred,
        "expire_s": t1 - t0, "plan_s": t2 - t1, "send_s": t3 - t2, "total_s": t3 - t0,
        "cpu_s": (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime),
        "rss_start_kb": rss_start, "rss_peak_kb": vm("VmHWM"),
        "ru_maxrss_kb": cpu1.ru_maxrss,
        "traced_start": traced_start, "traced_peak": traced[1],
        "trace_limit": trace_limit, "batch": app.config["DELIVERY_BATCH"],
        "lease_s": app.config["DELIVERY_LEASE_SECONDS"],
        **stats}))


def vm(field: str) -> int:
    """A ``/proc/self/status`` figure in KiB: ``VmRSS`` now, ``VmHWM`` the peak.

    The peak is read here rather than from ``ru_maxrss``: on Linux a child's
    ``ru_maxrss`` starts from its parent's resident size at fork (exec keeps the
    high-water mark), so it would show the parent's set-up, not the pass.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def run_pass(url: str, instance: str, trace_limit: int | None,
             children: list[Any]) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "_pass", url, instance]
    if trace_limit is not None:
        cmd += ["--trace", str(trace_limit)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENGAGE_")}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, start_new_session=True)
    children.append(proc)
    busy0 = machine_cpu()
    out, err = proc.communicate(timeout=CHILD_TIMEOUT)  # on timeout main() kills it
    children.remove(proc)
    busy1 = machine_cpu()
    if proc.returncode != 0:
        raise RuntimeError(f"the pass failed:\n{err[-4000:]}")
    result = json.loads(out.strip().splitlines()[-1])
    result["machine_busy_pct"] = busy_pct(busy0, busy1)
    return result


# --------------------------------------------------------------------------- floors

def floors(app: Any, n: int) -> dict[str, Any]:
    from sqlalchemy import text, update

    from engage.delivery.models import Message
    from engage.delivery.services import claim_batch
    from engage.extensions import db

    out: dict[str, Any] = {}
    reset = text("UPDATE message SET status = 'pending', sent_at = NULL, lease_until = NULL, "
                 "claimed_by = NULL")
    with app.app_context():
        assert db.session.execute(reset).rowcount == n
        db.session.commit()
        batch = app.config["DELIVERY_BATCH"]
        lease = timedelta(seconds=app.config["DELIVERY_LEASE_SECONDS"])
        t0 = time.perf_counter()
        claimed = 0
        for _ in range(MAX_CLAIMS):
            ids = claim_batch(T, "floor", batch, lease)
            if not ids:
                break
            claimed += len(ids)
        out["claims_s"] = time.perf_counter() - t0
        assert claimed == n, claimed
        db.session.execute(reset)
        db.session.commit()
        t0 = time.perf_counter()
        ids = db.session.scalars(
            update(Message).where(Message.status == "pending")
            .values(status="sent", sent_at=T).returning(Message.id)).all()
        db.session.commit()
        out["update_s"] = time.perf_counter() - t0
        assert len(ids) == n, len(ids)
        db.session.remove()
    return out


# --------------------------------------------------------------------------- SMTP

def child_sink() -> None:
    """An aiosmtpd server on 127.0.0.1 that counts messages; 'count' on stdin answers."""
    from aiosmtpd.controller import Controller

    class Counter:
        received = 0

        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            Counter.received += 1
            return "250 OK"

    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Counter(), hostname="127.0.0.1", port=port)
    controller.start()
    print(f"PORT {port}", flush=True)
    try:
        for line in sys.stdin:
            if line.strip() == "count":
                print(Counter.received, flush=True)
    finally:
        controller.stop()


def smtp_bench(app: Any, count: int, children: list[Any]) -> dict[str, Any]:
    from sqlalchemy import select
    from sqlalchemy.orm import selectinload

    from engage.delivery.channels import SmtpBackend
    from engage.delivery.models import Message
    from engage.delivery.services import render
    from engage.extensions import db
    from engage.survey.models import Invitation

    out: dict[str, Any] = {"messages": count}
    sink = subprocess.Popen([sys.executable, __file__, "_sink"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, start_new_session=True)
    children.append(sink)

    def received() -> int:
        assert sink.stdin and sink.stdout
        sink.stdin.write("count\n")
        sink.stdin.flush()
        return int(sink.stdout.readline())

    assert sink.stdout
    port = int(sink.stdout.readline().split()[1])
    with app.app_context():
        app.config["SMTP_HOST"], app.config["SMTP_PORT"] = "127.0.0.1", port
        messages = db.session.scalars(
            select(Message).options(selectinload(Message.invitations)
                                    .selectinload(Invitation.enrolment),
                                    selectinload(Message.patient))
            .order_by(Message.id).limit(count)).all()
        t0 = time.perf_counter()
        emails = [render(m, list(m.invitations)) for m in messages]
        out["render_s"] = time.perf_counter() - t0
        db.session.rollback()  # the link tokens minted for these emails
        out["bytes_avg"] = sum(len(e.as_bytes()) for e in emails) / len(emails)
        backend = SmtpBackend()
        t0 = time.perf_counter()
        for email in emails:
            backend.send(email)
        out["backend_s"] = time.perf_counter() - t0
        assert received() == count
        t0 = time.perf_counter()
        for email in emails:
            with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
                smtp.send_message(email)
        out["raw_per_connection_s"] = time.perf_counter() - t0
        assert received() == 2 * count
        t0 = time.perf_counter()
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
            for email in emails:
                smtp.send_message(email)
        out["raw_one_connection_s"] = time.perf_counter() - t0
        assert received() == 3 * count
        db.session.remove()
    assert sink.stdin
    sink.stdin.close()
    sink.wait(timeout=10)
    children.remove(sink)
    return out


# --------------------------------------------------------------------------- machine

def machine_cpu() -> tuple[int, int]:
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def busy_pct(a: tuple[int, int], b: tuple[int, int]) -> float:
    return 100.0 * (b[0] - a[0]) / max(b[1] - a[1], 1)


def machine_info() -> dict[str, str]:
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    ram = next((f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB" for line in
                Path("/proc/meminfo").read_text().splitlines()
                if line.startswith("MemTotal")), "?")
    pg = "not reached"
    with contextlib.suppress(Exception), pg_admin() as conn:
        pg = conn.execute("SHOW server_version").fetchone()[0]
    return {"cpu": cpu, "nproc": str(os.cpu_count()), "ram": ram,
            "python": platform.python_version(), "sqlite": sqlite3.sqlite_version,
            "postgresql": pg, "load": " ".join(f"{x:.1f}" for x in os.getloadavg())}


# --------------------------------------------------------------------------- report

def rate(n: int, seconds: float) -> str:
    return f"{n / seconds:,.0f}/s" if seconds > 0 else "-"


def report(results: list[dict[str, Any]], smtp: dict[str, Any] | None,
           machine: dict[str, str], n: int) -> str:
    lines = [f"Machine: {machine['cpu']}, {machine['nproc']} cores, {machine['ram']} RAM; "
             f"Python {machine['python']}, SQLite {machine['sqlite']}, "
             f"PostgreSQL {machine['postgresql']}; load average {machine['load']}",
             f"{n:,} patients, one email each due at {T:%Y-%m-%d %H:%M} UTC", ""]
    for r in results:
        p, f, s = r["pass"], r["floors"], r["setup"]
        lines += [
            f"== {r['database']}",
            f"set-up: upgrade {s['upgrade_s']:.1f} s; {s['enrol_real']:,} enrol() "
            f"{s['enrol_real_s']:.1f} s ({rate(s['enrol_real'], s['enrol_real_s'])}); "
            f"{s['bulk']:,} bulk {s['bulk_s']:.1f} s ({rate(s['bulk'], s['bulk_s'])}); "
            f"{s['checked']} bulk enrolments re-planned: no change",
            f"pass (batch {p['batch']}, lease {p['lease_s']} s): "
            f"expire {p['expire_s']:.2f} s, plan {p['plan_s']:.1f} s "
            f"({p['planned']:,} messages, {rate(p['planned'], p['plan_s'])}), "
            f"send {p['send_s']:.1f} s ({p['sent']:,} sent, {rate(p['sent'], p['send_s'])}); "
            f"total {p['total_s']:.1f} s = {rate(p['sent'], p['total_s'])}",
            f"  in the pass: {p['statements']:,} SQL statements "
            f"({p['statements'] / max(p['sent'], 1):.1f} per message), {p['sql_s']:.1f} s "
            f"waiting on them; rendering {p['render_s']:.1f} s "
            f"({p['render_s'] / max(p['renders'], 1) * 1000:.2f} ms each); "
            f"process CPU {p['cpu_s']:.1f} s; machine busy {p['machine_busy_pct']:.0f} %",
            f"  {p['claims']:,} claims, largest {p['largest_claim']}; resident memory "
            f"{p['rss_start_kb'] / 1024:.0f} MiB at start, peak {p['rss_peak_kb'] / 1024:.0f} "
            f"MiB (VmHWM)"
            + (f"; tracemalloc peak {p['traced_peak'] / 2**20:.1f} MiB "
               f"(from {p['traced_start'] / 2**20:.1f} MiB at start)"
               if p.get("traced_peak") else ""),
        ]
        if "trace_pass" in r:
            q = r["trace_pass"]
            lines.append(
                f"  tracemalloc, in a separate pass over the first {q['sent']:,} messages "
                f"(planned {q['planned']:,}, largest claim {q['largest_claim']}): peak "
                f"{q['traced_peak'] / 2**20:.1f} MiB (from {q['traced_start'] / 2**20:.1f} MiB "
                f"at start); peak resident {q['rss_peak_kb'] / 1024:.0f} MiB; it took "
                f"{q['total_s']:.1f} s under tracemalloc")
        lines += [
            f"floors: claim_batch alone over all {n:,} "
            f"{f['claims_s']:.1f} s ({rate(n, f['claims_s'])}); one UPDATE … RETURNING of "
            f"{n:,} rows {f['update_s']:.2f} s ({rate(n, f['update_s'])})",
            "",
        ]
    if smtp:
        c = smtp["messages"]
        lines += [
            f"== SMTP to a local aiosmtpd sink ({c:,} rendered messages, "
            f"{smtp['bytes_avg'] / 1024:.1f} KiB each; rendering them {smtp['render_s']:.1f} s"
            f" = {rate(c, smtp['render_s'])})",
            f"Engage SmtpBackend (a connection per message): {smtp['backend_s']:.1f} s = "
            f"{rate(c, smtp['backend_s'])}",
            f"raw smtplib, a connection per message: {smtp['raw_per_connection_s']:.1f} s = "
            f"{rate(c, smtp['raw_per_connection_s'])}",
            f"raw smtplib, one connection: {smtp['raw_one_connection_s']:.1f} s = "
            f"{rate(c, smtp['raw_one_connection_s'])}",
        ]
    return "\n".join(lines)


# --------------------------------------------------------------------------- main

def bench_database(name: str, n: int, workdir: Path, trace_limit: int,
                   children: list[Any]) -> tuple[dict[str, Any], Any, str]:
    instance = str(workdir / "instance")
    url = recreate_pg() if name == "postgresql" else f"sqlite:///{workdir / 'bench.db'}"
    log(f"{name}: setting up {n:,} patients")
    app = make_app(url, instance)
    result: dict[str, Any] = {"database": name, "setup": setup(app, n)}
    log(f"{name}: set up in {result['setup']['upgrade_s'] + result['setup']['enrol_real_s'] + result['setup']['bulk_s']:.0f} s; one pass at T")  # noqa: E501
    if trace_limit == 0 or trace_limit >= n:
        result["pass"] = run_pass(url, instance, 0, children)  # one pass, traced throughout
    else:
        log(f"{name}: first {trace_limit:,} messages under tracemalloc")
        result["trace_pass"] = run_pass(url, instance, trace_limit, children)
        reset_outbox(app)
        log(f"{name}: the whole pass, timed (no tracemalloc)")
        result["pass"] = run_pass(url, instance, None, children)
    assert result["pass"]["sent"] == n, result["pass"]
    log(f"{name}: floors")
    result["floors"] = floors(app, n)
    return result, app, url


def reset_outbox(app: Any) -> None:
    """Back to before the pass: no messages, tokens or send events; invitations unplanned."""
    from sqlalchemy import text

    from engage.extensions import db

    with app.app_context():
        for sql in ("DELETE FROM message_invitation", "DELETE FROM message",
                    "DELETE FROM invitation_token",
                    "DELETE FROM audit_event WHERE action = 'send'",
                    "UPDATE invitation SET status = 'scheduled', messages_planned = 0, "
                    "last_sent_at = NULL WHERE messages_planned > 0"):
            db.session.execute(text(sql))
        db.session.commit()
        db.session.remove()


def main() -> int:
    if sys.argv[1:2] == ["_pass"]:
        limit = int(sys.argv[5]) if sys.argv[4:5] == ["--trace"] else None
        child_pass(sys.argv[2], sys.argv[3], limit)
        return 0
    if sys.argv[1:2] == ["_sink"]:
        child_sink()
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--smtp-messages", type=int, default=2000)
    parser.add_argument("--trace-messages", type=int, default=2_000,
                        help="tracemalloc slows the pass about 5x, so it watches a separate "
                             "pass over the first this many messages; the timed pass runs "
                             "without it (0: one pass, traced throughout)")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    databases = [d.strip() for d in args.databases.split(",") if d.strip()]
    unknown = set(databases) - {"sqlite", "postgresql"}
    if unknown or args.patients < 1:
        parser.error(f"unknown databases {sorted(unknown)}" if unknown else "--patients >= 1")

    def on_signal(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    started = time.perf_counter()
    machine = machine_info()
    children: list[Any] = []
    results, smtp = [], None
    top = Path(tempfile.mkdtemp(prefix="engage-bench-dispatch-"))
    try:
        for name in databases:
            workdir = top / name
            workdir.mkdir()
            result, app, url = bench_database(name, args.patients, workdir,
                                              args.trace_messages, children)
            results.append(result)
            if smtp is None and args.smtp_messages > 0:
                log(f"SMTP: {args.smtp_messages:,} messages, three ways")
                smtp = smtp_bench(app, min(args.smtp_messages, args.patients), children)
            with app.app_context():
                from engage.extensions import db

                db.session.remove()
                db.engine.dispose()
            if name == "postgresql":
                drop_pg()
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        for proc in children:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if "postgresql" in databases:
            drop_pg()
        if args.keep:
            log(f"files kept in {top}")
        else:
            shutil.rmtree(top, ignore_errors=True)
    machine["load_end"] = " ".join(f"{x:.1f}" for x in os.getloadavg())
    text = report(results, smtp, machine, args.patients)
    print(text)
    print(f"\n(load average at the end {machine['load_end']}; the whole run took "
          f"{time.perf_counter() - started:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps({"date": datetime.now(UTC).isoformat(),
                                         "machine": machine, "patients": args.patients,
                                         "results": results, "smtp": smtp}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
