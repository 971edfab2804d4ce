"""The safety screen's recall and false alarms, and its speed next to a floor.

Recall is measured on phrasings kept apart from the rules (``bench/data``):

- ``safety_heldout.json``: 73 phrasings written on 2026-12-04 before looking at what
  the rules catch, never used to tune them (the honest figure);
- the ``held-out`` half of ``safety_independent.json``: written by someone else, without
  sight of the rules, split before any measurement, never used to tune them;
- the development sets (``safety_development.json``, the other half of
  ``safety_independent.json``, ``safety_independent_2.json``, ``safety_independent_3.json``):
  the rules were written against these, so their recall measures coverage, not
  generalisation (batch 3 was also measured once before any work on it: 59% flagged).

False alarms are measured on the 4,993 real NHS Friends and Family Test comments in
``../shared/data/feedback-themes/train.csv`` (targets: urgent at most 1.5 %, review at
most 6 %), and on look-alikes, which must never be urgent. ``--rules FILE`` measures
another rule file (e.g. the rules of an earlier version, to compare).

Speed: ``check`` per comment against a floor measured in the same run, ``normalise``
(the text walk every check starts with).

    python bench/safety.py [--rules FILE] [--show-misses dev]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engage.feedback.text.safety import SafetyRules, default_rules, normalise  # noqa: E402

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
TRAIN = HERE.parent.parent / "shared" / "data" / "feedback-themes" / "train.csv"
URGENT_TARGET, REVIEW_TARGET = 0.015, 0.06


def load_sets() -> dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]]:
    """Each set's phrasings and look-alikes, by name."""
    own = json.loads((DATA / "safety_heldout.json").read_text("utf-8"))
    dev = json.loads((DATA / "safety_development.json").read_text("utf-8"))
    ind = json.loads((DATA / "safety_independent.json").read_text("utf-8"))
    ind2 = json.loads((DATA / "safety_independent_2.json").read_text("utf-8"))
    ind3 = json.loads((DATA / "safety_independent_3.json").read_text("utf-8"))

    def split(data: dict[str, Any], name: str) -> tuple[list[Any], list[Any]]:
        return ([p for p in data["phrasings"] if p["split"] == name],
                [p for p in data["lookalikes"] if p["split"] == name])

    return {
        "held-out, own (written first)": (own["phrasings"], []),
        "held-out, independent half": split(ind, "held-out"),
        "development, own": (dev["phrasings"], dev["lookalikes"]),
        "development, independent half": split(ind, "development"),
        "development, independent batch 2": (ind2["phrasings"], ind2["lookalikes"]),
        "development, independent batch 3": (ind3["phrasings"], ind3["lookalikes"]),
    }


def recall(rules: SafetyRules, name: str, phrasings: list[dict[str, Any]],
           lookalikes: list[dict[str, Any]], show: bool) -> dict[str, Any]:
    flagged = urgent_ok = urgent_n = 0
    by_cat: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    by_lang: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    by_tag: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    misses = []
    for p in phrasings:
        result = rules.check(p["text"], p["language"])
        hit = result.flagged
        flagged += hit
        for table, key in ((by_cat, p["category"]), (by_lang, p["language"])):
            table[key][0] += hit
            table[key][1] += 1
        for tag in p.get("tags", []):
            by_tag[tag][0] += hit
            by_tag[tag][1] += 1
        if p["expect"] == "urgent":
            urgent_n += 1
            urgent_ok += result.urgent
        if not hit or (p["expect"] == "urgent" and not result.urgent):
            misses.append((p, result.level))
    look_urgent = sum(rules.check(p["text"], p["language"]).urgent for p in lookalikes)
    look_review = sum(rules.check(p["text"], p["language"]).level == "review"
                      for p in lookalikes)
    n = len(phrasings)
    print(f"\n{name}: {n} phrasings")
    print(f"  flagged (urgent or review): {flagged}/{n} = {flagged / n:.0%}")
    if urgent_n:
        print(f"  clear risk to life flagged urgent: {urgent_ok}/{urgent_n} = "
              f"{urgent_ok / urgent_n:.0%}")
    print("  by category: " + ", ".join(f"{k} {v[0]}/{v[1]}" for k, v in sorted(by_cat.items())))
    print("  by language: " + ", ".join(f"{k} {v[0]}/{v[1]}" for k, v in sorted(by_lang.items())))
    if by_tag:
        print("  by wording: " + ", ".join(f"{k} {v[0]}/{v[1]}" for k, v in sorted(by_tag.items())))
    if lookalikes:
        print(f"  look-alikes: {look_urgent}/{len(lookalikes)} urgent (target 0), "
              f"{look_review} review")
    if show:
        for p, level in misses:
            print(f"    MISS ({level}, expected {p['expect']}) [{p['language']}] {p['text']}")
    return {"n": n, "flagged": flagged, "urgent_ok": urgent_ok, "urgent_n": urgent_n,
            "look_urgent": look_urgent, "look_n": len(lookalikes)}


