"""How long the ``engage`` command takes to start, next to the interpreter's and Flask's floors.

Every figure is a fresh process (``subprocess``), timed from the parent, wall clock: the
median (and the fastest) of several runs, the commands taking turns so that a busy moment
on a shared machine falls on all of them alike. The floors are measured in the same run:

- ``python -c pass``: the interpreter alone;
- the Flask stack: ``import flask, sqlalchemy, flask_sqlalchemy, flask_babel, flask_wtf,
  flask_login, wtforms, sqlalchemy.orm``, which any ``engage`` command needs;

then ``engage --help`` and ``engage feedback classify --text "..."`` with
``ENGAGE_ENV=development`` and ``ENGAGE_INSTANCE_PATH`` in a new temporary folder (no
database yet: the shipped model and rules answer). A breakdown process then times, in one
interpreter, what classify spends its time on: importing the command, building the app,
importing numpy and SciPy, loading the shipped theme model, compiling the shipped safety
rules, and the analysis itself.

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
import engage.cli
out["import engage.cli"] = lap()
from engage import create_app
app = create_app()
out["create_app()"] = lap()
import numpy, scipy.sparse, scipy.special
out["import numpy, scipy.sparse, scipy.special"] = lap()
from engage.feedback.text.model import default_model
default_model()
out["load the shipped theme model"] = lap()
from engage.feedback.text.safety import default_rules
default_rules()
out["compile the shipped safety rules"] = lap()
with app.app_context():
    from engage.feedback.analysis import analyse
    analyse(sys.argv[1])
    out["analyse() one comment (database checks, PII)"] = lap()
print(json.dumps(out))
"""

# Which heavy modules building the app imports (it should be none of them).
HEAVY = ("numpy", "scipy", "alembic", "flask_migrate")
HEAVY_PROBE = (
    "import sys; from engage import create_app; create_app(); "
    f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
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
    commands = {
        "python -c pass (floor)": [py, "-c", "pass"],
        "import the Flask stack (floor)": [py, "-c", f"import {FLASK_STACK}"],
        "engage --help": [engage, "--help"],
        f'engage feedback classify --text "{COMMENT}"':
            [engage, "feedback", "classify", "--text", COMMENT],
    }
    with tempfile.TemporaryDirectory(prefix="engage-startup-") as instance:
        env = environment(instance)
        # Warm-up: the first start compiles the catalogues into the instance folder, and
        # fills the page cache; neither is what a second start costs.
        for name, argv in commands.items():
            check(name, run(argv, env)[1])
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.runs):
            for name, argv in commands.items():
                times[name].append(run(argv, env)[0])
        parts: list[dict[str, float]] = []
        for _ in range(max(3, args.runs // 2)):
            elapsed, out = run([py, "-c", BREAKDOWN, COMMENT], env)
            parts.append({k: v for k, v in json.loads(out).items() if isinstance(v, float)})
        heavy = run([py, "-c", HEAVY_PROBE], env)[1].strip()

    print(f"{machine()}; {busy:.0f}% busy just before")
    print(f"{args.runs} runs each, wall clock of a fresh process; median (fastest), seconds\n")
    interpreter = statistics.median(times["python -c pass (floor)"])
    flask_floor = statistics.median(times["import the Flask stack (floor)"])
    width = max(len(name) for name in commands)
    for name, values in times.items():
        median = statistics.median(values)
        ratio = "" if "(floor)" in name else f"  {median / flask_floor:4.1f}x the Flask floor"
        print(f"  {name:<{width}}  {median:6.3f}  ({min(values):.3f})"
              f"  {median / interpreter:5.1f}x python{ratio}")
    print(f"\nwhere classify's time goes (one interpreter, median of {len(parts)} runs):")
    width = max(len(k) for k in parts[0])
    for key in parts[0]:
        print(f"  {key:<{width}}  {statistics.median(p[key] for p in parts):6.3f}")
    print(f"  heavy modules imported by create_app(): {heavy or 'none'} "
          f"(of {', '.join(HEAVY)})")


if __name__ == "__main__":
    main()
