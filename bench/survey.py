#!/usr/bin/env python
"""Benchmark of the patient survey flow, against a floor measured in the same run.

    python bench/survey.py [--patients 50] [--duration 25 | --responses N]
                           [--databases sqlite,postgresql] [--json out.json]

For each database it

1. prepares a fresh database (a new SQLite file, or drops and recreates the
   PostgreSQL database ``engage_bench``; never any other), runs
   ``engage db upgrade`` and creates one PHQ-9 invitation per simulated flow
   through Engage's own services, in this process;
2. starts ``gunicorn -w 2 wsgi:app`` in production mode on a free port of
   127.0.0.1, and lets ``--patients`` threads (one ``httpx.Client`` each)
   complete whole PHQ-9 flows: start, 4 question pages, review, send, thanks,
   13 requests, every status code and redirect checked;
3. starts ``gunicorn -w 2 "floor_app:create_app()"`` (``bench/floor_app.py``:
   one route inserting one row with SQLAlchemy) with the same settings and
   concurrency;
4. checks the database afterwards: exactly one submitted response per completed
   flow, one floor row per floor request.

Both loads run with a warm-up (not counted) and then a measured window; the
figures count the requests and flows that *finished* inside the window, so
neither the ramp-up nor the drain at the end is in them. Each run also times
one client alone (no queueing: the time a request itself takes).

The sizes of every patient page (raw and gzip, plus the CSS) are measured once,
against the first database, and compared with a 14 KB first-round-trip budget.

``--databases sqlite-deferred-gets`` adds a third, labelled run: SQLite with
Engage changed by ``bench/wsgi_sqlite_deferred_gets.py`` (GET requests begin
their transaction DEFERRED instead of IMMEDIATE), for comparison only.

Only 127.0.0.1 is contacted. Child processes run in their own process group,
which is killed on the way out, whatever happens. With the defaults the script
takes about two minutes; it exits with status 1 if anything failed or the
database counts do not match.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import math
import os
import platform
import random
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(ROOT), str(BENCH)]

INSTRUMENT = "phq-9"
PAGE_SIZE = 3  # passed to the server as ENGAGE_SURVEY_PAGE_SIZE, so the client knows the pages
PG_URL = "postgresql+psycopg://root@127.0.0.1:5432/engage_bench"
BUDGET = 14 * 1024  # bytes a page may need in the first round trip (about 10 TCP segments)
HARD_CAP_SECONDS = 600  # no load loop runs longer than this, whatever the options say
MAX_ERRORS = 25  # a load stops early after this many errors
FORM_TOKEN = re.compile(r'name="form_token" value="([^"]+)"')
CSS_LINK = re.compile(r'<link rel="stylesheet" href="([^"]+)"')


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- answers


@dataclass(frozen=True)
class PhqItem:
    link_id: str
    required: bool
    codes: tuple[str, ...]  # option codes, by value 0..3


def phq_items() -> list[PhqItem]:
    import surveys

    instrument = surveys.get(INSTRUMENT)
    items = []
    for item in instrument.items:
        codes = tuple(o.code for o in sorted(item.options, key=lambda o: o.value))
        items.append(PhqItem(item.link_id, bool(item.required), codes))
    return items


def realistic_answers(items: list[PhqItem], rng: random.Random) -> dict[str, str]:
    """One patient's PHQ-9, drawn so that the bands look like a mental-health clinic's.

    A latent severity per patient; each symptom item is Binomial(3, p) around it;
    question 9 (thoughts of self-harm, which raises an alert) is rarer; the optional
    question 10 is sometimes skipped, mostly by patients with no symptoms.
    """
    severity = rng.choices([0.08, 0.25, 0.45, 0.62, 0.8], weights=[35, 27, 18, 12, 8])[0]
    answers: dict[str, str] = {}
    total = 0
    for number, item in enumerate(items, start=1):
        p = min(0.95, max(0.02, rng.gauss(severity, 0.12)))
        if number == 9:
            p *= 0.12
        if number == 10:
            if total == 0 and rng.random() < 0.6 or rng.random() < 0.1:
                continue  # optional: skipped
            p = severity
        value = sum(rng.random() < p for _ in range(3))
        if number <= 9:
            total += value
        answers[item.link_id] = item.codes[value]
    return answers


def paginate(items: list[PhqItem]) -> list[list[PhqItem]]:
    return [items[i:i + PAGE_SIZE] for i in range(0, len(items), PAGE_SIZE)]


# --------------------------------------------------------------------------- databases


@dataclass
class Database:
    name: str  # "sqlite", "sqlite-deferred-gets" or "postgresql"
    url: str
    version: str = ""

    @property
    def is_sqlite(self) -> bool:
        return self.name.startswith("sqlite")

    @property
    def label(self) -> str:
        return {"sqlite": "SQLite", "postgresql": "PostgreSQL",
                "sqlite-deferred-gets": "SQLite, GETs deferred*"}[self.name]


def check_pg_url(url: str) -> None:
    parts = urlsplit(url)
    dbname = parts.path.lstrip("/")
    if parts.hostname not in ("127.0.0.1", "localhost"):
        sys.exit(f"refusing PostgreSQL at {parts.hostname}: this benchmark talks to 127.0.0.1 only")
    if not dbname.startswith("engage_bench"):
        sys.exit(f"refusing to drop database {dbname!r}: its name must start with engage_bench")


def pg_connect_admin(url: str) -> Any:
    import psycopg

    parts = urlsplit(url)
    return psycopg.connect(
        host=parts.hostname, port=parts.port or 5432, user=parts.username or "root",
        password=parts.password, dbname="postgres", autocommit=True, connect_timeout=5,
    )


def recreate_database(db: Database) -> None:
    if db.is_sqlite:
        import sqlite3

        for suffix in ("", "-wal", "-shm"):
            Path(str(sqlite_path(db.url)) + suffix).unlink(missing_ok=True)
        db.version = sqlite3.sqlite_version
        return
    check_pg_url(db.url)
    dbname = urlsplit(db.url).path.lstrip("/")
    with pg_connect_admin(db.url) as conn:
        db.version = conn.execute("SHOW server_version").fetchone()[0].split()[0]
        conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{dbname}"')


def sqlite_path(url: str) -> Path:
    return Path(url.removeprefix("sqlite:///"))


def count_rows(url: str, sql: str) -> int:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(sql)).scalar_one())
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def child_env(db_url: str, port: int, secret: str, instance: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENGAGE_")}
    env.update(
        ENGAGE_ENV="production",
        ENGAGE_SECRET_KEY=secret,
        ENGAGE_BASE_URL=f"http://127.0.0.1:{port}",
        ENGAGE_SECURE_COOKIES="false",
        ENGAGE_DATABASE_URL=db_url,
        ENGAGE_INSTANCE_PATH=str(instance),
        ENGAGE_SURVEY_PAGE_SIZE=str(PAGE_SIZE),
        PYTHONUNBUFFERED="1",
        PYTHONPATH=os.pathsep.join([str(ROOT)] + ([os.environ["PYTHONPATH"]]
                                                  if os.environ.get("PYTHONPATH") else [])),
    )
    return env


def run_upgrade(env: dict[str, str], logfile: Path) -> None:
    with logfile.open("ab") as out:
        done = subprocess.run(
            [sys.executable, "-c", "from engage.cli import main; main()", "db", "upgrade"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=120,
        )
    if done.returncode != 0:
        raise RuntimeError(f"engage db upgrade failed; see {logfile}\n{tail(logfile)}")


def server_errors(path: Path, offset: int) -> dict[str, Any]:
    """What the server logged from ``offset`` on: 500s, and the exception lines by kind."""
    try:
        with path.open("rb") as fh:
            fh.seek(offset)
            text = fh.read().decode(errors="replace")
    except OSError:
        return {}
    kinds: dict[str, int] = {}
    for line in text.splitlines():
        match = re.match(r"^([A-Za-z_][\w.]*(?:Error|Exception)): (.{0,90})", line)
        if match:
            key = f"{match.group(1)}: {match.group(2)}"
            kinds[key] = kinds.get(key, 0) + 1
    top = sorted(kinds.items(), key=lambda kv: -kv[1])[:5]
    return {"unhandled_500": text.count("ERROR in errors: unhandled error on"),
            "exception_lines": dict(top)}


def log_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


class Gunicorn:
    """``gunicorn -w 2`` in its own process group; killed with the group on exit."""

    def __init__(self, app_spec: str, cwd: Path, env: dict[str, str], port: int,
                 logfile: Path, workers: int) -> None:
        self.cmd = [
            sys.executable, "-m", "gunicorn", "-w", str(workers), "-b", f"127.0.0.1:{port}",
            "--graceful-timeout", "5", "--log-level", "warning", app_spec,
        ]
        self.cwd, self.env, self.port, self.logfile = cwd, env, port, logfile
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Gunicorn:
        self._out = self.logfile.open("ab")
        self.proc = subprocess.Popen(
            self.cmd, cwd=self.cwd, env=self.env, stdout=self._out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.proc.returncode}:\n"
                                   + tail(self.logfile))
            try:
                httpx.get(f"http://127.0.0.1:{self.port}/bench-ready", timeout=2.0)
                return
            except httpx.TransportError:
                time.sleep(0.2)
        raise RuntimeError("gunicorn did not answer within 30 s:\n" + tail(self.logfile))

    def worker_pids(self) -> list[int]:
        if self.proc is None:
            return []
        try:
            text = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
        except OSError:
            return []
        return [int(p) for p in text.split()]

    def stop(self) -> None:
        """SIGTERM to the whole process group (master and workers), then SIGKILL."""
        proc = self.proc
        if proc is None:
            return
        self.proc = None
        pgid = proc.pid  # start_new_session: the master leads its own group
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)  # whatever is left of the group
        proc.wait(timeout=5)
        self._out.close()


# --------------------------------------------------------------------------- CPU accounting


def machine_cpu() -> tuple[float, float, float]:
    """(busy, I/O wait, total) seconds of all CPUs since boot, from /proc/stat."""
    fields = [float(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    tick = os.sysconf("SC_CLK_TCK")
    total = sum(fields[:8])
    idle = fields[3] + fields[4]
    return (total - idle) / tick, fields[4] / tick, total / tick


def process_cpu(pids: list[int]) -> dict[int, float]:
    """CPU seconds (user + system) used so far by each of ``pids`` still alive."""
    tick = os.sysconf("SC_CLK_TCK")
    seconds = {}
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        parts = stat.rsplit(")", 1)[1].split()
        seconds[pid] = (int(parts[11]) + int(parts[12])) / tick
    return seconds


def postgres_backends(dbname: str) -> list[int]:
    """PostgreSQL server processes serving ``dbname`` (their title names the database)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if title.startswith("postgres: ") and f" {dbname} " in title:
            pids.append(int(entry.name))
    return pids


