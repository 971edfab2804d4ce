"""Training the theme model at scale: time and peak memory from 5,000 to 50,000 comments, and
how closely the iterative solver (used above ``EXACT_MAX_EXAMPLES``) agrees with the exact one.

    python bench/themes_scale.py                       # 5k, 10k, 20k, 50k: ~6 min on one core
    python bench/themes_scale.py --sizes 5000 20000 --solver iterative
    python bench/themes_scale.py --agreement           # exact vs iterative, same data: ~2 min
    python bench/themes_scale.py [path/to/train.csv] --json out.json

**Scale.** The app trains on the 4,993 shipped comments plus every comment staff confirm, at
weight 2. The larger sets here are the same: the shipped comments at weight 1, then copies of
them at weight 2, each copy perturbed (each word dropped with probability 0.05, replaced by a
word drawn from the whole corpus with 0.08, or given a typo, a swapped, dropped or changed
letter, with 0.03), with its own comment and respondent ids and the original's labels. The
copies share most of their terms, so the vocabulary keeps more terms than real comments
would (about 157,000 features at 50,000 against 24,000 at 4,993); that makes the products
dearer, not cheaper. Each size trains in a fresh subprocess with every BLAS pinned to one
thread; its peak memory is that process's maximum resident set (``ru_maxrss``), which counts
the interpreter, numpy, SciPy and the examples themselves (given as "before training").

**Agreement.** On the benchmark's respondent split (``grouped_split``, as ``bench/themes.py``)
the model is trained by the exact path and by the iterative one forced
(``fitting.EXACT_MAX_EXAMPLES = 0``) at several tolerances, on the 3,991 training comments
and on 8,000 (those comments plus perturbed copies of them, at weight 2); both are scored on
the same 1,002 validation comments, which no copy comes from.
"""

from __future__ import annotations

import os

# Pin every BLAS to one thread before numpy is imported: the figures are per core.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import datetime as dt  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import random  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import scipy  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from engage.feedback.text import fitting  # noqa: E402
from engage.feedback.text import model as tm  # noqa: E402

DEFAULT_SIZES = (5000, 10_000, 20_000, 50_000)
TOLERANCES = (1e-3, 1e-4, 1e-5)
LETTERS = "abcdefghijklmnopqrstuvwxyz"


def synthetic(
    base: Sequence[tm.Example], n: int, seed: int = 0, weight: float = 2.0
) -> list[tm.Example]:
    """``base`` (as given), then perturbed copies of it at ``weight`` until there are ``n``."""
    rng = random.Random(seed)
    pool = [word for ex in base for word in ex.text.split()]
    out = list(base)[:n]
    copy = 0
    while len(out) < n:
        copy += 1
        for ex in base:
            if len(out) >= n:
                break
            words = []
            for word in ex.text.split():
                u = rng.random()
                if u < 0.05:
                    continue
                if u < 0.13:
                    word = rng.choice(pool)
                elif u < 0.16 and len(word) > 3:
                    i = rng.randrange(len(word) - 1)
                    kind = rng.randrange(3)
                    if kind == 0:
                        word = word[:i] + word[i + 1] + word[i] + word[i + 2 :]
                    elif kind == 1:
                        word = word[:i] + word[i + 1 :]
                    else:
                        word = word[:i] + rng.choice(LETTERS) + word[i + 1 :]
                words.append(word)
            out.append(
                tm.Example(
                    id=f"{ex.id}~{copy}",
                    text=" ".join(words) or ex.text,
                    question=ex.question,
                    themes=ex.themes,
                    sentiment=ex.sentiment,
                    group=f"{ex.group}~{copy}",
                    weight=weight,
                )
            )
    return out


def _force(solver: str) -> None:
    if solver == "exact":
        fitting.EXACT_MAX_EXAMPLES = sys.maxsize
    elif solver == "iterative":
        fitting.EXACT_MAX_EXAMPLES = 0


