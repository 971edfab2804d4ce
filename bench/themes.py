"""Feedback themes and sentiment: Engage's model next to pxtextmining's published SVC set-up.

    pip install -e ".[bench]"          # scikit-learn, for the baseline only
    python bench/themes.py [path/to/train.csv] [--json out.json] [--per-label]

Splits the labelled comments by respondent (``grouped_split``, 80/20), trains both models on
the 80 % in the same run and scores both on the 20 %. Nothing is tuned on the 20 %: the
baseline is pxtextmining's configuration as published, and Engage's model tunes its
thresholds by grouped cross-validation inside the 80 %. Everything runs on one core.
"""

from __future__ import annotations

import os

# Pin every BLAS to one thread before numpy is imported: the figures are per core.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import copy  # noqa: E402
import datetime as dt  # noqa: E402
import json  # noqa: E402
import pickle  # noqa: E402  (only to measure the baseline as pxtextmining stores it)
import platform  # noqa: E402
import statistics  # noqa: E402
import string  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import scipy  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

from engage.feedback.text import model as tm  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "feedback-themes" / "train.csv"
SINGLE_REPEATS = 300  # comments predicted one at a time for the latency figures

# --- pxtextmining's published configuration, reimplemented -----------------------------------

_KEEP_AS_SPACE = ",.-"
_PUNCTUATION = str.maketrans(
    {p: (" " if p in _KEEP_AS_SPACE else None) for p in string.punctuation}
)


def px_clean(text: str) -> str:
    """pxtextmining's cleaning: newlines to spaces, digits removed, of the ASCII
    punctuation `,` `.` `-` become spaces and the rest are deleted, split on spaces,
    lower-case, rejoin."""
    text = text.replace("\r", " ").replace("\n", " ")
    text = "".join(ch for ch in text if not ch.isdigit())
    text = text.translate(_PUNCTUATION)
    return " ".join(word.lower() for word in text.split(" ") if word)


class Baseline:
    """TfidfVectorizer() + MultiOutputClassifier(SVC(C=15, class_weight="balanced",
    probability=True, max_iter=1000)), a label predicted at probability >= 0.5. Labels
    that are constant in the training part cannot be fitted and are never predicted.
    ``random_state=0`` only fixes the folds of SVC's internal probability calibration, so
    that two runs give the same figures."""

    def __init__(self, columns: list[str]):
        self.columns = columns

    def fit(self, examples: list[tm.Example]) -> Baseline:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.multioutput import MultiOutputClassifier
        from sklearn.svm import SVC

        y = np.array([[int(c in ex.themes) for c in self.columns] for ex in examples])
        self.fitted = [c for j, c in enumerate(self.columns) if 0 < y[:, j].sum() < len(y)]
        keep = [self.columns.index(c) for c in self.fitted]
        self.vectorizer = TfidfVectorizer()
        x = self.vectorizer.fit_transform([px_clean(ex.text) for ex in examples])
        self.classifier = MultiOutputClassifier(
            SVC(C=15, class_weight="balanced", probability=True, max_iter=1000, random_state=0)
        )
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            self.classifier.fit(x, y[:, keep])
        self.convergence_warnings = sum(issubclass(w.category, ConvergenceWarning) for w in caught)
        return self

    def predict(self, texts: list[str]) -> list[list[str]]:
        x = self.vectorizer.transform([px_clean(t) for t in texts])
        probs = np.stack([p[:, 1] for p in self.classifier.predict_proba(x)], axis=1)
        return [[c for c, p in zip(self.fitted, row, strict=True) if p >= 0.5] for row in probs]


# --- measuring ----------------------------------------------------------------------------------


