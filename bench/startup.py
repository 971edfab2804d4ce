"""How long the ``engage`` command takes to start, next to the interpreter's and its floors.

Every figure is a fresh process (``subprocess``), timed from the parent, wall clock: the
median (and the fastest) of several runs, the commands taking turns so that a busy moment
on a shared machine falls on all of them alike. The floors are measured in the same run:

- ``python -c pass``: the interpreter alone;
- the Flask stack: ``import flask, sqlalchemy, flask_sqlalchemy, flask_babel, flask_wtf,
  flask_login, wtforms, sqlalchemy.orm``, which any command that builds the app needs;
- ``import click, numpy``: what classifying a comment cannot do without (the command
  line, and the model's arithmetic);

then ``engage --help``, and ``engage feedback classify --text "..."`` twice, with
``ENGAGE_ENV=development``: with ``ENGAGE_INSTANCE_PATH`` in a new temporary folder (no
database yet: the shipped model and rules answer), and with a SQLite database migrated by
``engage db upgrade`` (the command opens it read-only and asks it for the rules, model and
staff names in force). A breakdown process then times, in one interpreter, what classify
spends its time on, and a probe lists which heavy modules it imports (none should be).

    python bench/startup.py [--runs 11] [--wait-idle 300]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMENT = "I waited four hours"
FLASK_STACK = ("flask, sqlalchemy, flask_sqlalchemy, flask_babel, flask_wtf, flask_login, "
               "wtforms, sqlalchemy.orm")

# Runs in a fresh interpreter: the steps of ``engage feedback classify``, timed one by one.
BREAKDOWN = r"""
import json, sys, time
t = [time.perf_counter()]
def lap():
    t.append(time.perf_counter())
    return t[-1] - t[-2]
out = {}
import config
from engage.feedback import classify, in_force
from engage.feedback.text import reader
out["import the command (click, config, rules and model code)"] = lap()
with in_force.open_database(config.database_url()) as execute:
    names = in_force.staff_names(execute)
    out["open the database, read the staff names"] = lap()
    model, _ = in_force.model(execute)
    out["import numpy, load the theme model"] = lap()
    rules, _ = in_force.rules(execute)
    out["load and check the safety rules"] = lap()
    reader.read_comments([(sys.argv[1], None, None)], model, rules, names=names)
    out["read the comment (speller, the phrases it needs, PII)"] = lap()