@dataclass
class CpuMeter:
    """Where the machine's CPU went during the measured window.

    ``groups`` name the processes to account for (gunicorn workers, database
    backends); the load generator is this process. What is left of the busy
    time is everything else: the kernel's share of our work, and any other
    program running on the machine.
    """

    groups: dict[str, Callable[[], list[int]]]
    start: dict[str, Any] = field(default_factory=dict)
    result: dict[str, float] = field(default_factory=dict)

    def begin(self) -> None:
        self.start = {"machine": machine_cpu(), "client": time.process_time(),
                      **{name: process_cpu(pids()) for name, pids in self.groups.items()}}

    def end(self, wall: float) -> None:
        busy, iowait, total = machine_cpu()
        b0, w0, t0 = self.start["machine"]
        cores = os.cpu_count() or 1
        result = {"machine_busy_pct": 100.0 * (busy - b0) / max(total - t0, 1e-9),
                  "iowait_pct": 100.0 * (iowait - w0) / max(total - t0, 1e-9),
                  "client_cores": (time.process_time() - self.start["client"]) / wall}
        for name, pids in self.groups.items():
            before, after = self.start[name], process_cpu(pids())
            result[f"{name}_cores"] = sum(v - before.get(pid, 0.0)
                                          for pid, v in after.items()) / wall
        ours = sum(v for k, v in result.items() if k.endswith("_cores"))
        result["other_cores"] = max(0.0, result["machine_busy_pct"] / 100 * cores - ours)
        result["cores"] = cores
        self.result = result