def batch_rate(predict: Any, texts: list[str], questions: list[str | None]) -> float:
    """Comments per second predicting all of them at once (best of three)."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        predict(texts, questions)
        best = min(best, time.perf_counter() - start)
    return len(texts) / best


def single_latency(predict: Any, texts: list[str], questions: list[str | None]) -> dict:
    """Milliseconds to predict one comment, one call per comment."""
    times = []
    for i in range(min(SINGLE_REPEATS, len(texts))):
        start = time.perf_counter()
        predict([texts[i]], [questions[i]])
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return {
        "median_ms": round(statistics.median(times), 3),
        "p95_ms": round(times[int(0.95 * (len(times) - 1))], 3),
    }


def machine() -> dict[str, Any]:
    def run(*cmd: str) -> str:
        try:
            return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout
        except OSError:
            return ""

    cpu = ""
    for line in run("lscpu").splitlines():
        if line.startswith("Model name:"):
            cpu = line.split(":", 1)[1].strip()
    import sklearn

    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu,
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "scikit-learn": sklearn.__version__,
    }


def run(data: Path) -> dict[str, Any]:
    load_before = os.getloadavg()
    examples, columns = tm.read_training_csv(data)
    rest, held = tm.grouped_split(examples)
    texts = [ex.text for ex in held]
    questions = [ex.question for ex in held]
    truth = [ex.themes for ex in held]
    present = len({t for ex in held for t in ex.themes})
    out: dict[str, Any] = {
        "machine": machine(),
        "data": {
            "path": str(data),
            "examples": len(examples),
            "train": len(rest),
            "validation": len(held),
            "themes_present_in_validation": present,
        },
    }
    print(f"{len(rest)} comments to train on, {len(held)} to validate ({present} themes present)")

    # Engage's model.
    start, cpu = time.perf_counter(), time.process_time()
    ours, float_coef = tm._train(rest, columns=columns, seed=0)
    ours_train = time.perf_counter() - start
    ours_cpu = time.process_time() - cpu
    ev = tm.evaluate(ours, held)
    unquantised = copy.copy(ours)
    unquantised._weights = float_coef.astype(np.float32)
    ev_float = tm.evaluate(unquantised, held)
    with tempfile.TemporaryDirectory() as tmp:
        ours.save(tmp)
        ours_size = sum(p.stat().st_size for p in Path(tmp).iterdir())
        reloaded = tm.ThemeModel.load(tmp)
    assert reloaded.version == ours.version
    out["ours"] = {
        "train_seconds": round(ours_train, 3),
        "train_cpu_seconds": round(ours_cpu, 3),
        "macro_f1": ev["macro_f1"],
        "micro_f1": ev["micro_f1"],
        "unquantised_macro_f1": ev_float["macro_f1"],
        "unquantised_micro_f1": ev_float["micro_f1"],
        "sentiment": ev["sentiment"],
        "labels": len(ours.labels),
        "features": ours.featurizer.n_features,
        "batch_comments_per_second": round(batch_rate(ours.predict, texts, questions)),
        "single": single_latency(ours.predict, texts, questions),
        "size_bytes": ours_size,
        "per_label": ev["per_label"],
    }

    # pxtextmining's configuration.
    start, cpu = time.perf_counter(), time.process_time()
    base = Baseline(columns).fit(rest)
    base_train = time.perf_counter() - start
    base_cpu = time.process_time() - cpu
    scores = tm.theme_metrics(truth, base.predict(texts), columns)
    out["baseline"] = {
        "train_seconds": round(base_train, 3),
        "train_cpu_seconds": round(base_cpu, 3),
        "macro_f1": scores["macro_f1"],
        "micro_f1": scores["micro_f1"],
        "labels": len(base.fitted),
        "labels_not_fitted": [c for c in columns if c not in base.fitted],
        "convergence_warnings": base.convergence_warnings,
        "batch_comments_per_second": round(batch_rate(lambda t, q: base.predict(t), texts, [])),
        "single": single_latency(lambda t, q: base.predict(t), texts, questions),
        "size_bytes": len(pickle.dumps((base.vectorizer, base.classifier), protocol=5)),
        "per_label": scores["per_label"],
    }
    out["machine"]["load_average_before_after"] = [
        round(load_before[0], 2),
        round(os.getloadavg()[0], 2),
    ]
    return out


def report(out: dict[str, Any], per_label: bool) -> None:
    ours, base = out["ours"], out["baseline"]
    print()
    print("machine:", ", ".join(f"{k} {v}" for k, v in out["machine"].items()))
    print(
        f"baseline fitted {base['labels']} labels; never predicts (constant in the training "
        f"part): {', '.join(base['labels_not_fitted']) or 'none'}; "
        f"{base['convergence_warnings']} SVC fits stopped at max_iter"
    )
    print(f"ours: {ours['labels']} labels, {ours['features']} features")
    rows = [
        ("macro-F1 (themes in validation)", "macro_f1", "{:.4f}"),
        ("micro-F1", "micro_f1", "{:.4f}"),
        ("training, s (1 core)", "train_seconds", "{:.2f}"),
        ("training, CPU s", "train_cpu_seconds", "{:.2f}"),
        ("prediction, comments/s (batch)", "batch_comments_per_second", "{:,.0f}"),
        ("size on disk, bytes", "size_bytes", "{:,}"),
    ]
    print(f"\n{'':34} {'pxtextmining SVC':>18} {'Engage':>12}")
    for title, key, fmt in rows:
        print(f"{title:34} {fmt.format(base[key]):>18} {fmt.format(ours[key]):>12}")
    for title, key in (("one comment, median ms", "median_ms"), ("one comment, p95 ms", "p95_ms")):
        print(f"{title:34} {base['single'][key]:>18.3f} {ours['single'][key]:>12.3f}")
    s = ours["sentiment"]
    print(
        f"\nours, sentiment on the {s['n']} validation comments that have one: "
        f"accuracy {s['accuracy']:.4f}, macro-F1 {s['macro_f1']:.4f}, "
        f"within one step {s['within_one']:.4f}"
    )
    print(
        f"ours before int8 quantisation: macro-F1 {ours['unquantised_macro_f1']:.4f}, "
        f"micro-F1 {ours['unquantised_micro_f1']:.4f}"
    )
    ratios = {
        "macro-F1 gain": ours["macro_f1"] - base["macro_f1"],
        "micro-F1 gain": ours["micro_f1"] - base["micro_f1"],
        "training speed-up": base["train_seconds"] / ours["train_seconds"],
        "prediction speed-up (batch)": ours["batch_comments_per_second"]
        / base["batch_comments_per_second"],
        "size ratio (baseline / ours)": base["size_bytes"] / ours["size_bytes"],
    }
    out["ratios"] = {k: round(v, 4) for k, v in ratios.items()}
    print()
    for k, v in ratios.items():
        print(f"{k:34} {v:+.4f}" if "gain" in k else f"{k:34} {v:.1f}x")
    targets = [
        ("macro-F1 at least 0.10 above the baseline", ratios["macro-F1 gain"] >= 0.10),
        ("micro-F1 not below the baseline", ratios["micro-F1 gain"] >= 0),
        ("training at least 20x faster", ratios["training speed-up"] >= 20),
        ("at least 5,000 comments/s on one core", ours["batch_comments_per_second"] >= 5000),
    ]
    out["targets"] = {name: ok for name, ok in targets}
    print()
    for name, ok in targets:
        print(f"{'met   ' if ok else 'MISSED'} {name}")
    if per_label:
        print(f"\n{'theme':58} {'support':>7} {'SVC F1':>7} {'ours F1':>7}")
        labels = sorted(
            set(ours["per_label"]) | set(base["per_label"]),
            key=lambda lab: (
                -max(
                    ours["per_label"].get(lab, {}).get("support", 0),
                    base["per_label"].get(lab, {}).get("support", 0),
                )
            ),
        )
        for lab in labels:
            o = ours["per_label"].get(lab, {"f1": 0.0, "support": 0})
            b = base["per_label"].get(lab, {"f1": 0.0, "support": o["support"]})
            print(f"{lab[:58]:58} {o['support']:>7} {b['f1']:>7.3f} {o['f1']:>7.3f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="?", default=str(DEFAULT_DATA), type=Path)
    parser.add_argument("--json", type=Path, help="also write every figure here")
    parser.add_argument("--per-label", action="store_true", help="print F1 per theme")
    args = parser.parse_args()
    out = run(args.data)
    report(out, args.per_label)
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    return 0 if all(out["targets"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
