"""Logging in: throttling and lock-out per login name and per address, the audit of every
attempt, and the second factor (TOTP and recovery codes), by real requests."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyotp
import pytest
from sqlalchemy import select, update

from engage.accounts.login import PENDING_KEY
from engage.accounts.login_models import LoginThrottle, RecoveryCode, SecondFactor
from engage.audit.models import AuditEvent
from engage.core.db import utcnow
from tests.factories import PASSWORD
from tests.helpers import csrf_from, text_of

ROOT = Path(__file__).resolve().parent.parent
LOCKED = "Too many failed attempts"
WRONG = "do not match an active account"


def login(client: Any, email: str, password: str = PASSWORD, address: str = "127.0.0.1",
          next_url: str = "") -> Any:
    env = {"REMOTE_ADDR": address}
    page = client.get("/login", environ_base=env)
    return client.post("/login" + next_url, environ_base=env, data={
        "email": email, "password": password, "csrf_token": csrf_from(page)})


def post_code(client: Any, code: str, url: str = "/login/two-factor",
              address: str = "127.0.0.1") -> Any:
    env = {"REMOTE_ADDR": address}
    page = client.get(url, environ_base=env)
    return client.post(url, environ_base=env,
                       data={"code": code, "csrf_token": csrf_from(page)})


def logged_in(client: Any, address: str = "127.0.0.1") -> bool:
    # Flask-Login's "strong" protection binds the session to the client's address.
    return client.get("/services", environ_base={"REMOTE_ADDR": address}).status_code == 200


def events(db: Any, action: str) -> list[AuditEvent]:
    return list(db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def let_locks_expire(db: Any) -> None:
    """Move time on: every running lock ends now."""
    db.session.execute(update(LoginThrottle).where(LoginThrottle.locked_until.is_not(None))
                       .values(locked_until=utcnow() - timedelta(seconds=1)))
    db.session.commit()


def logout(client: Any, address: str = "127.0.0.1") -> None:
    env = {"REMOTE_ADDR": address}
    page = client.get("/services", environ_base=env)
    client.post("/logout", environ_base=env, data={"csrf_token": csrf_from(page)})


# --- throttling and lock-out -------------------------------------------------------------


def test_the_right_password_is_refused_while_locked_and_accepted_after_the_back_off(
        client, make_user, db):
    user = make_user("staff")
    for n in range(100):
        r = login(client, user.email, "wrong-password")
        assert r.status_code == 200
        if n == 4:
            assert "try again in 1 minute" in text_of(r)
            # However slow the machine, the lock lasts the 95 attempts that follow.
            db.session.execute(update(LoginThrottle).values(
                locked_until=utcnow() + timedelta(minutes=30)))
            db.session.commit()
    assert LOCKED in text_of(r)
    r = login(client, user.email)
    assert r.status_code == 200
    assert LOCKED in text_of(r)
    assert re.search(r"try again in (29|30) minutes", text_of(r))
    assert f'value="{user.email}"' in r.get_data(as_text=True)  # what was typed is kept
    assert not logged_in(client)
    # Attempts refused by the lock were not counted (nor did they stretch it): one lock.
    row = db.session.scalar(select(LoginThrottle).where(LoginThrottle.scope == "account"))
    assert (row.locks, row.failures) == (1, 0)
    assert [e.detail["reason"] for e in events(db, "login-failed")].count("locked") == 96

    let_locks_expire(db)
    r = login(client, user.email)
    assert r.status_code == 302
    assert logged_in(client)
    # A success clears the name's failures and lock history.
    assert db.session.scalar(
        select(LoginThrottle).where(LoginThrottle.scope == "account")) is None


def test_each_lock_lasts_twice_as_long_up_to_an_hour(client, make_user, db):
    user = make_user("staff")
    lengths = []
    for _ in range(8):
        for _ in range(5):
            login(client, user.email, "wrong-password")
        row = db.session.scalar(select(LoginThrottle).where(LoginThrottle.scope == "account"))
        lengths.append(round((row.locked_until - utcnow()).total_seconds() / 60))
        let_locks_expire(db)
    assert lengths == [1, 2, 4, 8, 16, 32, 60, 60]


def test_a_name_no_account_has_locks_the_same_way(client, make_user):
    """Otherwise the lock-out message would tell a guesser which names are accounts."""
    for _ in range(4):
        assert WRONG in text_of(login(client, "nobody@hospital.test", "guess-password"))
    assert LOCKED in text_of(login(client, "nobody@hospital.test", "guess-password"))


def test_one_users_typos_do_not_lock_out_others_on_the_same_address(client, make_user):
    """A ward behind one hospital address: one nurse locks only their own account."""
    clumsy, colleague = make_user("staff"), make_user("staff")
    for _ in range(40):
        login(client, clumsy.email, "wrong-password", address="10.1.1.1")
    assert LOCKED in text_of(login(client, clumsy.email, address="10.1.1.1"))
    r = login(client, colleague.email, address="10.1.1.1")
    assert r.status_code == 302
    assert logged_in(client, "10.1.1.1")


def test_guessing_many_accounts_from_one_address_throttles_that_address(
        client, make_user, db):
    victim = make_user("staff")
    for n in range(20):  # password spraying: one guess at each of 20 names
        login(client, f"name{n}@hospital.test", "Summer2026!", address="10.6.6.6")
    # The address now waits, even with a right password...
    r = login(client, victim.email, address="10.6.6.6")
    assert LOCKED in text_of(r)
    assert not logged_in(client)
    lock = events(db, "lock")[-1]
    assert lock.object_type == "client" and lock.detail["address"] == "10.6.6.6"
    # ... but no one else does.
    assert login(client, victim.email, address="10.7.7.7").status_code == 302


def test_an_address_forgets_a_name_that_then_logs_in(client, make_user):
    """Typos followed by the right password do not count towards the address's limit."""
    users = [make_user("staff") for _ in range(25)]
    for user in users:
        login(client, user.email, "wrong-password", address="10.2.2.2")
        assert login(client, user.email, address="10.2.2.2").status_code == 302
        logout(client, "10.2.2.2")
    assert login(client, users[0].email, address="10.2.2.2").status_code == 302