def machine_busy(seconds: float = 1.0) -> float:
    """Percent of all CPUs busy over the next ``seconds``: other programs, before a load."""
    b0, _, t0 = machine_cpu()
    time.sleep(seconds)
    b1, _, t1 = machine_cpu()
    return 100.0 * (b1 - b0) / max(t1 - t0, 1e-9)


# --------------------------------------------------------------------------- load


class FlowError(Exception):
    pass


@dataclass
class Samples:
    """What one thread saw: (end time, method, page, seconds) per request, and flows."""

    requests: list[tuple[float, str, str, float]] = field(default_factory=list)
    flows: list[tuple[float, float]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    completed: int = 0  # whole flows (or floor requests) that succeeded, window or not


def timed(client: httpx.Client, samples: Samples, method: str, page: str, url: str,
          expect: int, data: dict[str, str] | None = None) -> httpx.Response:
    t0 = time.perf_counter()
    try:
        r = client.request(method, url, data=data)
    except httpx.HTTPError as exc:
        raise FlowError(f"{method} {page}: {type(exc).__name__}: {exc}") from None
    t1 = time.perf_counter()
    samples.requests.append((t1, method, page, t1 - t0))
    if r.status_code != expect:
        raise FlowError(f"{method} {page}: status {r.status_code}, expected {expect}")
    return r


def form_token(r: httpx.Response, page: str) -> str:
    match = FORM_TOKEN.search(r.text)
    if not match:
        raise FlowError(f"GET {page}: no form_token in the page")
    return match.group(1)


def expect_location(r: httpx.Response, page: str, suffix: str) -> None:
    location = r.headers.get("location", "")
    if not urlsplit(location).path.endswith(suffix):
        raise FlowError(f"POST {page}: redirected to {location!r}, expected …{suffix}")


def survey_flow(client: httpx.Client, samples: Samples, token: str,
                pages: list[list[PhqItem]], answers: dict[str, str]) -> float:
    """One patient answers the whole questionnaire; returns the flow's seconds."""
    base = f"/s/{token}"
    t0 = time.perf_counter()
    r = timed(client, samples, "GET", "start", base, 200)
    ft = form_token(r, "start")
    r = timed(client, samples, "POST", "start", base, 303,
              {"form_token": ft, "respondent": "self"})
    expect_location(r, "start", f"{base}/q/1")
    for number, items in enumerate(pages, start=1):
        name = f"q{number}"
        r = timed(client, samples, "GET", name, f"{base}/q/{number}", 200)
        for item in items:
            if f'name="{item.link_id}"' not in r.text:
                raise FlowError(f"GET {name}: no question {item.link_id} on the page")
        data = {"form_token": form_token(r, name), "action": "next"}
        data.update({i.link_id: answers[i.link_id] for i in items if i.link_id in answers})
        r = timed(client, samples, "POST", name, f"{base}/q/{number}", 303, data)
        nxt = f"{base}/q/{number + 1}" if number < len(pages) else f"{base}/review"
        expect_location(r, name, nxt)
    r = timed(client, samples, "GET", "review", f"{base}/review", 200)
    if "error-summary" in r.text:
        raise FlowError("GET review: the page says questions are missing")
    r = timed(client, samples, "POST", "review", f"{base}/review", 303,
              {"form_token": form_token(r, "review")})
    expect_location(r, "review", f"{base}/done")
    r = timed(client, samples, "GET", "done", f"{base}/done", 200)
    if 'class="panel"' not in r.text:
        raise FlowError("GET done: not the thank-you page")
    return time.perf_counter() - t0


@dataclass
class LoadResult:
    label: str
    window: float
    clients: int
    requests: list[tuple[float, str, str, float]]
    flows: list[tuple[float, float]]
    errors: list[str]
    completed: int
    kind: str  # "flow" (a survey flow is the unit) or "request" (the floor)
    cpu: dict[str, float] = field(default_factory=dict)
    note: str = ""


def run_load(
    label: str, clients: int, base_url: str,
    one: Callable[[httpx.Client, Samples, random.Random], None],
    *, warmup: float, duration: float | None, count: int | None, seed: int,
    stop_all: threading.Event, cpu: CpuMeter | None = None, kind: str = "flow",
) -> LoadResult:
    """``clients`` threads call ``one`` in a loop: ``warmup`` seconds, then the window.

    The window ends after ``duration`` seconds, or when ``count`` flows (or
    requests) have finished in it, whichever is given; never after
    HARD_CAP_SECONDS. Work in flight at the end is finished, not counted.
    """
    t_start = time.perf_counter()
    w_start = t_start + warmup
    # The window's end: set once, by whatever stops the load first.
    w_end_box = [w_start + duration if duration else t_start + HARD_CAP_SECONDS]
    stop = threading.Event()
    lock = threading.Lock()
    done_in_window = [0]
    early = [""]
    all_samples: list[Samples] = []

    def halt(at: float, why: str = "") -> None:
        with lock:
            if not stop.is_set():
                w_end_box[0] = min(w_end_box[0], at)
                early[0] = why
                stop.set()

    def worker(i: int) -> None:
        samples = Samples()
        all_samples.append(samples)
        rng = random.Random(seed * 1000 + i)
        headers = {"User-Agent": "engage-bench", "Accept-Language": "en"}
        with httpx.Client(base_url=base_url, timeout=30.0, follow_redirects=False,
                          headers=headers) as client:
            time.sleep(rng.random() * min(1.0, warmup))  # patients do not arrive in step
            while not stop.is_set() and not stop_all.is_set():
                try:
                    one(client, samples, rng)
                except FlowError as exc:
                    samples.errors.append(str(exc))
                    if sum(len(s.errors) for s in all_samples) >= MAX_ERRORS:
                        halt(time.perf_counter(), f"stopped after {MAX_ERRORS} errors")
                    continue
                except IndexError:
                    halt(time.perf_counter(), "stopped early: no invitation left")
                    break
                samples.completed += 1
                if count:
                    now = time.perf_counter()
                    if now >= w_start:
                        with lock:
                            done_in_window[0] += 1
                            reached = done_in_window[0] >= count
                        if reached:
                            halt(now)

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    if cpu is not None:
        time.sleep(max(0.0, w_start - time.perf_counter()))
        cpu.begin()
    while any(t.is_alive() for t in threads):
        now = time.perf_counter()
        if now >= w_end_box[0]:
            halt(w_end_box[0], "" if duration else "stopped by the hard time cap")
        if cpu is not None and stop.is_set() and not cpu.result:
            cpu.end(max(now - w_start, 1e-9))
        time.sleep(0.02)
    for t in threads:
        t.join()
    if stop_all.is_set():
        raise KeyboardInterrupt
    if cpu is not None and not cpu.result:
        cpu.end(max(time.perf_counter() - w_start, 1e-9))
    w_end = w_end_box[0]
    requests = [r for s in all_samples for r in s.requests if w_start <= r[0] <= w_end]
    flows = [f for s in all_samples for f in s.flows if w_start <= f[0] <= w_end]
    return LoadResult(
        label=label, window=max(w_end - w_start, 0.0), clients=clients, requests=requests,
        flows=flows, errors=[e for s in all_samples for e in s.errors],
        completed=sum(s.completed for s in all_samples), kind=kind,
        cpu=cpu.result if cpu else {}, note=early[0],
    )


# --------------------------------------------------------------------------- statistics


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def summary(result: LoadResult) -> dict[str, Any]:
    lat = [r[3] for r in result.requests]
    get = [r[3] for r in result.requests if r[1] == "GET"]
    post = [r[3] for r in result.requests if r[1] == "POST"]
    flow = [f[1] for f in result.flows]
    out: dict[str, Any] = {
        "label": result.label, "clients": result.clients, "window_s": round(result.window, 2),
        "requests": len(lat), "requests_per_s": len(lat) / result.window if result.window else 0.0,
        "p50_ms": pct(lat, 50) * 1000, "p95_ms": pct(lat, 95) * 1000,
        "get_p50_ms": pct(get, 50) * 1000, "get_p95_ms": pct(get, 95) * 1000,
        "post_p50_ms": pct(post, 50) * 1000, "post_p95_ms": pct(post, 95) * 1000,
        "errors": len(result.errors), "completed_total": result.completed, "cpu": result.cpu,
        "note": result.note,
    }
    if result.kind == "flow":
        out.update(flows=len(flow),
                   flows_per_s=len(flow) / result.window if result.window else 0.0,
                   flow_p50_ms=pct(flow, 50) * 1000, flow_p95_ms=pct(flow, 95) * 1000)
        pages: dict[str, list[float]] = {}
        for _, method, page, seconds in result.requests:
            pages.setdefault(f"{method} {page}", []).append(seconds)
        out["by_page_p50_ms"] = {k: pct(v, 50) * 1000 for k, v in pages.items()}
    return out


# --------------------------------------------------------------------------- page bytes


@dataclass
class PageSize:
    name: str
    status: int
    raw: int
    gz: int
    headers: int


def size_of(name: str, r: httpx.Response) -> PageSize:
    body = r.content
    headers = len(f"HTTP/1.1 {r.status_code} {r.reason_phrase}\r\n") + sum(
        len(k) + len(v) + 4 for k, v in r.headers.raw) + 2
    return PageSize(name, r.status_code, len(body), len(gzip.compress(body, 6, mtime=0)), headers)


def measure_pages(base_url: str, token: str, pages: list[list[PhqItem]],
                  answers: dict[str, str]) -> tuple[list[PageSize], PageSize]:
    sizes: list[PageSize] = []
    samples = Samples()
    base = f"/s/{token}"
    with httpx.Client(base_url=base_url, timeout=30.0, follow_redirects=False) as c:
        r = timed(c, samples, "GET", "start", base, 200)
        sizes.append(size_of("Start", r))
        css_url = CSS_LINK.search(r.text)
        if not css_url:
            raise FlowError("no stylesheet link on the start page")
        css = size_of("patient.css", timed(c, samples, "GET", "css", css_url.group(1), 200))
        ft = form_token(r, "start")
        timed(c, samples, "POST", "start", base, 303, {"form_token": ft, "respondent": "self"})
        for number, items in enumerate(pages, start=1):
            url = f"{base}/q/{number}"
            r = timed(c, samples, "GET", f"q{number}", url, 200)
            sizes.append(size_of(f"Question page {number} ({len(items)} question"
                                 f"{'s' if len(items) > 1 else ''})", r))
            if number == 1:
                r = timed(c, samples, "POST", "q1", url, 200,
                          {"form_token": ft, "action": "next"})
                if "error-summary" not in r.text:
                    raise FlowError("posting page 1 empty showed no errors")
                sizes.append(size_of("Question page 1 with errors", r))
            data = {"form_token": ft, "action": "next"}
            data.update({i.link_id: answers[i.link_id] for i in items if i.link_id in answers})
            timed(c, samples, "POST", f"q{number}", url, 303, data)
        sizes.append(size_of("Review", timed(c, samples, "GET", "review", f"{base}/review", 200)))
        timed(c, samples, "POST", "review", f"{base}/review", 303, {"form_token": ft})
        sizes.append(size_of("Thank you (done)", timed(c, samples, "GET", "done",
                                                       f"{base}/done", 200)))
        unknown = "x" + secrets.token_urlsafe(32)
        sizes.append(size_of("Unknown link (404)", timed(c, samples, "GET", "404",
                                                         f"/s/{unknown}", 404)))
    return sizes, css


# --------------------------------------------------------------------------- one database


@dataclass
class Prepared:
    tokens: list[str]
    seconds: float


def make_invitations(db: Database, env: dict[str, str], n: int) -> Prepared:
    """``n`` PHQ-9 invitations through Engage's services, committed; returns the tokens."""
    import config as engage_config
    from engage import create_app
    from engage.extensions import db as sa
    from engage.org.services import create_service
    from engage.patients.services import get_or_create_patient
    from engage.survey.services import create_invitation

    class BenchConfig(engage_config.Config):
        SECRET_KEY = env["ENGAGE_SECRET_KEY"]
        SQLALCHEMY_DATABASE_URI = db.url
        BASE_URL = env["ENGAGE_BASE_URL"]
        SESSION_COOKIE_SECURE = False
        SURVEY_PAGE_SIZE = PAGE_SIZE

    t0 = time.perf_counter()
    saved = os.environ.get("ENGAGE_INSTANCE_PATH")
    os.environ["ENGAGE_INSTANCE_PATH"] = env["ENGAGE_INSTANCE_PATH"]
    try:
        app = create_app(BenchConfig)
    finally:
        if saved is None:
            os.environ.pop("ENGAGE_INSTANCE_PATH", None)
        else:
            os.environ["ENGAGE_INSTANCE_PATH"] = saved
    tokens = []
    with app.app_context():
        try:
            service = create_service("bench", "Bench Clinic")
            for i in range(n):
                patient, _ = get_or_create_patient(service, f"BENCH-{i:06d}")
                _, token = create_invitation(patient, service, INSTRUMENT)
                tokens.append(token)
                if i % 500 == 499:
                    sa.session.commit()
            sa.session.commit()
        finally:
            sa.session.remove()
            sa.engine.dispose()
    return Prepared(tokens, time.perf_counter() - t0)


def bench_database(db: Database, args: argparse.Namespace, workdir: Path, items: list[PhqItem],
                   measure_bytes: bool, stop_all: threading.Event) -> dict[str, Any]:
    pages = paginate(items)
    instance = workdir / f"instance-{db.name}"
    instance.mkdir()
    logfile = workdir / f"{db.name}.log"
    port = free_port()
    env = child_env(db.url, port, secrets.token_hex(32), instance)
    base_url = f"http://127.0.0.1:{port}"
    out: dict[str, Any] = {"database": db.name, "label": db.label}
    busy = machine_busy()
    waited = time.perf_counter()
    while busy > 10 and time.perf_counter() - waited < args.wait_idle:
        log(f"{db.name}: the machine is {busy:.0f}% busy; waiting for it to calm down")
        time.sleep(4)
        busy = machine_busy(2)
    out["busy_before_pct"] = busy
    if busy > 20:
        log(f"warning: the machine is already {busy:.0f}% busy; figures will be low and noisy")

    log(f"{db.name}: fresh database, engage db upgrade")
    recreate_database(db)
    out["version"] = db.version
    run_upgrade(env, logfile)

    # Enough invitations for every flow that can start: the serial runs, the
    # page sizes, the warm-up and the window (at a generous upper bound on speed).
    serial_flows = args.serial_flows + 2
    if args.responses:
        loaded = args.responses + 2 * args.patients + int(args.warmup * args.max_flow_rate)
    else:
        loaded = int((args.warmup + args.duration) * args.max_flow_rate) + 2 * args.patients
    n = serial_flows + 1 + loaded
    log(f"{db.name}: creating {n} invitations")
    prepared = make_invitations(db, env, n)
    out["invitations"] = n
    out["invitations_s"] = round(prepared.seconds, 1)
    log(f"{db.name}: {n} invitations in {prepared.seconds:.1f}s")
    tokens = prepared.tokens
    answers_rng = random.Random(args.seed)
    bytes_token = tokens.pop()

    def one_flow(client: httpx.Client, samples: Samples, rng: random.Random) -> None:
        token = tokens.pop()  # IndexError when none is left: the load stops
        answers = realistic_answers(items, rng)
        seconds = survey_flow(client, samples, token, pages, answers)
        samples.flows.append((time.perf_counter(), seconds))

    def cpu_groups(server: Gunicorn) -> dict[str, Callable[[], list[int]]]:
        groups: dict[str, Callable[[], list[int]]] = {"server": server.worker_pids}
        if not db.is_sqlite:
            dbname = urlsplit(db.url).path.lstrip("/")
            groups["db"] = lambda: postgres_backends(dbname)
        return groups

    completed = 0
    errors: list[str] = []
    app_spec, app_dir = ("wsgi:app", ROOT)
    if db.name == "sqlite-deferred-gets":
        app_spec, app_dir = ("wsgi_sqlite_deferred_gets:app", BENCH)
    offset = log_size(logfile)
    with Gunicorn(app_spec, app_dir, env, port, logfile, args.workers) as server:
        # One patient alone: the time a request takes without queueing.
        log(f"{db.name}: survey, 1 patient, {args.serial_flows} flows (+2 warm-up)")
        warm = run_load("survey-warm", 1, base_url, one_flow, warmup=0, duration=None,
                        count=2, seed=args.seed, stop_all=stop_all)
        serial = run_load("survey-1", 1, base_url, one_flow, warmup=0, duration=None,
                          count=args.serial_flows, seed=args.seed + 1, stop_all=stop_all)
        completed += warm.completed + serial.completed
        errors += warm.errors + serial.errors
        out["survey_serial"] = summary(serial)
        if measure_bytes:
            log(f"{db.name}: page sizes")
            sizes, css = measure_pages(base_url, bytes_token, pages,
                                       realistic_answers(items, answers_rng))
            completed += 1
            out["pages"] = [s.__dict__ for s in sizes]
            out["css"] = css.__dict__
        what = (f"{args.responses} flows" if args.responses else f"{args.duration:g}s")
        log(f"{db.name}: survey, {args.patients} patients, {args.warmup:g}s warm-up + {what}")
        cpu = CpuMeter(cpu_groups(server))
        loadr = run_load("survey", args.patients, base_url, one_flow, warmup=args.warmup,
                         duration=None if args.responses else args.duration,
                         count=args.responses, seed=args.seed + 2, stop_all=stop_all, cpu=cpu)
        completed += loadr.completed
        errors += loadr.errors
        out["survey"] = summary(loadr)
        log(f"{db.name}: survey {out['survey']['flows_per_s']:.2f} flows/s, "
            f"{out['survey']['requests_per_s']:.0f} req/s, {len(loadr.errors)} errors")
    out["server_log"] = server_errors(logfile, offset)
    submitted = count_rows(db.url, "SELECT count(*) FROM response WHERE submitted_at IS NOT NULL")
    closed = count_rows(db.url, "SELECT count(*) FROM invitation WHERE status = 'completed'")
    alerts = count_rows(db.url, "SELECT count(*) FROM alert")
    out["db_check"] = {"flows_completed": completed, "responses_submitted": submitted,
                       "invitations_completed": closed, "alerts": alerts,
                       "ok": submitted == completed == closed}
    if not out["db_check"]["ok"]:
        errors.append(f"database has {submitted} submitted responses and {closed} completed "
                      f"invitations for {completed} completed flows")

    # The floor: same gunicorn settings, same concurrency, same database.
    from floor_app import create_table

    create_table(db.url)
    floor_port = free_port()
    floor_env = dict(env, ENGAGE_BASE_URL=f"http://127.0.0.1:{floor_port}")
    floor_url = f"http://127.0.0.1:{floor_port}"

    def one_hit(client: httpx.Client, samples: Samples, rng: random.Random) -> None:
        timed(client, samples, "POST", "hit", "/hit", 200)

    floor_done = 0
    offset = log_size(logfile)
    with Gunicorn("floor_app:create_app()", BENCH, floor_env, floor_port, logfile,
                  args.workers) as server:
        log(f"{db.name}: floor, 1 client, {args.serial_hits} requests (+20 warm-up)")
        warm = run_load("floor-warm", 1, floor_url, one_hit, warmup=0, duration=None,
                        count=20, seed=args.seed, stop_all=stop_all, kind="request")
        serial = run_load("floor-1", 1, floor_url, one_hit, warmup=0, duration=None,
                          count=args.serial_hits, seed=args.seed, stop_all=stop_all,
                          kind="request")
        floor_done += warm.completed + serial.completed
        errors += warm.errors + serial.errors
        out["floor_serial"] = summary(serial)
        log(f"{db.name}: floor, {args.patients} clients, {args.warmup:g}s warm-up + "
            f"{args.floor_duration:g}s")
        cpu = CpuMeter(cpu_groups(server))
        loadr = run_load("floor", args.patients, floor_url, one_hit, warmup=args.warmup,
                         duration=args.floor_duration, count=None, seed=args.seed,
                         stop_all=stop_all, cpu=cpu, kind="request")
        floor_done += loadr.completed
        errors += loadr.errors
        out["floor"] = summary(loadr)
        log(f"{db.name}: floor {out['floor']['requests_per_s']:.0f} req/s, "
            f"{len(loadr.errors)} errors")
    out["floor_server_log"] = server_errors(logfile, offset)
    rows = count_rows(db.url, "SELECT count(*) FROM bench_floor_hit")
    out["floor_db_check"] = {"requests_ok": floor_done, "rows": rows, "ok": rows == floor_done}
    if rows != floor_done:
        errors.append(f"floor table has {rows} rows for {floor_done} successful requests")
    out["errors"] = errors
    return out


# --------------------------------------------------------------------------- report


def fmt_ms(value: float) -> str:
    if value != value:  # NaN
        return "–"
    return f"{value:.0f}" if value >= 10 else f"{value:.1f}"


def report(results: list[dict[str, Any]], machine: dict[str, str], args: argparse.Namespace,
           elapsed: float) -> str:
    lines: list[str] = []
    add = lines.append
    window = (f"{args.responses} flows" if args.responses else f"a {args.duration:g} s window")
    add(f"{args.patients} concurrent clients, gunicorn -w {args.workers} (sync workers), "
        f"{args.warmup:g} s warm-up then {window} (floor: {args.floor_duration:g} s). "
        "One flow = 13 requests (start, 4 question pages, review, send, thanks; GET + POST "
        "each). Latencies in ms as the client sees them, queueing included; \"alone\" = "
        "one client, no queue.")
    add("")
    add("| Database | App | Done in window | Throughput | Requests/s | Request p50 / p95 "
        "| GET p50 / p95 | POST p50 / p95 | Flow p50 / p95 | Alone: GET / POST p50 "
        "| Errors |")
    add("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for res in results:
        if "survey" not in res:
            continue
        s, f = res["survey"], res.get("floor")
        ss, fs = res["survey_serial"], res.get("floor_serial", {})
        errs = len(res["errors"])
        add(f"| {res['label']} {res['version']} | Engage survey | {s['flows']} flows "
            f"| **{s['flows_per_s']:.2f} flows/s** | {s['requests_per_s']:.0f} "
            f"| {fmt_ms(s['p50_ms'])} / {fmt_ms(s['p95_ms'])} "
            f"| {fmt_ms(s['get_p50_ms'])} / {fmt_ms(s['get_p95_ms'])} "
            f"| {fmt_ms(s['post_p50_ms'])} / {fmt_ms(s['post_p95_ms'])} "
            f"| {fmt_ms(s['flow_p50_ms'])} / {fmt_ms(s['flow_p95_ms'])} "
            f"| {fmt_ms(ss['get_p50_ms'])} / {fmt_ms(ss['post_p50_ms'])} "
            f"| {'**' + str(errs) + '**' if errs else 0} |")
        if f:
            add(f"| | Floor (1 INSERT) | {f['requests']} requests "
                f"| {f['requests_per_s']:.0f} req/s | {f['requests_per_s']:.0f} "
                f"| {fmt_ms(f['p50_ms'])} / {fmt_ms(f['p95_ms'])} | – "
                f"| {fmt_ms(f['post_p50_ms'])} / {fmt_ms(f['post_p95_ms'])} | – "
                f"| – / {fmt_ms(fs.get('post_p50_ms', float('nan')))} | |")
    add("")
    for res in results:
        if "survey" not in res:
            continue
        s, f = res["survey"], res.get("floor")
        ss, fs = res["survey_serial"], res.get("floor_serial")
        parts = [f"**{res['label']}**:"]
        if f and s["flows_per_s"] > 0:
            cost = f["requests_per_s"] / s["flows_per_s"]
            parts.append(
                f"a whole survey flow costs **{cost:.0f} floor requests** ({cost / 13:.1f} per "
                f"survey request); a request's p50 under load is "
                f"{s['p50_ms'] / f['p50_ms']:.1f}× the floor's, alone "
                f"{ss['p50_ms'] / fs['post_p50_ms']:.1f}× ({fmt_ms(ss['p50_ms'])} vs "
                f"{fmt_ms(fs['post_p50_ms'])} ms).")
        cpu = s.get("cpu") if s["window_s"] > 0 else {}
        fcpu = (f or {}).get("cpu") if (f or {}).get("window_s") else {}
        disturbed = max(cpu.get("other_cores", 0), (fcpu or {}).get("other_cores", 0))
        if disturbed > 0.3:
            parts.append(f"**Disturbed**: other programs took up to {disturbed:.1f} cores "
                         "during this run; its figures are low.")
        if cpu:
            parts.append(
                f"CPU during the survey window: {cpu_text(cpu)}"
                + (f"; floor: {cpu_text(fcpu)}" if fcpu else "")
                + f" (machine {res['busy_before_pct']:.0f}% busy just before the run).")
        check = res["db_check"]
        fcheck = res.get("floor_db_check")
        ok = check["ok"] and (fcheck is None or fcheck["ok"])
        parts.append(
            f"Database check: {check['responses_submitted']} submitted responses and "
            f"{check['invitations_completed']} completed invitations for "
            f"{check['flows_completed']} completed flows ({check['alerts']} safety alerts)"
            + (f", {fcheck['rows']} floor rows for {fcheck['requests_ok']} floor requests"
               if fcheck else "") + (": match." if ok else ": **MISMATCH**."))
        for what, load in (("survey", s), ("floor", f or {})):
            if load.get("note"):
                parts.append(f"The {what} load {load['note']}.")
        log_ = res.get("server_log") or {}
        if log_.get("unhandled_500") or res["errors"]:
            top = "; ".join(f"{n}× {k}" for k, n in log_.get("exception_lines", {}).items())
            parts.append(f"**Failed**: {len(res['errors'])} client errors (first: "
                         f"{res['errors'][0] if res['errors'] else '–'}); server logged "
                         f"{log_.get('unhandled_500', 0)} unhandled errors ({top}).")
        add("- " + " ".join(parts))
    add("")
    flows = [r for r in results if r.get("survey", {}).get("by_page_p50_ms")]
    if flows:
        add("Median latency of each request under load (ms):")
        add("")
        order = ["start", "q1", "q2", "q3", "q4", "review", "done"]
        keys = sorted({k for r in flows for k in r["survey"]["by_page_p50_ms"]},
                      key=lambda k: (order.index(k.split()[1]) if k.split()[1] in order else 99,
                                     k.split()[0] != "GET"))
        add("| Database | " + " | ".join(keys) + " |")
        add("|---|" + "---:|" * len(keys))
        for res in flows:
            by = res["survey"]["by_page_p50_ms"]
            add(f"| {res['label']} | " + " | ".join(fmt_ms(by.get(k, float("nan")))
                                                   for k in keys) + " |")
        add("")
    if any(r["database"] == "sqlite-deferred-gets" for r in results):
        add("\\* Engage changed for comparison only (bench/wsgi_sqlite_deferred_gets.py): "
            "GET requests begin their SQLite transaction DEFERRED instead of IMMEDIATE, "
            "so page views do not take the write lock.")
        add("")
    with_pages = [r for r in results if "pages" in r]
    if with_pages:
        res = with_pages[0]
        css = res["css"]
        add(f"Page bytes (measured on {res['label']}): bodies in bytes, gzip level 6. Budget "
            f"{BUDGET:,} bytes (14 KB, about what a new connection delivers in its first "
            "round trip) for the page's HTML plus its stylesheet, both compressed.")
        add("")
        add("| Page | Status | HTML raw | HTML gzip | HTML + CSS gzip | Share of 14 KB "
            "| Response headers |")
        add("|---|---:|---:|---:|---:|---:|---:|")
        for p in res["pages"]:
            both = p["gz"] + css["gz"]
            add(f"| {p['name']} | {p['status']} | {p['raw']:,} | {p['gz']:,} | {both:,} "
                f"| {100 * both / BUDGET:.0f}%{'' if both <= BUDGET else ' **over**'} "
                f"| {p['headers']:,} |")
        add(f"| patient.css | {css['status']} | {css['raw']:,} | {css['gz']:,} | – | – "
            f"| {css['headers']:,} |")
        add("")
    add(f"Machine: {machine['cpu']}, {machine['nproc']} cores, {machine['ram']} RAM; "
        f"Python {machine['python']}, gunicorn {machine['gunicorn']}, "
        f"SQLAlchemy {machine['sqlalchemy']}, httpx {machine['httpx']}. "
        f"Script run time {elapsed:.0f} s.")
    return "\n".join(lines)


def cpu_text(cpu: dict[str, float]) -> str:
    text = (f"machine {cpu['machine_busy_pct']:.0f}% busy = gunicorn workers "
            f"{cpu['server_cores']:.2f} cores")
    if "db_cores" in cpu:
        text += f" + PostgreSQL {cpu['db_cores']:.2f}"
    return text + (f" + load generator {cpu['client_cores']:.2f} + rest "
                   f"{cpu['other_cores']:.2f}"
                   + (f"; I/O wait {cpu['iowait_pct']:.0f}%" if "iowait_pct" in cpu else ""))


def machine_info() -> dict[str, str]:
    import gunicorn
    import sqlalchemy

    cpu = platform.processor() or "unknown"
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True,
                                   timeout=10).stdout.splitlines():
            if line.startswith("Model name:"):
                cpu = line.split(":", 1)[1].strip()
    except (OSError, subprocess.TimeoutExpired):
        pass
    ram = "?"
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            ram = f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB"
    return {"cpu": cpu, "nproc": str(os.cpu_count()), "ram": ram,
            "python": platform.python_version(), "gunicorn": gunicorn.__version__,
            "sqlalchemy": sqlalchemy.__version__, "httpx": httpx.__version__}


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--patients", type=int, default=50, help="concurrent clients (default 50)")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--duration", type=float, default=25.0,
                       help="seconds of the measured survey window (default 25)")
    group.add_argument("--responses", type=int, default=None,
                       help="measure until this many flows have finished, instead of a duration")
    p.add_argument("--floor-duration", type=float, default=10.0,
                   help="seconds of the measured floor window (default 10)")
    p.add_argument("--warmup", type=float, default=3.0, help="seconds not counted (default 3)")
    p.add_argument("--databases", default="sqlite,postgresql",
                   help="comma-separated: sqlite, postgresql, sqlite-deferred-gets (default: "
                   "sqlite,postgresql). sqlite-deferred-gets runs Engage changed by "
                   "bench/wsgi_sqlite_deferred_gets.py, for comparison only")
    p.add_argument("--pg-url", default=PG_URL,
                   help=f"PostgreSQL database to drop and recreate (default {PG_URL}); "
                   "its name must start with engage_bench")
    p.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    p.add_argument("--serial-flows", type=int, default=5,
                   help="flows timed with a single client (default 5)")
    p.add_argument("--serial-hits", type=int, default=200,
                   help="floor requests timed with a single client (default 200)")
    p.add_argument("--max-flow-rate", type=float, default=40.0,
                   help="flows/s upper bound used to size the invitation pool (default 40)")
    p.add_argument("--wait-idle", type=float, default=0.0, metavar="SECONDS",
                   help="before each database, wait up to this long for the machine to be "
                   "under 10%% busy (for shared machines; default 0: do not wait)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = p.parse_args(argv)
    if args.responses:
        args.duration = None
    dbs = [d.strip() for d in args.databases.split(",") if d.strip()]
    bad = [d for d in dbs if d not in ("sqlite", "sqlite-deferred-gets", "postgresql")]
    if bad or not dbs:
        p.error(f"unknown database(s): {', '.join(bad) or '(none)'}")
    args.databases = dbs
    if not 1 <= args.patients <= 500:
        p.error("--patients must be between 1 and 500")
    if args.duration is not None and not 0 < args.duration <= HARD_CAP_SECONDS:
        p.error(f"--duration must be between 0 and {HARD_CAP_SECONDS}")
    if "postgresql" in dbs:
        check_pg_url(args.pg_url)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    stop_all = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        stop_all.set()
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    items = phq_items()
    if len(paginate(items)) != 4:
        log(f"note: {INSTRUMENT} has {len(items)} items: {len(paginate(items))} pages, not 4")
    workdir = Path(tempfile.mkdtemp(prefix="engage-bench-"))
    results = []
    failed = False
    try:
        for i, name in enumerate(args.databases):
            url = (f"sqlite:///{workdir / (name + '.db')}" if name.startswith("sqlite")
                   else args.pg_url)
            res = bench_database(Database(name, url), args, workdir, items,
                                 measure_bytes=(i == 0), stop_all=stop_all)
            results.append(res)
            if res["errors"]:
                failed = True
                log(f"{name}: {len(res['errors'])} errors, first ones:")
                for e in res["errors"][:10]:
                    log(f"  {e}")
    except KeyboardInterrupt:
        stop_all.set()
        log("interrupted")
        return 130
    finally:
        if args.keep or failed:
            log(f"logs and files kept in {workdir}")
        else:
            import shutil

            shutil.rmtree(workdir, ignore_errors=True)
    elapsed = time.perf_counter() - started
    machine = machine_info()
    print(report(results, machine, args, elapsed))
    if args.json:
        args.json.write_text(json.dumps({"machine": machine, "args": {
            k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "elapsed_s": elapsed, "results": results}, indent=2, default=str))
    if failed:
        log("FAILED: errors above")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