def _rss_mb() -> float:
    """The current resident set, MB (Linux)."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def one(data: Path, n: int, solver: str) -> dict[str, Any]:
    """Train once on ``n`` comments (meant for a fresh process: its peak is the figure)."""
    _force(solver)
    base, columns = tm.read_training_csv(data)
    examples = synthetic(base, n)
    before = _rss_mb()
    start, cpu = time.perf_counter(), time.process_time()
    model = tm.train(examples, columns=columns, seed=0)
    return {
        "n": n,
        "solver": model.meta["solver"],
        "wall_seconds": round(time.perf_counter() - start, 1),
        "cpu_seconds": round(time.process_time() - cpu, 1),
        "rss_before_mb": round(before),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "features": model.meta["n_features"],
        "labels": len(model.labels),
    }


def scale(data: Path, sizes: Sequence[int], solver: str) -> list[dict[str, Any]]:
    rows = []
    for n in sizes:
        cmd = [sys.executable, __file__, str(data), "--one", str(n), "--solver", solver]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode:
            raise SystemExit(f"{n} comments failed:\n{done.stderr}")
        row = json.loads(done.stdout.strip().splitlines()[-1])
        rows.append(row)
        method = row["solver"]["method"]
        iterations = row["solver"].get("iterations", "")
        print(
            f"{n:>7,} {method:>20} {row['wall_seconds']:>7.1f} s {row['cpu_seconds']:>7.1f} s "
            f"{row['peak_rss_mb']:>6,} MB ({row['rss_before_mb']} before) "
            f"{row['features']:>8,} features {iterations}",
            flush=True,
        )
    return rows


def _compare(
    exact: tm.ThemeModel,
    exact_coef: np.ndarray,
    other: tm.ThemeModel,
    other_coef: np.ndarray,
    held: Sequence[tm.Example],
) -> dict[str, Any]:
    texts = [ex.text for ex in held]
    questions = [ex.question for ex in held]
    t_ex, s_ex = exact.decision_scores(texts, questions)
    t_it, s_it = other.decision_scores(texts, questions)
    ev = tm.evaluate(other, held)
    hits_ex = t_ex >= exact.thresholds
    hits_it = t_it >= other.thresholds
    return {
        "macro_f1": ev["macro_f1"],
        "micro_f1": ev["micro_f1"],
        "sentiment_accuracy": ev["sentiment"]["accuracy"],
        "max_confidence_change": round(float(np.abs(t_ex - t_it).max()), 5),
        "max_sentiment_probability_change": round(float(np.abs(s_ex - s_it).max()), 5),
        "suggestions_changed": int((hits_ex != hits_it).sum()),
        "sentiments_changed": int((s_ex.argmax(axis=1) != s_it.argmax(axis=1)).sum()),
        "thresholds_changed": int((exact.thresholds != other.thresholds).sum()),
        "weights_relative_difference": float(
            np.linalg.norm(other_coef - exact_coef) / np.linalg.norm(exact_coef)
        ),
        "solver": other.meta["solver"],
    }


def agreement(data: Path) -> dict[str, Any]:
    examples, columns = tm.read_training_csv(data)
    rest, held = tm.grouped_split(examples)
    out: dict[str, Any] = {"validation": len(held)}
    default_tolerance = fitting.CG_TOLERANCE
    for name, train_set in (("3,991 comments", rest), ("8,000 comments", synthetic(rest, 8000))):
        fitting.EXACT_MAX_EXAMPLES = sys.maxsize
        start = time.process_time()
        exact, exact_coef = tm._train(train_set, columns=columns, seed=0)
        ev = tm.evaluate(exact, held)
        rows = {
            "exact": {
                "macro_f1": ev["macro_f1"],
                "micro_f1": ev["micro_f1"],
                "sentiment_accuracy": ev["sentiment"]["accuracy"],
                "cpu_seconds": round(time.process_time() - start, 1),
            }
        }
        print(f"\n{name}, validated on {len(held):,}")
        print(f"{'':>16} {'macro-F1':>9} {'micro-F1':>9} {'sent. acc':>9}   train CPU s")
        print(
            f"{'exact':>16} {ev['macro_f1']:>9.4f} {ev['micro_f1']:>9.4f} "
            f"{ev['sentiment']['accuracy']:>9.4f}   {rows['exact']['cpu_seconds']}"
        )
        fitting.EXACT_MAX_EXAMPLES = 0
        for tol in TOLERANCES:
            fitting.CG_TOLERANCE = tol
            start = time.process_time()
            model, coef = tm._train(train_set, columns=columns, seed=0)
            cpu = round(time.process_time() - start, 1)
            row = _compare(exact, exact_coef, model, coef, held)
            row["cpu_seconds"] = cpu
            rows[f"iterative {tol:g}"] = row
            print(
                f"{'iterative ' + format(tol, 'g'):>16} {row['macro_f1']:>9.4f} "
                f"{row['micro_f1']:>9.4f} {row['sentiment_accuracy']:>9.4f}   {cpu}   "
                f"weights differ by {row['weights_relative_difference']:.1e} (relative), "
                f"confidences by at most {row['max_confidence_change']:.4f}; "
                f"{row['suggestions_changed']} theme suggestions, "
                f"{row['sentiments_changed']} sentiments and "
                f"{row['thresholds_changed']} thresholds changed; "
                f"iterations {row['solver']['iterations']}",
                flush=True,
            )
        fitting.CG_TOLERANCE = default_tolerance
        out[name] = rows
    return out


def machine() -> dict[str, Any]:
    cpu = ""
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except OSError:
        lscpu = ""
    for line in lscpu.splitlines():
        if line.startswith("Model name:"):
            cpu = line.split(":", 1)[1].strip()
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu,
        "nproc": os.cpu_count(),
        "load_average": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "exact_max_examples": fitting.EXACT_MAX_EXAMPLES,
        "cg_tolerance": fitting.CG_TOLERANCE,
        "nystroem_rank": fitting.NYSTROEM_RANK,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="?", default=str(tm.BASE_DATA), type=Path)
    parser.add_argument("--sizes", nargs="+", type=int, default=list(DEFAULT_SIZES))
    parser.add_argument(
        "--solver",
        choices=("auto", "exact", "iterative"),
        default="auto",
        help="auto: exact up to EXACT_MAX_EXAMPLES, iterative above",
    )
    parser.add_argument("--agreement", action="store_true", help="exact vs iterative F1")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, help="also write every figure here")
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.data, args.one, args.solver)))
        return 0
    out: dict[str, Any] = {"machine": machine()}
    print("machine:", ", ".join(f"{k} {v}" for k, v in out["machine"].items()))
    if args.agreement:
        out["agreement"] = agreement(args.data)
    else:
        print(f"\n{'comments':>7} {'solver':>20} {'wall':>9} {'CPU':>9} {'peak memory':>8}")
        out["scale"] = scale(args.data, args.sizes, args.solver)
    out["machine"]["load_average_after"] = round(os.getloadavg()[0], 2)
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
