"""Real ``engage dispatch`` processes racing for the same outbox, and one killed mid-pass.

These run the console script as separate OS processes against the test
database (committed, emptied afterwards) and the test's aiosmtpd server, so the
claims really are contended: ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, the
``BEGIN IMMEDIATE`` write lock on SQLite.

The children import the code of this checkout (``PYTHONPATH``), not whatever
checkout the ``engage`` script was installed from.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from engage.audit.models import AuditEvent
from engage.core.security import hash_token
from engage.delivery.models import Message, message_invitation
from engage.survey.models import InvitationToken

PATIENTS = 200
ANCHOR = "2027-03-01T10:00"  # Europe/London, GMT: 10:00 UTC
T = datetime(2027, 3, 1, 10, 5, tzinfo=UTC)  # every first message is due, outside quiet hours
LINK = re.compile(r"http://engage\.test/s/([A-Za-z0-9_-]+)")
REPORT = re.compile(r"planned (\d+) messages; sent (\d+)")
ROOT = Path(__file__).resolve().parent.parent


# --- set-up ----------------------------------------------------------------------------

def enrol_everyone(db: Any, n: int = PATIENTS) -> None:
    """A protocol whose baseline (PHQ-9 + GAD-7) opens at ANCHOR; n patients, committed."""
    from engage.org.services import create_service
    from engage.scheduling.services import TimepointSpec, enrol, parse_enrolment, save_protocol

    service = create_service("dispatch-race", "Race clinic")
    save_protocol("race", "Race follow-up", service, [
        TimepointSpec("Baseline", "0", ["phq-9", "gad-7"], "0", "+7d", ["+3d"]),
        TimepointSpec("6 weeks", "+6w", ["phq-9"], "0", "+7d"),
    ])
    now = T - timedelta(days=30)
    for i in range(n):
        request = parse_enrolment(
            {"patient_ref": f"RACE{i:04d}", "protocol": "race", "anchor": ANCHOR,
             "tz": "Europe/London", "email": f"patient{i:04d}@example.org"},
            ("en", "es", "ar"))
        enrol(request, source="cli", now=now)
    db.session.commit()


def child_env(app: Any, instance: Path, port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENGAGE_")}
    env.update({
        "ENGAGE_ENV": "development",
        "ENGAGE_DATABASE_URL": str(app.config["SQLALCHEMY_DATABASE_URI"]),
        "ENGAGE_SECRET_KEY": app.config["SECRET_KEY"],
        "ENGAGE_BASE_URL": "http://engage.test",
        "ENGAGE_SMTP_HOST": "127.0.0.1",
        "ENGAGE_SMTP_PORT": str(port),
        "ENGAGE_INSTANCE_PATH": str(instance),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        **extra,
    })
    return env


def start_dispatch(env: dict[str, str], now: datetime) -> subprocess.Popen[str]:
    exe = os.path.join(os.path.dirname(sys.executable), "engage")
    return subprocess.Popen([exe, "dispatch", "--now", now.isoformat()], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen[str], timeout: float = 60) -> tuple[int, int]:
    """Wait for a dispatch process; (planned, sent) from its printed report."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"engage dispatch did not finish in {timeout} s:\n{err[-3000:]}")
    assert proc.returncode == 0, err[-3000:]
    match = REPORT.search(out)
    assert match, out
    return int(match.group(1)), int(match.group(2))


def worker(proc: subprocess.Popen[str]) -> str:
    """The name a dispatch process claims messages under (``worker_name()`` in it)."""
    return f"{socket.gethostname()}:{proc.pid}"