def test_an_admin_unlocks_an_account_from_the_command_line(client, make_user, runner, db):
    user = make_user("staff")
    for _ in range(5):
        login(client, user.email, "wrong-password")
    assert LOCKED in text_of(login(client, user.email))
    result = runner.invoke(args=["users", "unlock", user.email.upper()])
    assert result.exit_code == 0, result.output
    assert "Unlocked" in result.output
    assert events(db, "unlock")[-1].object_id == user.id
    assert login(client, user.email).status_code == 302


def test_unlock_names_an_unknown_user_clearly(runner):
    result = runner.invoke(args=["users", "unlock", "nobody@hospital.test"])
    assert result.exit_code != 0
    assert "no user" in result.output


def test_a_nul_byte_in_the_email_is_a_failed_login_not_an_error(client, make_user):
    r = login(client, "a\x00b@hospital.test", "wrong-password")
    assert r.status_code in (200, 400)


def test_an_attacker_cannot_lock_out_a_browser_that_logged_in_before(app, client, make_user):
    """The account's and the address's locks do not apply to a browser that has logged in
    to the account before: a guesser elsewhere cannot keep its real user out."""
    user = make_user("staff")
    assert login(client, user.email, address="10.4.4.4").status_code == 302
    logout(client, "10.4.4.4")
    attacker = app.test_client()
    for _ in range(5):
        login(attacker, user.email, "guess-password", address="10.5.5.5")
    assert LOCKED in text_of(login(attacker, user.email, address="10.5.5.5"))
    # The same address, but a browser without the cookie: locked too.
    assert LOCKED in text_of(login(app.test_client(), user.email, address="10.4.4.4"))
    r = login(client, user.email, address="10.4.4.4")
    assert r.status_code == 302
    assert logged_in(client, "10.4.4.4")


