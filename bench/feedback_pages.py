"""The public feedback page's bytes, and what taking a comment in costs, next to floors.

Runs the app in-process on a fresh SQLite file (no server): page sizes of the form, the
form with errors and the thank-you pages in every shipped language, beside the survey's
start page; then the time of a comment's POST (analysis, safety rules, PII, insert,
audit) against a GET of the same page (the floor: routing, templating, one query), and
``analyse()`` alone against a bare ``model.predict`` call.

    python bench/feedback_pages.py [--comments 300]
"""

from __future__ import annotations

import argparse
import gzip
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

COMMENTS = [
    "I waited four hours to be seen and nobody told me why.",
    "The nurses were kind and caring, thank you.",
    "Parking is impossible and the machines only take coins.",
    "Dr Patel explained everything, call me on 07700 900123 if you need me.",
    "La enfermera fue muy amable pero esperé dos horas.",
    "كان الطاقم لطيفاً جداً وشرح لي كل شيء.",
]


def fields(html: str) -> dict[str, str]:
    return {name: re.search(rf'name="{name}" value="([^"]*)"', html).group(1)  # type: ignore[union-attr]
            for name in ("form_token", "nonce")}


def size(body: bytes) -> tuple[int, int]:
    return len(body), len(gzip.compress(body, 6, mtime=0))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--comments", type=int, default=300)
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="engage-bench-")
    os.environ["ENGAGE_INSTANCE_PATH"] = folder

    import config
    from engage import create_app
    from engage.extensions import db

    class Bench(config.TestConfig):
        SQLALCHEMY_DATABASE_URI = f"sqlite:///{folder}/bench.db"
        WTF_CSRF_ENABLED = False

    app = create_app(Bench)
    with app.app_context():
        from flask_migrate import upgrade

        from engage.org.services import create_service
        from engage.patients.services import get_or_create_patient
        from engage.survey.services import create_invitation

        upgrade()
        service = create_service("bench", "Riverside Clinic")
        patient, _ = get_or_create_patient(service, "BENCH-1")
        _inv, token = create_invitation(patient, service, "phq-9")
        db.session.commit()
    client = app.test_client()

    print(f"machine: {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, Python {platform.python_version()}")
    print("\npage bytes (HTML raw / gzip -6):")
    rows = []
    with client.get("/static/patient.css") as css_response:
        css = size(css_response.data)
    start = client.get(f"/s/{token}")
    rows.append(("survey start page (floor)", *size(start.data)))
    for lang in ("en", "es", "ar"):
        page = client.get(f"/tell-us/bench?lang={lang}")
        rows.append((f"feedback form, {lang}", *size(page.data)))
        bad = client.post(f"/tell-us/bench?lang={lang}", data={**fields(page.text), "text": "",
                                                               "email": "x@y", "lang": lang})
        rows.append((f"form with errors, {lang}", *size(bad.data)))
        sent = client.post(f"/tell-us/bench?lang={lang}", data={
            **fields(page.text), "text": "The nurses were kind.", "lang": lang})
        rows.append((f"thank you, {lang}", *size(client.get(sent.headers["Location"]).data)))
    rows.append(("patient.css", *css))
    for name, raw, gz in rows:
        print(f"  {name:32} {raw:7,} {gz:7,}")

    print(f"\ntaking a comment in ({args.comments} each, median and p95 ms):")
    page = client.get("/tell-us/bench")
    get_times, post_times = [], []
    for n in range(args.comments):
        t = time.perf_counter()
        page = client.get("/tell-us/bench")
        get_times.append(time.perf_counter() - t)
        data = {**fields(page.text), "text": COMMENTS[n % len(COMMENTS)] + f" ({n})"}
        t = time.perf_counter()
        r = client.post("/tell-us/bench", data=data)
        post_times.append(time.perf_counter() - t)
        assert r.status_code == 303, r.status_code

    def line(name: str, values: list[float]) -> float:
        ms = sorted(v * 1000 for v in values)
        median = statistics.median(ms)
        print(f"  {name:44} {median:7.2f} {ms[int(len(ms) * 0.95) - 1]:7.2f}")
        return median

    floor = line("GET the form (floor)", get_times)
    post = line("POST a comment (analyse, insert, audit)", post_times)
    print(f"  POST / GET: {post / floor:.1f}x")

    with app.app_context():
        from engage.feedback.analysis import analyse
        from engage.feedback.text.model import default_model

        model = default_model()
        analyse("warm up")
        predict_times, analyse_times = [], []
        for n in range(args.comments):
            text = COMMENTS[n % len(COMMENTS)]
            t = time.perf_counter()
            model.predict([text], [None])
            predict_times.append(time.perf_counter() - t)
            t = time.perf_counter()
            analyse(text, None, "en")
            analyse_times.append(time.perf_counter() - t)
        print("\nanalysis alone:")
        base = line("model.predict, one comment (floor)", predict_times)
        whole = line("analyse(): model, rules in force, PII", analyse_times)
        print(f"  analyse / predict: {whole / base:.1f}x")


if __name__ == "__main__":
    main()