@contextlib.contextmanager
def writers_held(db: Any) -> Iterator[Any]:
    """Hold the invitation table against writers, so dispatchers started now wait at the gate.

    The first thing a pass does is ``expire_closed``, an UPDATE of ``invitation``.
    Yields a function ``waiting(procs)`` telling whether every process has got there.
    """
    engine = db.engine
    if engine.dialect.name == "postgresql":
        conn = engine.connect()
        conn.execute(text("LOCK TABLE invitation IN SHARE MODE"))  # blocks UPDATE, not SELECT

        def waiting(procs: list[subprocess.Popen[str]]) -> bool:
            with engine.connect() as probe:
                blocked = probe.scalar(text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock' AND query LIKE 'UPDATE invitation%'"))
            return int(blocked or 0) >= len(procs)

        try:
            yield waiting
        finally:
            conn.rollback()
            conn.close()
    else:
        import sqlite3

        path = make_url(str(engine.url)).database
        assert path, "the process tests need a SQLite file, not an in-memory database"
        conn = sqlite3.connect(path, isolation_level=None, timeout=10)
        conn.execute("BEGIN IMMEDIATE")  # every transaction of the app begins IMMEDIATE too

        def waiting(procs: list[subprocess.Popen[str]]) -> bool:
            # The first statement a pass runs is BEGIN IMMEDIATE, right after opening the file.
            target = os.path.realpath(path)
            for proc in procs:
                fds = Path(f"/proc/{proc.pid}/fd")
                try:
                    if not any(os.path.realpath(fd) == target for fd in fds.iterdir()):
                        return False
                except (FileNotFoundError, ProcessLookupError):
                    return False
            time.sleep(0.2)
            return True

        try:
            yield waiting
        finally:
            conn.execute("ROLLBACK")
            conn.close()


def wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


# --- checking what arrived -------------------------------------------------------------

def message_ids_of(db: Any, emails: list[Any]) -> list[int]:
    """The outbox message each email carried, found through the hashes of its links.

    Ends its transaction: on SQLite even a read holds the write lock (BEGIN IMMEDIATE).
    """
    tokens = [LINK.findall(e.get_body(("plain",)).get_content()) for e in emails]
    hashes = {hash_token(t) for ts in tokens for t in ts}
    by_hash = dict(db.session.execute(
        select(InvitationToken.token_hash, message_invitation.c.message_id)
        .join(message_invitation,
              message_invitation.c.invitation_id == InvitationToken.invitation_id)
        .where(InvitationToken.token_hash.in_(hashes))).all())
    db.session.rollback()
    ids = []
    for ts in tokens:
        found = {by_hash[hash_token(t)] for t in ts}
        assert len(found) == 1, "one email, one outbox message"
        ids.append(found.pop())
    return ids


def outbox(db: Any) -> list[Any]:
    """Every message row as it is now (a fresh transaction, ended at once)."""
    db.session.remove()
    rows = list(db.session.execute(
        select(Message.id, Message.status, Message.attempts, Message.claimed_by,
               Message.patient_id).order_by(Message.id)).all())
    db.session.rollback()
    return rows


# --- the tests -------------------------------------------------------------------------

@pytest.mark.slow
def test_two_dispatchers_at_once_send_every_message_exactly_once(
    app, committed_db, smtp, tmp_path
):
    db = committed_db
    enrol_everyone(db)
    env = child_env(app, tmp_path, app.config["SMTP_PORT"], ENGAGE_DELIVERY_BATCH="20")

    with writers_held(db) as waiting:
        procs = [start_dispatch(env, T), start_dispatch(env, T)]
        try:
            wait_for(lambda: waiting(procs), 20, "both dispatchers to reach the database")
        except BaseException:
            for proc in procs:
                proc.kill()
                proc.communicate()
            raise
    # Released: both passes start at the same moment.
    reports = [finish(proc) for proc in procs]

    emails = list(smtp.messages)
    to = Counter(str(e["To"]) for e in emails)
    assert len(to) == PATIENTS and set(to.values()) == {1}, to.most_common(3)
    assert len({e["Message-ID"] for e in emails}) == PATIENTS

    rows = outbox(db)
    assert len(rows) == PATIENTS and len({r.patient_id for r in rows}) == PATIENTS
    assert {(r.status, r.attempts) for r in rows} == {("sent", 1)}
    carried = Counter(message_ids_of(db, emails))
    assert set(carried) == {r.id for r in rows} and set(carried.values()) == {1}
    sends = Counter(db.session.scalars(
        select(AuditEvent.object_id).where(AuditEvent.action == "send",
                                           AuditEvent.object_type == "message")))
    assert sends == Counter({r.id: 1 for r in rows})

    # Their reports add up, and each message was claimed by the one that sent it.
    assert sum(planned for planned, _ in reports) == PATIENTS
    assert sum(sent for _, sent in reports) == PATIENTS
    if db.engine.dialect.name == "postgresql":
        # SKIP LOCKED lets both claim at once, so both do part of the work. SQLite lets one
        # writer in at a time and one process may finish before the other starts claiming;
        # there only the exactly-once checks above apply.
        assert all(sent > 0 for _, sent in reports), reports
    by_worker = Counter(r.claimed_by for r in rows)
    assert by_worker == Counter({worker(p): sent for p, (_, sent) in zip(procs, reports,
                                                                          strict=True)})


@pytest.mark.slow
def test_a_dispatcher_killed_mid_pass_loses_nothing(
    app, committed_db, smtp, tmp_path, monkeypatch
):
    """``kill -9`` during a pass, then passes after its lease: every patient gets the email.

    The first process claims every message in one batch (lease 2 s) and is
    killed once a few emails have arrived. The SMTP sink keeps each message and
    then waits before answering ``250``, so the kill most likely lands after
    the server has a message but before the dispatcher has recorded it as sent.
    Such a message is *in flight*: delivered, yet still ``sending`` in the outbox.
    It goes again once the lease lapses: that is the at-least-once edge of a
    crash (exactly once cannot be had across an SMTP hand-over and a database
    commit). So duplicates are allowed, but only for messages that were in
    flight, and a single sequential dispatcher has at most one in flight.

    A pass inside the lease leaves the dead process's claims alone; a pass
    after it takes them over and sends the rest.
    """
    db = committed_db
    enrol_everyone(db)
    keep = smtp.handle_DATA

    async def slow_ack(server: Any, session: Any, envelope: Any) -> str:
        status = await keep(server, session, envelope)  # kept: the email has arrived
        await asyncio.sleep(0.02)
        return status

    monkeypatch.setattr(smtp, "handle_DATA", slow_ack)  # picked up by each new connection
    env = child_env(app, tmp_path, app.config["SMTP_PORT"], ENGAGE_DELIVERY_BATCH="1000",
                    ENGAGE_DELIVERY_LEASE_SECONDS="2", PGAPPNAME="engage-killed")
    victim = start_dispatch(env, T)
    try:
        wait_for(lambda: len(smtp.messages) >= 5 or victim.poll() is not None, 60,
                 "the first emails")
    finally:
        victim.send_signal(signal.SIGKILL)
        _, err = victim.communicate()
        time.sleep(0.1)  # an acknowledgement still being delayed
        monkeypatch.setattr(smtp, "handle_DATA", keep)
    assert victim.returncode == -signal.SIGKILL, f"the pass ended by itself:\n{err[-3000:]}"
    if db.engine.dialect.name == "postgresql":  # the server rolls back the dead session
        def gone() -> bool:
            with db.engine.connect() as conn:
                return not conn.scalar(text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE application_name = 'engage-killed'"))
        wait_for(gone, 10, "PostgreSQL to end the killed process's session")

    before = list(smtp.messages)
    at_kill = {r.id: r for r in outbox(db)}
    assert len(at_kill) == PATIENTS, "every message was planned before the first was sent"
    assert 5 <= len(before) < PATIENTS
    statuses = Counter(r.status for r in at_kill.values())
    assert statuses["sending"] > 0 and statuses["sent"] < PATIENTS, statuses
    delivered = Counter(message_ids_of(db, before))
    assert set(delivered.values()) == {1}
    in_flight = {m for m in delivered if at_kill[m].status != "sent"}
    print(f"killed after {len(before)} emails; outbox {dict(statuses)}; "
          f"in flight {len(in_flight)}")
    assert len(in_flight) <= 1, "one sequential dispatcher has one message in flight at most"
    assert all(at_kill[m].status == "sent" for m in delivered if m not in in_flight)

    # Inside the lease (the pass's clock is --now): the dead claims are left alone.
    env = child_env(app, tmp_path, app.config["SMTP_PORT"], ENGAGE_DELIVERY_BATCH="50",
                    ENGAGE_DELIVERY_LEASE_SECONDS="2")
    assert finish(start_dispatch(env, T + timedelta(seconds=1))) == (0, 0)
    assert len(smtp.messages) == len(before)

    # After the lease: everything left is taken over and sent.
    planned, sent = finish(start_dispatch(env, T + timedelta(seconds=3)))
    assert planned == 0
    emails = list(smtp.messages)
    to = Counter(str(e["To"]) for e in emails)
    assert len(to) == PATIENTS, "every patient got the email"
    rows = outbox(db)
    assert {r.status for r in rows} == {"sent"}
    assert sent == PATIENTS - statuses["sent"]
    carried = Counter(message_ids_of(db, emails))
    assert set(carried) == {r.id for r in rows}
    duplicates = {m: n for m, n in carried.items() if n > 1}
    assert sum(n - 1 for n in duplicates.values()) <= len(in_flight)
    assert set(duplicates) <= in_flight
    assert sum(to.values()) == PATIENTS + len(duplicates)
    # The survivor took over the dead process's claims.
    assert worker(victim) not in {r.claimed_by for r in rows if r.id not in delivered}
    assert db.session.scalar(select(func.count()).select_from(Message).where(
        Message.attempts != 1)) == 0


def test_a_claim_takes_at_most_one_batch_with_many_due(db):
    """The claim's locking subquery runs once: as a plain ``IN (…)`` PostgreSQL ran it per
    row of a nested-loop semi join, each run locking a batch more, so one claim took
    all or nearly all of 200 due messages and the other dispatcher found none left."""
    from engage.delivery.services import claim_batch, plan_messages

    enrol_everyone(db)
    assert plan_messages(T) == PATIENTS
    lease = timedelta(minutes=5)
    claims = [claim_batch(T, name, 20, lease) for name in ("a", "b", "c")]
    assert [len(c) for c in claims] == [20, 20, 20]
    assert len(set().union(*claims)) == 60
