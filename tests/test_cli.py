"""The ``engage`` command line: invite, users, services, demo, and the console script."""

from __future__ import annotations

import os
import subprocess
import sys

from sqlalchemy import func, select

from engage.accounts.models import User
from engage.patients.models import Patient
from engage.survey.models import Invitation


def test_invite_prints_the_survey_url_last(runner, client, db):
    result = runner.invoke(args=["invite", "MRN-1", "phq-9", "--language", "es"])
    assert result.exit_code == 0, result.output
    url = result.output.strip().splitlines()[-1]
    assert url.startswith("http://engage.test/s/")
    page = client.get(url.removeprefix("http://engage.test"))
    assert page.status_code == 200
    assert 'lang="es"' in page.get_data(as_text=True)
    patient = db.session.scalar(select(Patient).where(Patient.ref == "MRN-1"))
    assert patient.language == "es"


def test_invite_reuses_the_patient(runner, db):
    runner.invoke(args=["invite", "MRN-2", "phq-9"])
    result = runner.invoke(args=["invite", "MRN-2", "gad-7"])
    assert result.exit_code == 0
    assert "existing" in result.output
    assert db.session.scalar(select(func.count()).select_from(Patient)
                             .where(Patient.ref == "MRN-2")) == 1
    assert db.session.scalar(select(func.count()).select_from(Invitation)) == 2


def test_invite_with_a_named_service(runner, db):
    runner.invoke(args=["services", "create", "cardiology", "Cardiology Clinic"])
    result = runner.invoke(args=["invite", "MRN-3", "fft", "--service", "cardiology"])
    assert result.exit_code == 0, result.output
    assert "Cardiology Clinic" in result.output


def test_invite_rejects_an_unknown_instrument_clearly(runner, db):
    result = runner.invoke(args=["invite", "MRN-4", "promis-29"])
    assert result.exit_code == 2
    assert "unknown instrument 'promis-29'" in result.output
    assert "phq-9" in result.output


def test_users_create_with_role_and_services(runner, db):
    runner.invoke(args=["services", "create", "ward-7", "Ward 7"])
    result = runner.invoke(args=["users", "create", "Nurse@Hospital.test", "--role",
                                 "clinician", "--password", "a-long-password",
                                 "--service", "ward-7"])
    assert result.exit_code == 0, result.output
    user = db.session.scalar(select(User).where(User.email == "nurse@hospital.test"))
    assert user.role == "clinician"
    assert [s.slug for s in user.services] == ["ward-7"]
    assert user.check_password("a-long-password")


def test_users_create_refuses_bad_input(runner, db):
    short = runner.invoke(args=["users", "create", "a@b.test", "--role", "staff",
                                "--password", "short"])
    assert short.exit_code == 2 and "at least 12 characters" in short.output
    bad_role = runner.invoke(args=["users", "create", "a@b.test", "--role", "king",
                                   "--password", "a-long-password"])
    assert bad_role.exit_code == 2


