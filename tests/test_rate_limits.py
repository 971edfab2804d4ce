"""Rate limits (engage/core/limits.py): login, patient links, the public page and the API,
each answered by a friendly page or a problem JSON with Retry-After; counts in memory or
shared through Redis."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from config import TestConfig
from engage.core import limits
from engage.extensions import db as _db
from tests.conftest import IsolatedClient

LOW: dict[str, str | None] = {
       "login": "3/minute", "forgot": "2/minute", "link": "4/minute", "link_failures": "3/minute",
       "unsubscribe": "30/minute", "public_page": "4/minute", "public_send": "2/minute",
       "api_key": "3/minute", "api_failures": "2/minute"}


def build(app: Flask, storage: str = "memory://") -> Flask:
    from engage import create_app

    class Limited(TestConfig):
        SQLALCHEMY_DATABASE_URI = app.config["SQLALCHEMY_DATABASE_URI"]
        RATELIMIT_ENABLED = True
        RATELIMIT_STORAGE_URI = storage
        RATELIMITS = LOW

    limited = create_app(Limited)
    limited.test_client_class = IsolatedClient
    return limited


@pytest.fixture(scope="module")
def limited_app(app: Flask) -> Iterator[Flask]:
    limited = build(app)
    yield limited
    with limited.app_context():
        _db.engine.dispose()


@pytest.fixture
def limited(limited_app: Flask, db: Any) -> Any:
    """A client of an app with (low) limits on; counts start from zero."""
    limits.limiter.init_app(limited_app)  # the limiter is shared: bind it back to this app
    limits.limiter.reset()
    return limited_app.test_client()


def retry_after(response: Any) -> int:
    value = int(response.headers["Retry-After"])
    assert 0 < value <= 61
    return value


def test_every_endpoint_in_the_table_exists(app):
    endpoints = set(app.view_functions)
    for name in limits.LIMITS:
        if name.endswith(".*"):
            assert any(e.startswith(name[:-1]) for e in endpoints), name
        else:
            assert name in endpoints, f"{name} is in LIMITS but is no endpoint"
        for rule in limits.LIMITS[name]:
            assert rule.setting in limits.DEFAULTS


def test_limits_are_off_in_the_ordinary_test_app(app, client):
    for _ in range(8):
        assert client.post("/login", data={}).status_code != 429


def test_logins_from_one_address_get_a_translated_page_with_retry_after(limited):
    for _ in range(3):
        assert limited.post("/login", data={"email": "a@b.test"}).status_code != 429
    r = limited.post("/login", data={"email": "a@b.test"},
                     headers={"Accept-Language": "es"})
    assert r.status_code == 429
    retry_after(r)
    html = r.get_data(as_text=True)
    assert '<html lang="es"' in html
    assert "<script" not in html
    # Another address is not held back by the first one.
    other = limited.post("/login", data={}, environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert other.status_code != 429
    # Reading the login page is not limited.
    assert limited.get("/login").status_code == 200


def test_guessing_patient_links_is_stopped_but_a_good_link_is_not_counted(
    limited, make_invitation,
):
    _invitation, token = make_invitation("phq-9")
    for _ in range(3):  # a family answering on one address: good requests count nothing
        assert limited.get(f"/s/{token}").status_code == 200
    for n in range(3):
        assert limited.get(f"/s/guess-{n}").status_code == 404
    r = limited.get("/s/guess-again")
    assert r.status_code == 429
    retry_after(r)
    html = r.get_data(as_text=True)
    assert "patient.css" in html and "staff.css" not in html  # the patient layout
    assert len(html) < 6_000
    # The guesser's address is refused even a real link for the rest of the minute; the
    # patient at home is not.
    assert limited.get(f"/s/{token}").status_code == 429
    home = limited.get(f"/s/{token}", environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert home.status_code == 200


def test_one_link_has_a_ceiling_of_its_own(limited, make_invitation):
    _invitation, token = make_invitation("phq-9")
    statuses = [limited.get(f"/s/{token}", environ_base={"REMOTE_ADDR": f"10.9.0.{n}"})
                .status_code for n in range(5)]
    assert statuses == [200, 200, 200, 200, 429]


def test_forgotten_password_emails_and_guessed_password_links_are_limited(limited):
    for _ in range(2):
        assert limited.post("/password/forgot", data={"email": "a@b.test"}).status_code != 429
    assert limited.post("/password/forgot", data={"email": "a@b.test"}).status_code == 429
    assert limited.get("/password/forgot").status_code == 200  # reading is not limited
    for n in range(3):
        assert limited.get(f"/password/guess-{n}").status_code == 404
    r = limited.get("/password/guess-again")
    assert r.status_code == 429
    retry_after(r)


def test_the_public_page_limits_reading_and_sending_separately(limited, make_service):
    service = make_service()
    url = f"/tell-us/{service.slug}?lang=ar"
    for _ in range(2):
        assert limited.post(url, data={"text": "x"}).status_code == 400  # no form token
    refused = limited.post(url, data={"text": "x"})
    assert refused.status_code == 429
    retry_after(refused)
    assert 'dir="rtl"' in refused.get_data(as_text=True)
    assert limited.get(url).status_code == 200  # reading still works
    for _ in range(3):
        limited.get(url)
    assert limited.get(url).status_code == 429


def test_the_api_is_limited_per_key_and_refused_keys_per_address(limited, make_service):
    from engage.api.services import create_api_key

    service = make_service()
    _row, key = create_api_key("EHR", scope="read", services=[service])
    _db.session.commit()
    good = {"Authorization": f"Bearer {key}"}
    for _ in range(3):
        assert limited.get("/api/v1/protocols", headers=good).status_code == 200
    r = limited.get("/api/v1/protocols", headers=good)
    assert r.status_code == 429
    assert r.mimetype == "application/problem+json"
    assert r.get_json()["status"] == 429
    retry_after(r)
    # Wrong keys from one address: two refusals, then 429 whatever key is tried.
    bad = {"Authorization": "Bearer " + "z" * 40}
    other = {"REMOTE_ADDR": "10.7.7.7"}
    assert limited.get("/api/v1/protocols", headers=bad, environ_base=other).status_code == 401
    assert limited.get("/api/v1/protocols", environ_base=other).status_code == 401
    r = limited.get("/api/v1/protocols", headers=bad, environ_base=other)
    assert r.status_code == 429 and r.mimetype == "application/problem+json"
    assert "Set-Cookie" not in r.headers


def test_a_store_that_is_down_lets_requests_through(app, db, make_service, caplog):
    """Limits are a second line of defence: losing Redis must not turn patients away."""
    down = build(app, "redis://127.0.0.1:1/0")
    try:
        service = make_service()
        client = down.test_client()
        for _ in range(3):
            assert client.get(f"/tell-us/{service.slug}").status_code == 200
            assert client.get("/s/no-such-link").status_code == 404
        assert "rate limit store unavailable" in caplog.text
    finally:
        with down.app_context():
            _db.engine.dispose()
        limits.limiter.init_app(app)


def test_counts_are_shared_through_redis(app, db, make_service):
    """Two apps (two gunicorn workers) on one Redis share their counts."""
    redis = pytest.importorskip("redis")
    url = "redis://127.0.0.1:6379/14"
    try:
        redis.Redis.from_url(url).ping()
    except redis.RedisError:
        pytest.skip("no Redis on 127.0.0.1:6379")
    first, second = build(app, url), build(app, url)
    try:
        limits.limiter.reset()
        service = make_service()
        path = f"/tell-us/{service.slug}"
        assert first.test_client().post(path, data={}).status_code == 400
        assert second.test_client().post(path, data={}).status_code == 400
        r = first.test_client().post(path, data={})
        assert r.status_code == 429
        assert re.fullmatch(r"\d+", r.headers["Retry-After"])
        limits.limiter.reset()
    finally:
        for built in (first, second):
            with built.app_context():
                _db.engine.dispose()