def test_guessing_from_the_hospital_address_does_not_stop_its_known_browsers(
        app, client, make_user):
    nurse = make_user("staff")
    assert login(client, nurse.email, address="10.8.8.8").status_code == 302
    logout(client, "10.8.8.8")
    sprayer = app.test_client()
    for n in range(20):
        login(sprayer, f"name{n}@hospital.test", "Summer2026!", address="10.8.8.8")
    assert LOCKED in text_of(login(sprayer, nurse.email, address="10.8.8.8"))
    assert login(client, nurse.email, address="10.8.8.8").status_code == 302


def test_a_known_browser_still_locks_after_its_own_wrong_passwords(client, make_user, db):
    user = make_user("staff")
    assert login(client, user.email).status_code == 302
    logout(client)
    for _ in range(4):
        assert WRONG in text_of(login(client, user.email, "wrong-password"))
    assert LOCKED in text_of(login(client, user.email, "wrong-password"))
    assert LOCKED in text_of(login(client, user.email))
    assert events(db, "lock")[-1].detail["scope"] == "pair"


# --- the audit of logins ------------------------------------------------------------------


def test_failed_logins_lock_outs_and_logins_are_audited(client, make_user, db):
    user = make_user("staff")
    login(client, "Nobody@Hospital.test", "my-secret-guess", address="10.3.3.3")
    unknown = events(db, "login-failed")[-1]
    assert unknown.object_id is None and unknown.ip == "10.3.3.3"
    assert len(unknown.detail["name_hash"]) == 64
    assert "nobody" not in str(unknown.detail).lower()  # the name typed is not kept

    for _ in range(5):
        login(client, user.email, "wrong-password", address="10.3.3.3")
    failed = events(db, "login-failed")
    assert [e.object_id for e in failed[1:]] == [user.id] * 5
    assert {e.detail["reason"] for e in failed[1:]} == {"password"}
    lock = events(db, "lock")[-1]
    assert (lock.object_type, lock.object_id, lock.detail["minutes"]) == ("user", user.id, 1)
    login(client, user.email, address="10.3.3.3")
    assert events(db, "login-failed")[-1].detail["reason"] == "locked"

    let_locks_expire(db)
    login(client, user.email, address="10.3.3.3")
    ok = events(db, "login")[-1]
    assert (ok.object_id, ok.user_id, ok.ip) == (user.id, user.id, "10.3.3.3")
    # No password typed is stored anywhere in the audit log.
    every = " ".join(str(e.detail) for e in db.session.scalars(select(AuditEvent)))
    assert "wrong-password" not in every and "my-secret-guess" not in every
    assert PASSWORD not in every


# --- the second factor --------------------------------------------------------------------


def set_up_factor(client: Any, url: str = "/account/two-factor/setup"
                  ) -> tuple[pyotp.TOTP, list[str], Any]:
    """Set up an authenticator on ``url`` with a real code; (totp, recovery codes, page)."""
    page = client.get(url)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'src="data:image/svg+xml' in html  # the QR code, as an image the CSP allows
    secret = re.search(r'<code class="link" dir="ltr">([A-Z2-7 ]+)</code>', html)
    assert secret
    totp = pyotp.TOTP(secret.group(1).replace(" ", ""))
    action = re.search(r'<form method="post" action="([^"]+)"', html)
    assert action and action.group(1) == url  # the form posts back to where it was shown
    r = client.post(url, data={"code": totp.now(), "csrf_token": csrf_from(page)})
    assert r.status_code == 200, r.status_code
    codes = re.findall(r"<li><code>([a-z0-9-]+)</code></li>", r.get_data(as_text=True))
    assert len(codes) == 10
    return totp, codes, r


def next_code(totp: pyotp.TOTP, db: Any, user: Any) -> str:
    """A code not used yet: the clock moves on by forgetting the last step used."""
    db.session.execute(update(SecondFactor).where(SecondFactor.user_id == user.id)
                       .values(last_step=None))
    db.session.commit()
    return totp.now()


@pytest.fixture
def with_factor(client, auth, make_user, db):
    user = make_user("staff")
    auth.login(user.email)
    totp, codes, _ = set_up_factor(client)
    logout(client)
    return user, totp, codes