def _engage(args: list[str], tmp_path, **extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENGAGE_")}
    env.update({"ENGAGE_INSTANCE_PATH": str(tmp_path), **extra})
    exe = os.path.join(os.path.dirname(sys.executable), "engage")
    return subprocess.run([exe, *args], env=env, capture_output=True, text=True, timeout=300)


def test_demo_loads_once_and_prints_logins_and_a_link(tmp_path):
    """``engage demo --no-serve`` on a fresh machine: no settings, a new SQLite file."""
    from sqlalchemy import create_engine

    from config import DevelopmentConfig
    from engage import create_app

    result = _engage(["demo", "--no-serve", "--port", "5099"], tmp_path)
    assert result.returncode == 0, result.stderr
    for role in ("admin", "staff", "clinician", "council"):
        assert f"{role}@engage.demo" in result.stdout
    (link,) = [line.strip() for line in result.stdout.splitlines()
                if line.strip().startswith("http://127.0.0.1:5099/s/")]
    assert "http://127.0.0.1:5099/staff" in result.stdout
    assert "http://127.0.0.1:5099/audit" in result.stdout
    # an API key bound to orthopaedics, stored as its hash only
    import re

    (key,) = re.findall(r"Bearer (eng_[\w-]+)' http://127.0.0.1:5099/api/v1/protocols",
                        result.stdout)
    assert "http://127.0.0.1:5099/tell-us/orthopaedics" in result.stdout

    engine = create_engine(f"sqlite:///{tmp_path / 'engage.db'}")
    with engine.connect() as conn:
        def one(sql: str):  # type: ignore[no-untyped-def]
            return conn.exec_driver_sql(sql).scalar()

        assert one("SELECT count(*) FROM patient WHERE ref LIKE 'DEMO-0%'") == 30
        assert {r[0] for r in conn.exec_driver_sql(
            "SELECT DISTINCT instrument_id FROM response")} == {
            "phq-9", "gad-7", "fft", "care-experience"}
        assert one("SELECT count(*) FROM answer WHERE value_text IS NOT NULL") > 50
        span = one("SELECT julianday(max(submitted_at)) - julianday(min(submitted_at)) "
                   "FROM response")
        assert span >= 150
        questionnaire = "FROM alert WHERE feedback_item_id IS NULL"
        assert one(f"SELECT count(*) {questionnaire}") == 3
        assert one(f"SELECT count(*) {questionnaire} AND acknowledged_at IS NULL") == 1
        # An urgent comment on the public page, open for the clinician to try.
        assert one("SELECT count(*) FROM alert WHERE feedback_item_id IS NOT NULL "
                   "AND acknowledged_at IS NULL") == 1
        assert {r[0] for r in conn.exec_driver_sql(
            "SELECT DISTINCT source FROM feedback_item")} == {"survey", "web", "staff"}
        assert one("SELECT count(*) FROM improvement_team") == 3
        assert one("SELECT count(*) FROM feedback_route") > 10
        assert one("SELECT count(*) FROM feedback_item WHERE status = 'new'") > 0
        assert one("SELECT count(*) FROM message WHERE kind = 'reply'") == 1
        responses = one("SELECT count(*) FROM response")
    engine.dispose()

    class Demo(DevelopmentConfig):
        SQLALCHEMY_DATABASE_URI = f"sqlite:///{tmp_path / 'engage.db'}"

    app = create_app(Demo)
    path = link.removeprefix("http://127.0.0.1:5099")
    assert app.test_client().get(path).status_code == 200
    api = app.test_client().get("/api/v1/protocols", headers={"Authorization": f"Bearer {key}"})
    assert api.status_code == 200
    assert {p["service"] for p in api.get_json()["protocols"]} == {"orthopaedics"}
    with app.app_context():
        from engage.extensions import db

        db.engine.dispose()

    again = _engage(["demo", "--no-serve"], tmp_path)
    assert again.returncode == 0, again.stderr
    assert "already loaded" in again.stdout
    engine = create_engine(f"sqlite:///{tmp_path / 'engage.db'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM response").scalar() == responses
    engine.dispose()


def test_the_console_script_is_installed_and_runs(tmp_path):
    env = {**os.environ, "ENGAGE_ENV": "development", "ENGAGE_INSTANCE_PATH": str(tmp_path),
           "ENGAGE_DATABASE_URL": f"sqlite:///{tmp_path}/cli.db"}
    env.pop("ENGAGE_TEST_DATABASE_URL", None)
    exe = os.path.join(os.path.dirname(sys.executable), "engage")
    upgrade = subprocess.run([exe, "db", "upgrade"], env=env, capture_output=True, text=True,
                             timeout=120)
    assert upgrade.returncode == 0, upgrade.stderr
    invite = subprocess.run([exe, "invite", "MRN-9", "gad-2"], env=env, capture_output=True,
                            text=True, timeout=120)
    assert invite.returncode == 0, invite.stderr
    assert invite.stdout.strip().splitlines()[-1].startswith("http://127.0.0.1:5000/s/")


def test_the_console_script_refuses_production_without_secrets(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENGAGE_")}
    env["ENGAGE_INSTANCE_PATH"] = str(tmp_path)
    exe = os.path.join(os.path.dirname(sys.executable), "engage")
    result = subprocess.run([exe, "db", "upgrade"], env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2
    assert result.stderr.startswith("Error: Engage will not start in production without")
    assert "ENGAGE_SECRET_KEY" in result.stderr
    assert "Traceback" not in result.stderr
