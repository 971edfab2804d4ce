"""``engage feedback classify`` and ``engage themes train|predict|retrain|list|activate``."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BASE = (Path(__file__).resolve().parents[2] / "engage" / "feedback" / "text" / "data"
        / "fft-themes-v6.csv.gz")


def classify(runner, *args: str) -> dict:
    result = runner.invoke(args=["feedback", "classify", *args])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, "one JSON object, on one line"
    return json.loads(lines[0])


def test_classify_prints_the_contract(runner):
    out = classify(runner, "--text", "The nurse, Sarah Jones, was kind but I waited 4 hours. "
                   "Email me at pat@example.org", "--question", "FFT Why?", "--language", "en")
    assert {"themes", "sentiment", "urgent", "urgent_reason", "pii", "redacted"} <= set(out)
    assert out["themes"] and all(set(t) == {"theme", "confidence"} for t in out["themes"])
    assert all(0 <= t["confidence"] <= 1 for t in out["themes"])
    assert out["sentiment"] in ("very positive", "positive", "neutral", "negative",
                                "very negative")
    assert out["urgent"] is False and out["urgent_reason"] is None
    assert {"email", "name"} <= {p["kind"] for p in out["pii"]}
    assert "pat@example.org" not in out["redacted"] and "Jones" not in out["redacted"]


def test_classify_flags_urgent_comments_with_the_rule_that_fired(runner):
    out = classify(runner, "--text", "No quiero vivir más, estoy pensando en matarme",
                   "--language", "es")
    assert out["urgent"] is True and out["urgent_reason"]


def test_the_question_changes_what_nothing_means(runner):
    good = classify(runner, "--text", "Nothing", "--question", "What was good?")
    better = classify(runner, "--text", "Nothing", "--question", "What could we do better?")
    assert (good["sentiment"], good["themes"]) != (better["sentiment"], better["themes"])


def test_classify_works_before_any_database_exists(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENGAGE_")}
    env.update({"ENGAGE_ENV": "development", "ENGAGE_INSTANCE_PATH": str(tmp_path)})
    result = subprocess.run(
        [sys.executable, "-c", "from engage.cli import main; main()", "feedback", "classify",
         "--text", "Lovely staff"],
        env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1])["themes"]


@pytest.fixture
def small_csv(tmp_path) -> Path:
    """The first 400 comments of the shipped base data, as a plain CSV."""
    import gzip

    with gzip.open(BASE, "rt", encoding="utf-8", newline="") as source:
        rows = list(csv.reader(source))
    path = tmp_path / "small.csv"
    with path.open("w", newline="", encoding="utf-8") as out:
        csv.writer(out).writerows(rows[:401])
    return path


def test_train_then_predict_writes_the_csv_contract(runner, small_csv, tmp_path):
    model_dir = tmp_path / "model"
    result = runner.invoke(args=["themes", "train", "--data", str(small_csv),
                                 "--model", str(model_dir)])
    assert result.exit_code == 0, result.output
    assert (model_dir / "manifest.json").exists()
    out = tmp_path / "predicted.csv"
    result = runner.invoke(args=["themes", "predict", "--model", str(model_dir),
                                 "--input", str(small_csv), "--output", str(out)])
    assert result.exit_code == 0, result.output
    with small_csv.open(newline="", encoding="utf-8") as fh:
        header_in = next(csv.reader(fh))
    with out.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["Comment ID", *header_in[6:], "Comment sentiment"]
    assert len(rows) == 401
    assert all(v in ("0", "1") for row in rows[1:] for v in row[1:-1])
    assert all(row[-1] in {"1", "2", "3", "4", "5"} for row in rows[1:])


def test_train_explains_a_bad_file(runner, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    result = runner.invoke(args=["themes", "train", "--data", str(bad),
                                 "--model", str(tmp_path / "m")])
    assert result.exit_code == 2 and "Error:" in result.output


def test_predict_refuses_a_tampered_model(runner, small_csv, tmp_path):
    model_dir = tmp_path / "model"
    runner.invoke(args=["themes", "train", "--data", str(small_csv), "--model", str(model_dir)])
    manifest = json.loads((model_dir / "manifest.json").read_text())
    manifest["format_version"] = 999
    (model_dir / "manifest.json").write_text(json.dumps(manifest))
    result = runner.invoke(args=["themes", "predict", "--model", str(model_dir), "--input",
                                 str(small_csv), "--output", str(tmp_path / "o.csv")])
    assert result.exit_code == 2 and "Error:" in result.output


def test_retrain_list_and_activate(runner, db):
    result = runner.invoke(args=["themes", "retrain"])
    assert result.exit_code == 0, result.output
    assert "not active" in result.output
    listing = runner.invoke(args=["themes", "list"]).output
    assert "the shipped model is active" in listing and "candidate" in listing
    model_id = listing.strip().splitlines()[-1].split("\t")[0]
    assert runner.invoke(args=["themes", "activate", model_id]).exit_code == 0
    assert "active" in runner.invoke(args=["themes", "list"]).output.splitlines()[0]
    assert runner.invoke(args=["themes", "activate", "shipped"]).exit_code == 0
    assert runner.invoke(args=["themes", "activate", "9999"]).exit_code == 2


def test_train_with_evaluate_keeps_held_out_figures_in_the_model(runner, small_csv, tmp_path):
    model_dir = tmp_path / "evaluated"
    result = runner.invoke(args=["themes", "train", "--data", str(small_csv),
                                 "--model", str(model_dir), "--evaluate"])
    assert result.exit_code == 0, result.output
    assert "macro-F1" in result.output
    meta = json.loads((model_dir / "manifest.json").read_text())["meta"]
    assert meta["evaluation"]["n"] > 0 and 0 <= meta["evaluation"]["micro_f1"] <= 1