def test_setting_up_a_factor_then_logging_in_needs_the_code(client, with_factor, db):
    user, totp, codes = with_factor
    assert events(db, "2fa-enabled")[-1].object_id == user.id
    stored = db.session.get(SecondFactor, user.id)
    assert stored is not None
    hashes = list(db.session.scalars(select(RecoveryCode.code_hash)))
    assert len(hashes) == 10 and not any(c.replace("-", "") in hashes for c in codes)

    r = login(client, user.email, next_url="?next=/alerts")
    assert r.headers["Location"] == "/login/two-factor"
    assert not logged_in(client)  # the password alone logs no one in
    r = post_code(client, "000000")
    assert r.status_code == 200
    assert "That code is not right" in text_of(r)
    assert events(db, "2fa-failed")[-1].object_id == user.id
    assert not logged_in(client)

    r = post_code(client, next_code(totp, db, user))
    assert r.status_code == 302 and r.headers["Location"] == "/alerts"
    assert logged_in(client)
    assert events(db, "login")[-1].detail == {"factor": "totp"}


def test_a_code_cannot_be_used_twice(client, with_factor, db):
    user, totp, _ = with_factor
    code = next_code(totp, db, user)
    login(client, user.email)
    assert post_code(client, code).status_code == 302
    logout(client)
    login(client, user.email)
    r = post_code(client, code)  # the same code, still inside its 30 seconds
    assert "That code is not right" in text_of(r)
    assert not logged_in(client)


def test_a_recovery_code_works_once(client, with_factor, db):
    user, _, codes = with_factor
    login(client, user.email)
    r = post_code(client, codes[3].upper().replace("-", " "))  # typed loosely
    assert r.status_code == 302
    assert logged_in(client)
    assert events(db, "recovery-code-used")[-1].detail == {"left": 9}
    assert events(db, "login")[-1].detail == {"factor": "recovery"}
    logout(client)
    login(client, user.email)
    assert "That code is not right" in text_of(post_code(client, codes[3]))
    assert not logged_in(client)


def test_wrong_codes_count_towards_the_lock(client, with_factor, db):
    user, totp, _ = with_factor
    login(client, user.email)
    for _ in range(4):
        post_code(client, "123456")
    r = post_code(client, "654321")
    assert r.status_code == 302 and r.headers["Location"] == "/login"
    assert LOCKED in text_of(client.get("/login"))
    assert LOCKED in text_of(login(client, user.email))
    assert events(db, "lock")[-1].object_id == user.id


def test_the_code_step_ends_after_five_minutes(client, with_factor, db):
    user, totp, _ = with_factor
    login(client, user.email)
    page = client.get("/login/two-factor")
    with client.session_transaction() as session:
        session[PENDING_KEY] = {**session[PENDING_KEY], "at": int(time.time()) - 301}
    r = client.post("/login/two-factor", data={"code": next_code(totp, db, user),
                                               "csrf_token": csrf_from(page)})
    assert r.status_code == 302 and r.headers["Location"] == "/login"
    assert "time to enter the code ran out" in text_of(client.get("/login"))
    assert not logged_in(client)


def test_the_code_page_without_a_password_sends_to_log_in(client):
    r = client.get("/login/two-factor")
    assert r.status_code == 302 and r.headers["Location"] == "/login"


def test_new_recovery_codes_replace_the_old(client, with_factor, db):
    user, totp, codes = with_factor
    login(client, user.email)
    post_code(client, codes[0])
    r = post_code(client, "111111", url="/account/two-factor/recovery-codes")
    assert "That code is not right" in text_of(r)
    page = client.get("/account/two-factor/recovery-codes")
    r = client.post("/account/two-factor/recovery-codes",
                    data={"code": next_code(totp, db, user), "csrf_token": csrf_from(page)})
    fresh = re.findall(r"<li><code>([a-z0-9-]+)</code></li>", r.get_data(as_text=True))
    assert len(fresh) == 10 and not set(fresh) & set(codes)
    logout(client)
    login(client, user.email)
    assert "That code is not right" in text_of(post_code(client, codes[1]))
    assert post_code(client, fresh[0]).status_code == 302


