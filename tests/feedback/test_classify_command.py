"""``engage feedback classify`` as an operator runs it: the console script in its own
process, building no app, reading the database's saved rules, model and staff names
through a read-only connection of its own (SQLite, or PostgreSQL when the suite runs
there)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from engage.feedback.text.model import default_model
from engage.feedback.text.safety import default_rules

# The console script, reporting which heavy modules it imported (none, it should be).
SCRIPT = (
    "import atexit, sys\n"
    "atexit.register(lambda: print('imported:', ','.join(sorted(m for m in "
    "('flask', 'sqlalchemy', 'scipy', 'engage.app') if m in sys.modules)), file=sys.stderr))\n"
    "from engage.console import main\n"
    "main()\n"
)
RULE = {"id": "purple-elephant", "category": "environment", "level": "review",
        "description": "Animals loose on the ward (a rule only this database has)",
        "phrases": {"en": ["purple elephant*"]}}
STAFF = "Zebedee Quixall"
MODEL_VERSION = "classify-command-test-1"


def engage(*args: str, url: str | None, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENGAGE_")}
    env.update({"ENGAGE_ENV": "development", "ENGAGE_INSTANCE_PATH": str(tmp_path)})
    if url is not None:
        env["ENGAGE_DATABASE_URL"] = url
    return subprocess.run([sys.executable, "-c", SCRIPT, *args], env=env,
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)


def imported(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.splitlines() if line.startswith("imported:")]
    assert lines, result.stderr
    return lines[-1].removeprefix("imported:").strip()


@pytest.fixture
def saved(app: Any, committed_db: Any) -> dict[str, Any]:
    """A database (the suite's: SQLite or PostgreSQL) holding a saved rule set with one
    rule more than the shipped ones, an active model of its own and a staff member."""
    from engage.accounts.services import create_user
    from engage.feedback.models import SafetyRuleSet, ThemeModelRecord

    rules = default_rules().to_dict()
    rules["rules"].append(RULE)
    rule_set = SafetyRuleSet(rules=rules, note="the elephant problem")
    manifest, arrays = default_model().to_parts()
    committed_db.session.add_all([
        rule_set,
        ThemeModelRecord(version=MODEL_VERSION, source="import", status="active",
                         manifest={**manifest, "version": MODEL_VERSION}, arrays=arrays)])
    create_user("zq@example.org", "staff", "a-long-enough-password-1", name=STAFF)
    committed_db.session.commit()
    return {"url": app.config["SQLALCHEMY_DATABASE_URI"], "rules_id": rule_set.id}


def test_one_comment_uses_what_the_database_holds_and_imports_no_flask(saved, tmp_path):
    text = f"Two purple elephants on the ward and {STAFF} just laughed"
    result = engage("feedback", "classify", "--text", text, url=saved["url"],
                    tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert (out["level"], out["reason"]) == ("review", "purple-elephant")
    assert out["rules_version"] == f"{default_rules().version}#{saved['rules_id']}"
    assert out["model_version"] == MODEL_VERSION
    assert STAFF not in out["redacted"]  # a staff name, known from the database
    assert imported(result) == ""


def test_a_csv_uses_what_the_database_holds(saved, tmp_path):
    source = tmp_path / "in.csv"
    source.write_text("ref,text\nA,purple elephants again\nB,Lovely staff\n",
                      encoding="utf-8")
    out = tmp_path / "out.csv"
    result = engage("feedback", "classify", "--input", str(source), "--output", str(out),
                    url=saved["url"], tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "classified 2 comments" in result.stdout and "1 for a safety review" in result.stdout
    with out.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [(r["ref"], r["level"], r["reason"]) for r in rows] == [
        ("A", "review", "purple-elephant"), ("B", "none", "")]


def test_other_url_forms_give_the_same_answer(saved, tmp_path):
    """SQLite with URL options goes through SQLAlchemy; PostgreSQL options reach psycopg."""
    url = saved["url"]
    if url.startswith("sqlite:///"):
        url = "sqlite:///file:" + url.removeprefix("sqlite:///") + "?mode=ro&uri=true"
    else:
        url += ("&" if "?" in url else "?") + "application_name=engage-classify-test"
    result = engage("feedback", "classify", "--text", "purple elephants", url=url,
                    tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["reason"] == "purple-elephant" and out["model_version"] == MODEL_VERSION


def test_the_sqlite_file_is_opened_read_only_and_never_created(tmp_path):
    missing = tmp_path / "nothing-here.db"
    result = engage("feedback", "classify", "--text", "Lovely staff",
                    url=f"sqlite:///{missing}", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["rules_version"] == default_rules().version
    assert not missing.exists()
    empty = tmp_path / "empty.db"  # a file, but no tables: before `engage db upgrade`
    empty.write_bytes(b"")
    result = engage("feedback", "classify", "--text", "Lovely staff",
                    url=f"sqlite:///{empty}", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert empty.read_bytes() == b""


def test_a_database_that_cannot_be_reached_is_a_clear_error_without_its_password(tmp_path):
    result = engage("feedback", "classify", "--text", "Lovely staff",
                    url="postgresql+psycopg://engage:s3cret-pw@127.0.0.1:1/engage",
                    tmp_path=tmp_path)
    assert result.returncode == 2
    assert "Error: cannot read the database postgresql+psycopg://engage:***@127.0.0.1:1" \
        in result.stderr
    assert "s3cret-pw" not in result.stderr and "Traceback" not in result.stderr


def test_usage_mistakes_are_clear(tmp_path):
    result = engage("feedback", "classify", url=None, tmp_path=tmp_path)
    assert result.returncode == 2
    assert "give a comment with --text, or a CSV with --input and --output" in result.stderr
    result = engage("feedback", "classify", "--help", url=None, tmp_path=tmp_path)
    assert result.returncode == 0 and "Usage: engage feedback classify" in result.stdout