def false_alarms(rules: SafetyRules) -> None:
    if not TRAIN.exists():
        print(f"\n{TRAIN} is not there: no false-alarm figures")
        return
    with TRAIN.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    levels: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    for row in rows:
        result = rules.check(row["FFT answer"])
        levels[result.level] += 1
        if result.flagged:
            reasons[f"{result.level}:{result.reason}"] += 1
    n = len(rows)
    print(f"\nreal comments (train.csv): {n}")
    print(f"  urgent: {levels['urgent']} = {levels['urgent'] / n:.2%} "
          f"(target at most {URGENT_TARGET:.1%})")
    print(f"  review: {levels['review']} = {levels['review'] / n:.2%} "
          f"(target at most {REVIEW_TARGET:.0%})")
    print("  by rule: " + ", ".join(f"{k} {v}" for k, v in reasons.most_common()))


def speed(rules: SafetyRules) -> None:
    comments = [
        "The nurse on the ward was lovely but the wait in A&E was far too long for my mum.",
        "La enfermera fue muy amable pero la espera en urgencias fue demasiado larga.",
        "كانت الممرضة لطيفة جدا لكن الانتظار في الطوارئ كان طويلا جدا",
        "She was left soiled for hours and nobody came when she rang the bell.",
    ]
    rows = []
    if TRAIN.exists():
        with TRAIN.open(encoding="utf-8", newline="") as f:
            rows = [r["FFT answer"] for r in csv.DictReader(f)]

    def per_comment(func: Any, texts: list[str], repeat: int) -> float:
        best = []
        for _ in range(5):
            start = time.perf_counter()
            for _ in range(repeat):
                for text in texts:
                    func(text)
            best.append((time.perf_counter() - start) / (repeat * len(texts)))
        return statistics.median(best)

    for text in comments:  # warm: compile what these comments need
        rules.check(text)
    floor = per_comment(normalise, comments, 200)
    check = per_comment(rules.check, comments, 200)
    print("\nspeed, one comment (median of 5 runs):")
    print(f"  floor, normalise() alone: {floor * 1e3:.3f} ms")
    print(f"  check():                  {check * 1e3:.3f} ms  ({check / floor:.1f}x the floor)")
    if rows:
        real = per_comment(rules.check, rows, 1)
        real_floor = per_comment(normalise, rows, 1)
        print(f"  check() over the {len(rows)} real comments: {real * 1e3:.3f} ms each "
              f"({real / real_floor:.1f}x normalise)")
    # A new process: what a worker or `engage feedback classify` pays once.
    probe = ("import time; t0 = time.perf_counter();"
             "from engage.feedback.text.safety import default_rules;"
             "t1 = time.perf_counter(); rules = default_rules(); t2 = time.perf_counter();"
             f"rules.check({comments[3]!r}); t3 = time.perf_counter();"
             "print(t1 - t0, t2 - t1, t3 - t2)")
    runs = []
    for _ in range(5):
        out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                             cwd=HERE.parent, check=True).stdout.split()
        runs.append([float(x) for x in out])
    imp, load, first = (statistics.median(r[i] for r in runs) for i in range(3))
    print(f"  in a new process (median of 5): import {imp * 1e3:.0f} ms, loading the rules "
          f"{load * 1e3:.0f} ms, the first check {first * 1e3:.0f} ms (the speller's index and "
          "the phrases that comment needs)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rules", help="a rules JSON file (default: the shipped rules)")
    parser.add_argument("--show-misses", choices=("none", "dev", "all"), default="none",
                        help="list the development misses (never the held-out ones unless all)")
    args = parser.parse_args()
    rules = (SafetyRules.from_json(Path(args.rules).read_text("utf-8")) if args.rules
             else default_rules())
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}; rules version {rules.version}, "
          f"{len(rules.rules)} rules, {len(rules.anchors)} anchors")
    for name, (phrasings, lookalikes) in load_sets().items():
        show = args.show_misses == "all" or (args.show_misses == "dev"
                                             and name.startswith("development"))
        recall(rules, name, phrasings, lookalikes, show)
    false_alarms(rules)
    speed(rules)


if __name__ == "__main__":
    main()