def test_turning_the_factor_off_needs_a_code(client, with_factor, db):
    user, totp, _ = with_factor
    login(client, user.email)
    post_code(client, next_code(totp, db, user))
    r = post_code(client, "999999", url="/account/two-factor/disable")
    assert "That code is not right" in text_of(r)
    assert db.session.get(SecondFactor, user.id) is not None
    r = post_code(client, next_code(totp, db, user), url="/account/two-factor/disable")
    assert r.status_code == 302
    db.session.expire_all()
    assert db.session.get(SecondFactor, user.id) is None
    assert events(db, "2fa-disabled")[-1].object_id == user.id
    logout(client)
    assert login(client, user.email).status_code == 302
    assert logged_in(client)


@pytest.fixture
def admins_need_2fa(app):
    old = app.config["REQUIRE_2FA_ROLES"]
    app.config["REQUIRE_2FA_ROLES"] = ("admin",)
    yield
    app.config["REQUIRE_2FA_ROLES"] = old


def test_a_role_that_requires_2fa_sets_it_up_before_anything_else(
        client, make_user, admins_need_2fa, db):
    admin = make_user("admin")
    r = login(client, admin.email, next_url="?next=/alerts")
    assert r.headers["Location"] == "/login/two-factor/setup"
    assert not logged_in(client)
    assert "Your role must log in with a second factor" in text_of(
        client.get("/login/two-factor/setup"))
    totp, codes, page = set_up_factor(client, "/login/two-factor/setup")
    assert 'href="/alerts"' in page.get_data(as_text=True)  # continue where they meant to
    assert logged_in(client)
    # The role cannot turn it off.
    r = client.get("/account/two-factor/disable")
    assert r.status_code == 302
    assert db.session.get(SecondFactor, admin.id) is not None


def test_a_logged_in_user_of_a_role_that_requires_2fa_is_sent_to_set_it_up(
        app, client, make_user, db):
    admin = make_user("admin")
    assert login(client, admin.email).status_code == 302
    assert logged_in(client)
    old = app.config["REQUIRE_2FA_ROLES"]
    app.config["REQUIRE_2FA_ROLES"] = ("admin",)  # turned on while they were logged in
    try:
        r = client.get("/services")
        assert r.status_code == 302 and r.headers["Location"] == "/account/two-factor/setup"
        set_up_factor(client)
        assert logged_in(client)
    finally:
        app.config["REQUIRE_2FA_ROLES"] = old


def test_an_admin_resets_a_lost_factor_from_the_command_line(
        client, with_factor, runner, db):
    user, _, _ = with_factor
    result = runner.invoke(args=["users", "reset-2fa", user.email, "--yes"])
    assert result.exit_code == 0, result.output
    db.session.expire_all()
    assert db.session.get(SecondFactor, user.id) is None
    assert db.session.scalar(select(RecoveryCode)) is None
    assert events(db, "2fa-reset")[-1].object_id == user.id
    assert login(client, user.email).status_code == 302
    assert logged_in(client)


def test_production_requires_2fa_for_admins_by_default():
    """Read in a fresh interpreter, as the settings are read at import."""
    probe = ("import config; print(config.Config.REQUIRE_2FA_ROLES, "
             "config.DevelopmentConfig.REQUIRE_2FA_ROLES, config.TestConfig.REQUIRE_2FA_ROLES)")
    env = {k: v for k, v in os.environ.items() if k != "ENGAGE_REQUIRE_2FA_ROLES"}
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True,
                         text=True, check=True, cwd=ROOT).stdout
    assert out.strip() == "('admin',) () ()"
    env["ENGAGE_REQUIRE_2FA_ROLES"] = "admin, safeguarding"
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True,
                         text=True, check=True, cwd=ROOT).stdout
    assert out.strip().startswith("('admin', 'safeguarding')")