print(json.dumps(out))
"""

# Which heavy modules building the app imports (it should be none of them).
HEAVY = ("numpy", "scipy", "alembic", "flask_migrate")
HEAVY_PROBE = (
    "import sys; from engage import create_app; create_app(); "
    f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
)
# Which heavy modules ``engage feedback classify`` imports (it should be none of them).
CLASSIFY_HEAVY = ("flask", "sqlalchemy", "scipy", "engage.app")
CLASSIFY_PROBE = (
    "import atexit, sys; atexit.register(lambda: print(','.join(m for m in "
    f"{CLASSIFY_HEAVY!r} if m in sys.modules), file=sys.stderr)); "
    "sys.argv[1:] = ['feedback', 'classify', '--text', sys.argv[1]]; "
    "from engage.console import main; main()"
)


def console_script() -> str:
    """The installed ``engage`` script next to this interpreter (not a pyenv shim, which
    adds a shell script of its own to every start)."""
    script = Path(sys.executable).parent / "engage"
    if not script.exists():
        sys.exit(f"{script} not found: pip install -e . first")
    return str(script)


def environment(instance: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENGAGE_")}
    env.update({"ENGAGE_ENV": "development", "ENGAGE_INSTANCE_PATH": instance})
    return env


def run(argv: list[str], env: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120,
                          cwd=ROOT)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr}")
    return elapsed, done.stdout


def check(name: str, stdout: str) -> None:
    """The commands really did their job (a fast failure is no figure)."""
    if name == "engage --help":
        for command in ("db", "feedback", "themes", "users", "routes", "shell"):
            if f"\n  {command} " not in stdout:
                sys.exit(f"engage --help does not list {command!r}:\n{stdout}")
    if name.startswith("engage feedback classify"):
        result = json.loads(stdout)
        if not result.get("themes") or "model_version" not in result:
            sys.exit(f"unexpected classify output: {stdout}")


def machine_busy(seconds: float) -> float:
    """How busy the whole machine was (percent of all cores) over the next ``seconds``."""

    def sample() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + fields[4]
        return sum(fields) - idle, sum(fields)

    try:
        (busy0, total0) = sample()
        time.sleep(seconds)
        (busy1, total1) = sample()
    except OSError:
        return 0.0
    return 100.0 * (busy1 - busy0) / max(total1 - total0, 1)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    ram = ""
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in
                   Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
        ram = next(f", {int(line.split()[1]) / 1024 / 1024:.0f} GiB RAM" for line in
                   Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal"))
    except (OSError, StopIteration):
        pass
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"machine: {cpu}, {os.cpu_count()} CPUs{ram}; Python {platform.python_version()}; "
            f"load average {load}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=11, help="timed runs of each (default 11)")
    parser.add_argument("--wait-idle", type=float, default=0.0, metavar="SECONDS",
                        help="first wait up to this long for the machine to be under 10%% "
                        "busy (for shared machines; default 0: do not wait)")
    args = parser.parse_args()
    busy = machine_busy(2)
    waited = time.perf_counter()
    while busy > 10 and time.perf_counter() - waited < args.wait_idle:
        print(f"the machine is {busy:.0f}% busy; waiting for it to calm down", file=sys.stderr)
        time.sleep(4)
        busy = machine_busy(2)
    engage = console_script()
    py = sys.executable
    classify = [engage, "feedback", "classify", "--text", COMMENT]
    with tempfile.TemporaryDirectory(prefix="engage-startup-") as instance, \
            tempfile.TemporaryDirectory(prefix="engage-startup-db-") as migrated:
        env = environment(instance)
        env_db = environment(migrated)
        run([engage, "db", "upgrade"], env_db)
        # name: (argv, environment)
        commands = {
            "python -c pass (floor)": ([py, "-c", "pass"], env),
            "import the Flask stack (floor)": ([py, "-c", f"import {FLASK_STACK}"], env),
            "import click, numpy (floor)": ([py, "-c", "import click, numpy"], env),
            "engage --help": ([engage, "--help"], env),
            "engage feedback classify, no database yet": (classify, env),
            "engage feedback classify, a SQLite database": (classify, env_db),
        }
        # Warm-up: the first start compiles the catalogues into the instance folder, and
        # fills the page cache; neither is what a second start costs.
        for name, (argv, environ) in commands.items():
            check(name, run(argv, environ)[1])
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.runs):
            for name, (argv, environ) in commands.items():
                times[name].append(run(argv, environ)[0])
        parts: list[dict[str, float]] = []
        for _ in range(max(3, args.runs // 2)):
            elapsed, out = run([py, "-c", BREAKDOWN, COMMENT], env_db)
            parts.append({k: v for k, v in json.loads(out).items() if isinstance(v, float)})
        heavy = run([py, "-c", HEAVY_PROBE], env)[1].strip()
        classify_heavy = subprocess.run(
            [py, "-c", CLASSIFY_PROBE, COMMENT], env=env_db, capture_output=True, text=True,
            timeout=120, cwd=ROOT, check=True).stderr.strip().splitlines()[-1:]

    print(f"{machine()}; {busy:.0f}% busy just before")
    print(f"{args.runs} runs each, wall clock of a fresh process; median (fastest), seconds\n")
    interpreter = statistics.median(times["python -c pass (floor)"])
    flask_floor = statistics.median(times["import the Flask stack (floor)"])
    numpy_floor = statistics.median(times["import click, numpy (floor)"])
    width = max(len(name) for name in commands)
    for name, values in times.items():
        median = statistics.median(values)
        ratio = ""
        if name == "engage --help":
            ratio = f"  {median / flask_floor:4.1f}x the Flask floor"
        elif name.startswith("engage feedback classify"):
            ratio = f"  {median / numpy_floor:4.1f}x the click+numpy floor"
        print(f"  {name:<{width}}  {median:6.3f}  ({min(values):.3f})"
              f"  {median / interpreter:5.1f}x python{ratio}")
    print(f"\nwhere classify's time goes (one interpreter, a SQLite database, median of "
          f"{len(parts)} runs):")
    width = max(len(k) for k in parts[0])
    for key in parts[0]:
        print(f"  {key:<{width}}  {statistics.median(p[key] for p in parts):6.3f}")
    print(f"  heavy modules imported by create_app(): {heavy or 'none'} "
          f"(of {', '.join(HEAVY)})")
    print(f"  heavy modules imported by engage feedback classify: "
          f"{''.join(classify_heavy) or 'none'} (of {', '.join(CLASSIFY_HEAVY)})")


if __name__ == "__main__":
    main()