def test_the_purge_job_forgets_old_failures_but_keeps_running_locks(client, make_user, db):
    from engage.accounts.throttle import purge

    user = make_user("staff")
    for _ in range(5):
        login(client, user.email, "wrong-password", address="10.9.0.1")
    login(client, "other@hospital.test", "wrong-password", address="10.9.0.1")
    db.session.execute(update(LoginThrottle).values(
        last_failure_at=utcnow() - timedelta(days=2)))
    db.session.commit()
    removed = purge()
    db.session.commit()
    left = list(db.session.scalars(select(LoginThrottle)))
    assert removed >= 3
    assert [(r.scope, r.locks) for r in left] == [("account", 1)]  # still locked


def test_setting_up_at_login_may_take_fifteen_minutes_not_more(
        client, make_user, admins_need_2fa):
    admin = make_user("admin")
    login(client, admin.email)
    with client.session_transaction() as session:
        session[PENDING_KEY] = {**session[PENDING_KEY], "at": int(time.time()) - 600}
    assert client.get("/login/two-factor/setup").status_code == 200
    with client.session_transaction() as session:
        session[PENDING_KEY] = {**session[PENDING_KEY], "at": int(time.time()) - 901}
    r = client.get("/login/two-factor/setup")
    assert r.status_code == 302 and r.headers["Location"] == "/login"
    assert not logged_in(client)


def test_an_admin_lifts_a_lock_and_removes_a_lost_factor_from_the_staff_page(
    app, client, with_factor, make_user, db
):
    """The staff page shows the lock and the factor, and the two confirmed actions undo them."""
    user, totp, _codes = with_factor
    other = app.test_client()
    for _ in range(5):
        login(other, user.email, "wrong-password-here", address="10.0.0.9")
    admin = make_user("admin")
    assert login(client, admin.email).status_code == 302
    page = client.get(f"/staff/{user.id}").get_data(as_text=True)
    assert "Locked after failed attempts" in page and "Second factor" in page
    confirm = client.get(f"/staff/{user.id}/unlock")
    r = client.post(f"/staff/{user.id}/unlock",
                    data={"csrf_token": csrf_from(confirm), "confirm": "yes"})
    assert r.status_code == 302
    assert "Locked after failed attempts" not in client.get(f"/staff/{user.id}").get_data(
        as_text=True)
    assert events(db, "unlock")[-1].object_id == user.id
    confirm = client.get(f"/staff/{user.id}/reset-second-factor")
    r = client.post(f"/staff/{user.id}/reset-second-factor",
                    data={"csrf_token": csrf_from(confirm), "confirm": "yes"})
    assert r.status_code == 302
    assert db.session.get(SecondFactor, user.id) is None
    assert events(db, "2fa-reset")[-1].object_id == user.id
    # with the lock lifted and the factor gone, the password alone logs them in
    assert login(other, user.email, address="10.0.0.9").status_code == 302


def test_setting_up_and_removing_a_factor_is_told_to_its_owner_by_email(
    client, auth, make_user, smtp, db
):
    user = make_user("staff")
    auth.login(user.email)
    _totp, _codes, done = set_up_factor(client)
    done.close()  # the email goes once the response is out
    assert [m["To"] for m in smtp.messages] == [user.email]
    assert "authenticator app was set up" in smtp.messages[0].get_content()
    admin = make_user("admin")
    admin_client = client.application.test_client()
    assert login(admin_client, admin.email).status_code == 302
    confirm = admin_client.get(f"/staff/{user.id}/reset-second-factor")
    admin_client.post(f"/staff/{user.id}/reset-second-factor",
                      data={"csrf_token": csrf_from(confirm), "confirm": "yes"}).close()
    assert len(smtp.messages) == 2
    assert "second factor of your Engage account was removed" in smtp.messages[1].get_content()


def test_last_login_is_written_only_when_every_factor_was_given(client, with_factor, db):
    user, totp, _codes = with_factor
    db.session.execute(update(type(user)).where(type(user).id == user.id)
                       .values(last_login_at=None))
    db.session.commit()
    assert login(client, user.email).status_code == 302  # to the code page
    db.session.expire_all()
    assert db.session.get(type(user), user.id).last_login_at is None
    assert post_code(client, next_code(totp, db, user)).status_code == 302
    db.session.expire_all()
    assert db.session.get(type(user), user.id).last_login_at is not None
