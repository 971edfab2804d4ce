"""Staff accounts: the admin's staff pages, invitation and reset links, password rules,
server-side sessions (logout, idle timeout, deactivation, password changes) and the CLI."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from engage.accounts.models import AccountToken, User, UserSession
from engage.accounts.passwords import common_passwords, password_problem
from engage.accounts.services import AccountError, create_user
from engage.audit.models import AuditEvent
from engage.core.db import utcnow
from engage.survey.services import save_answers, start_response, submit
from tests.factories import PASSWORD
from tests.helpers import csrf_from, text_of

NEW_PASSWORD = "lantern-otter-quarry-9"
COMMON = "password1234"  # on the shipped list, and long enough to pass the length rule
LINK = re.compile(r"http://engage\.test(/password/[A-Za-z0-9_-]+)")


@pytest.fixture
def new_client(app: Any) -> Any:
    """Another browser: a client with its own cookies."""
    def make() -> Any:
        return app.test_client()
    return make


def login(client: Any, email: str, password: str = PASSWORD) -> Any:
    page = client.get("/login")
    return client.post("/login", data={"email": email, "password": password,
                                       "csrf_token": csrf_from(page)})


def post_form(client: Any, url: str, data: dict[str, Any], page_url: str | None = None) -> Any:
    """Open the page (for its CSRF token), then post ``data`` to ``url``."""
    page = client.get(page_url or url)
    return client.post(url, data={**data, "csrf_token": csrf_from(page)})


def events(db: Any, action: str, object_id: int | None = None) -> list[AuditEvent]:
    query = select(AuditEvent).where(AuditEvent.action == action)
    if object_id is not None:
        query = query.where(AuditEvent.object_id == object_id)
    return list(db.session.scalars(query.order_by(AuditEvent.id)))


def link_from(message: Any) -> str:
    found = LINK.search(message.get_body(("plain",)).get_content())
    assert found, "no link in the email"
    return found.group(1)


def patient_page(make_invitation: Any, service: Any) -> str:
    invitation, _ = make_invitation("phq-9", service=service)
    response = start_response(invitation)
    save_answers(response, {f"phq9-{n}": 1 for n in range(1, 10)})
    submit(response)
    return f"/patients/{invitation.patient_id}"


# -- the staff pages ---------------------------------------------------------------------


def test_staff_pages_are_for_admins_only(client, auth, make_user):
    staff = make_user("staff")
    auth.login(staff.email)
    assert client.get("/staff").status_code == 403
    assert client.get(f"/staff/{staff.id}").status_code == 403
    assert client.get("/staff/invite").status_code == 403
    r = client.post(f"/staff/{staff.id}/deactivate", data={"confirm": "yes"})
    assert r.status_code == 403


def test_staff_list_shows_roles_services_status_and_last_login(
    client, auth, make_user, make_service, db
):
    ward = make_service(name="Ward Seven")
    admin = make_user("admin", name="Ada Admin")
    nurse = make_user("staff", name="Nina Nurse", services=[ward])
    gone = make_user("clinician", name="Gus Gone")
    gone.active = False
    db.session.commit()
    auth.login(admin.email)
    page = text_of(client.get("/staff"))
    assert "Nina Nurse" in page and "Ward Seven" in page and "Deactivated" in page
    assert "Never" in page  # Nina has not logged in
    # filters
    only_ward = text_of(client.get(f"/staff?service={ward.id}"))
    assert "Nina Nurse" in only_ward and "Ada Admin" not in only_ward
    inactive = text_of(client.get("/staff?status=deactivated"))
    assert "Gus Gone" in inactive and "Nina Nurse" not in inactive
    clinicians = text_of(client.get("/staff?role=clinician"))
    assert "Gus Gone" in clinicians and "Nina Nurse" not in clinicians
    assert nurse.email in text_of(client.get(f"/staff/{nurse.id}"))


def test_invitation_email_link_sets_up_the_account_once(
    client, auth, make_user, make_service, smtp, db, new_client
):
    ward = make_service()
    admin = make_user("admin")
    auth.login(admin.email)
    page = client.get("/staff/invite")
    r = client.post("/staff/invite", data={
        "csrf_token": csrf_from(page), "email": "New.Person@Hospital.test", "name": "Nell New",
        "role": "clinician", "services": [str(ward.id)], "language": "es"})
    assert r.status_code == 302
    assert smtp.messages == []  # sent once the response is out
    r.close()
    assert len(smtp.messages) == 1
    msg = smtp.messages[0]
    assert msg["To"] == "new.person@hospital.test"
    # only the link: no role, service or name
    body = msg.get_body(("plain",)).get_content()
    for secret in ("clinician", ward.name, "Nell"):
        assert secret not in body and secret not in msg["Subject"]
    user = db.session.scalar(select(User).where(User.email == "new.person@hospital.test"))
    assert user is not None and not user.active and user.role == "clinician"
    assert [s.id for s in user.services] == [ward.id] and user.language == "es"
    token_row = db.session.scalar(select(AccountToken).where(AccountToken.user_id == user.id))
    link = link_from(msg)
    assert link.rsplit("/", 1)[1] not in token_row.token_hash  # only the hash is kept
    assert events(db, "invite", user.id)[0].detail["fields"]

    invitee = new_client()
    assert login(invitee, user.email, NEW_PASSWORD).status_code == 200  # not yet
    assert invitee.get(link).status_code == 200
    # a common password is refused, and the page says why
    r = post_form(invitee, link, {"password": COMMON, "confirm": COMMON})
    assert r.status_code == 400 and "too common" in text_of(r)
    r = post_form(invitee, link, {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert r.status_code == 302 and r.headers["Location"].endswith("/login")
    db.session.refresh(user)
    assert user.active and user.password_changed_at is not None
    assert login(invitee, user.email, NEW_PASSWORD).status_code == 302
    # single use
    again = new_client()
    r = again.get(link)
    assert r.status_code == 404 and "no longer works" in text_of(r)
    assert events(db, "set-password", user.id)


def test_invitation_link_expires(client, auth, make_user, smtp, db, new_client):
    admin = make_user("admin")
    auth.login(admin.email)
    r = post_form(client, "/staff/invite", {"email": "late@hospital.test", "name": "Lee Late",
                                            "role": "staff", "language": ""})
    r.close()
    link = link_from(smtp.messages[0])
    row = db.session.scalar(select(AccountToken))
    assert row.expires_at - utcnow() > timedelta(hours=71)  # ENGAGE_INVITE_HOURS, 72
    row.expires_at = utcnow() - timedelta(minutes=1)
    db.session.commit()
    invitee = new_client()
    assert invitee.get(link).status_code == 404
    r = post_form(invitee, link, {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
                  page_url="/login")
    assert r.status_code == 404


def test_invite_form_keeps_what_was_typed_and_names_the_problem(client, auth, make_user):
    admin = make_user("admin")
    taken = make_user("staff")
    auth.login(admin.email)
    r = post_form(client, "/staff/invite", {"email": taken.email, "name": "Pat Typed",
                                            "role": "staff", "language": ""})
    assert r.status_code == 400
    assert "already an account" in text_of(r)
    assert 'value="Pat Typed"' in r.get_data(as_text=True)
    r = post_form(client, "/staff/invite", {"email": "not-an-email", "name": "Pat Typed",
                                            "role": "staff", "language": ""})
    assert r.status_code == 400 and "Enter an email address" in text_of(r)


def test_admin_edits_role_services_and_language_audited(
    client, auth, make_user, make_service, db
):
    ward = make_service()
    admin = make_user("admin")
    nurse = make_user("staff", name="Nina Nurse")
    auth.login(admin.email)
    r = post_form(client, f"/staff/{nurse.id}", {
        "name": "Nina Nurse", "role": "clinician", "services": [str(ward.id)], "language": "ar"})
    assert r.status_code == 302
    db.session.refresh(nurse)
    assert nurse.role == "clinician" and nurse.language == "ar"
    assert [s.id for s in nurse.services] == [ward.id]
    (event,) = events(db, "update", nurse.id)
    assert set(event.detail["fields"]) == {"role", "services", "language"}


def test_last_active_admin_cannot_be_removed(client, auth, make_user, db):
    admin = make_user("admin")
    auth.login(admin.email)
    # not themselves ...
    r = post_form(client, f"/staff/{admin.id}/deactivate", {"confirm": "yes"})
    assert r.status_code == 400 and "your own account" in text_of(r)
    # ... nor the last admin's role
    r = post_form(client, f"/staff/{admin.id}", {"name": "A", "role": "staff", "language": ""})
    assert r.status_code == 400 and "only active admin" in text_of(r)
    db.session.refresh(admin)
    assert admin.active and admin.role == "admin"
    # with a second admin, the first may step down
    make_user("admin")
    r = post_form(client, f"/staff/{admin.id}", {"name": "A", "role": "staff", "language": ""})
    assert r.status_code == 302


def test_deactivation_ends_the_users_sessions_at_once(
    client, auth, make_user, make_service, make_invitation, db, new_client
):
    ward = make_service()
    admin = make_user("admin")
    nurse = make_user("staff", services=[ward])
    url = patient_page(make_invitation, ward)
    db.session.commit()
    browser = new_client()
    assert login(browser, nurse.email).status_code == 302
    assert browser.get(url).status_code == 200
    auth.login(admin.email)
    confirm = client.get(f"/staff/{nurse.id}/deactivate")
    assert "logged out at once" in text_of(confirm)
    r = client.post(f"/staff/{nurse.id}/deactivate",
                    data={"csrf_token": csrf_from(confirm), "confirm": "yes"})
    assert r.status_code == 302
    r = browser.get(url)
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    rows = db.session.scalars(select(UserSession).where(UserSession.user_id == nurse.id)).all()
    assert [row.ended_reason for row in rows] == ["deactivated"]
    (event,) = events(db, "deactivate", nurse.id)
    assert event.detail["sessions_ended"] == 1
    assert login(browser, nurse.email).status_code == 200  # cannot log in again
    # reactivated: the same password works again
    r = post_form(client, f"/staff/{nurse.id}/reactivate", {"confirm": "yes"})
    assert r.status_code == 302
    assert login(browser, nurse.email).status_code == 302
    assert events(db, "reactivate", nurse.id)


# -- sessions ------------------------------------------------------------------------------


def test_a_cookie_replayed_after_logout_is_refused(
    client, auth, make_user, make_service, make_invitation, db, new_client
):
    ward = make_service()
    nurse = make_user("staff", services=[ward])
    url = patient_page(make_invitation, ward)
    db.session.commit()
    auth.login(nurse.email)
    assert client.get(url).status_code == 200
    cookie = client.get_cookie("engage_session").value
    page = client.get("/services")
    assert client.post("/logout", data={"csrf_token": csrf_from(page)}).status_code == 302
    thief = new_client()
    thief.set_cookie("engage_session", cookie)
    r = thief.get(url)
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    (row,) = db.session.scalars(select(UserSession)).all()
    assert row.ended_reason == "logout"
    assert events(db, "logout", nurse.id)


def test_the_session_cookie_carries_a_token_the_database_keeps_only_hashed(
    client, auth, make_user, db
):
    from flask.sessions import SecureCookieSessionInterface

    user = make_user("staff")
    auth.login(user.email)
    cookie = client.get_cookie("engage_session").value
    serializer = SecureCookieSessionInterface().get_signing_serializer(client.application)
    token = serializer.loads(cookie)["_engage_sid"]
    (row,) = db.session.scalars(select(UserSession)).all()
    assert token not in row.token_hash and len(token) >= 40


def test_idle_session_ends_and_says_why(client, auth, make_user, db):
    user = make_user("staff")
    auth.login(user.email)
    row = db.session.scalar(select(UserSession))
    # 29 minutes idle: still open (ENGAGE_SESSION_IDLE_MINUTES is 30)
    row.last_seen_at = utcnow() - timedelta(minutes=29)
    db.session.commit()
    assert client.get("/services").status_code == 200
    db.session.refresh(row)
    assert utcnow() - row.last_seen_at < timedelta(minutes=1)  # touched
    row.last_seen_at = utcnow() - timedelta(minutes=31)
    db.session.commit()
    r = client.get("/services")
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    assert "without activity" in text_of(client.get(r.headers["Location"]))
    db.session.refresh(row)
    assert row.ended_reason == "idle"
    assert events(db, "session-end", user.id)[0].detail["reason"] == "idle"
    # and it stays ended, even if the clock were turned back
    row.last_seen_at = utcnow()
    db.session.commit()
    assert client.get("/services").status_code == 302


def test_session_older_than_the_absolute_lifetime_ends(client, auth, make_user, db):
    user = make_user("staff")
    auth.login(user.email)
    row = db.session.scalar(select(UserSession))
    row.created_at = utcnow() - timedelta(hours=8, minutes=1)
    db.session.commit()
    assert client.get("/services").status_code == 302
    db.session.refresh(row)
    assert row.ended_reason == "expired"


def test_last_seen_is_written_at_most_once_a_minute(client, auth, make_user, db):
    user = make_user("staff")
    auth.login(user.email)
    row = db.session.scalar(select(UserSession))
    seen = utcnow() - timedelta(seconds=20)
    row.last_seen_at = seen
    db.session.commit()
    client.get("/services")
    db.session.refresh(row)
    assert row.last_seen_at == seen


def test_own_password_change_ends_other_sessions_and_keeps_this_one(
    client, auth, make_user, db, new_client
):
    user = make_user("staff", name="Sam Staff")
    other = new_client()
    assert login(other, user.email).status_code == 302
    auth.login(user.email)
    page = client.get("/account")
    assert page.status_code == 200
    # the wrong current password: refused, nothing changes
    r = client.post("/account/password", data={
        "csrf_token": csrf_from(page), "current_password": "not-my-password",
        "password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert r.status_code == 400 and "not your current password" in text_of(r)
    r = client.post("/account/password", data={
        "csrf_token": csrf_from(page), "current_password": PASSWORD,
        "password": "Sam Staff 2026", "confirm": "Sam Staff 2026"})
    assert r.status_code == 400 and "name or email" in text_of(r)
    assert other.get("/services").status_code == 200
    r = client.post("/account/password", data={
        "csrf_token": csrf_from(page), "current_password": PASSWORD,
        "password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert r.status_code == 302
    assert client.get("/services").status_code == 200          # this session stays
    assert other.get("/services").status_code == 302           # the other one ended
    assert login(new_client(), user.email, NEW_PASSWORD).status_code == 302
    assert login(new_client(), user.email, PASSWORD).status_code == 200


def test_account_page_lists_sessions_and_ends_another(client, auth, make_user, db, new_client):
    user = make_user("council")
    other = new_client()
    other.environ_base["HTTP_USER_AGENT"] = "PhoneBrowser/1.0"
    login(other, user.email)
    auth.login(user.email)
    page = client.get("/account")
    assert "PhoneBrowser/1.0" in text_of(page) and "This session" in text_of(page)
    mine = db.session.scalars(select(UserSession).order_by(UserSession.id)).all()
    theirs = mine[0]
    r = client.post(f"/account/sessions/{theirs.id}/end", data={"csrf_token": csrf_from(page)})
    assert r.status_code == 302
    assert other.get("/account").status_code == 302
    assert client.get("/account").status_code == 200
    # someone else's session is not found
    stranger = make_user("staff")
    login(new_client(), stranger.email)
    theirs = db.session.scalar(select(UserSession).where(UserSession.user_id == stranger.id))
    r = client.post(f"/account/sessions/{theirs.id}/end", data={"csrf_token": csrf_from(page)})
    assert r.status_code == 404


def test_own_language_is_saved(client, auth, make_user, db):
    user = make_user("staff")
    auth.login(user.email)
    r = post_form(client, "/account/language", {"language": "es"}, page_url="/account")
    assert r.status_code == 302
    db.session.refresh(user)
    assert user.language == "es"
    r = post_form(client, "/account/language", {"language": "xx"}, page_url="/account")
    assert r.status_code == 400


# -- resets ----------------------------------------------------------------------------------


def test_admin_reset_link_sets_a_new_password_and_ends_every_session(
    client, auth, make_user, smtp, db, new_client
):
    admin = make_user("admin")
    nurse = make_user("staff", language="es")
    browser = new_client()
    login(browser, nurse.email)
    auth.login(admin.email)
    r = post_form(client, f"/staff/{nurse.id}/reset-password", {"confirm": "yes"})
    assert r.status_code == 302
    r.close()
    (msg,) = smtp.messages
    assert msg["To"] == nurse.email
    link = link_from(msg)
    assert browser.get("/services").status_code == 200  # the old password still works ...
    fresh = new_client()
    r = post_form(fresh, link, {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert r.status_code == 302
    assert browser.get("/services").status_code == 302  # ... until the link is used
    assert login(new_client(), nurse.email, NEW_PASSWORD).status_code == 302
    assert new_client().get(link).status_code == 404
    assert events(db, "reset-password", nurse.id) and events(db, "set-password", nurse.id)


def test_reset_link_expires_after_two_hours(client, auth, make_user, smtp, db, new_client):
    admin = make_user("admin")
    nurse = make_user("staff")
    auth.login(admin.email)
    post_form(client, f"/staff/{nurse.id}/reset-password", {"confirm": "yes"}).close()
    link = link_from(smtp.messages[0])
    row = db.session.scalar(select(AccountToken))
    assert timedelta(hours=1, minutes=59) < row.expires_at - utcnow() <= timedelta(hours=2)
    row.expires_at = utcnow()
    db.session.commit()
    assert new_client().get(link).status_code == 404


def test_forgot_password_answers_the_same_for_any_address(client, make_user, smtp, db):
    user = make_user("staff")
    gone = make_user("staff")
    gone.active = False
    db.session.commit()
    answers = []
    for email in (user.email, "nobody@hospital.test", gone.email):
        r = post_form(client, "/password/forgot", {"email": email})
        assert r.status_code == 200
        r.close()
        answers.append(text_of(r))
    assert answers[0] == answers[1] == answers[2]
    assert [m["To"] for m in smtp.messages] == [user.email]
    # asking again at once sends nothing more (no mailbox flooding)
    post_form(client, "/password/forgot", {"email": user.email}).close()
    assert len(smtp.messages) == 1
    assert "/password/" in smtp.messages[0].get_body(("plain",)).get_content()


def test_the_login_page_links_to_forgot_password(client):
    assert 'href="/password/forgot"' in client.get("/login").get_data(as_text=True)


# -- password rules ------------------------------------------------------------------------


def test_password_rules(app):
    with app.test_request_context():
        assert len(common_passwords()) > 19000
        assert password_problem("short") is not None
        assert password_problem("x" * 129) is not None
        assert password_problem("PassWord1234") is not None        # common, any case
        assert password_problem("qwertyuiop") is not None
        assert password_problem("jane.doe2024", email="jane.doe@hospital.test") is not None
        assert password_problem("Gareth Jones 1", name="Gareth Jones") is not None
        assert password_problem("gareth-jones", name="Gareth Jones") is not None
        # a word of the name inside a longer passphrase is allowed (Django's measure)
        assert password_problem("engage-demo-admin", email="admin@engage.demo",
                                name="Ada Admin") is None
        assert password_problem(NEW_PASSWORD, email="jane@hospital.test", name="Jane") is None


def test_common_password_refused_by_create_user(db):
    with pytest.raises(AccountError, match="too common"):
        create_user("x@hospital.test", "staff", COMMON)


def test_common_password_refused_by_the_cli(runner, db):
    result = runner.invoke(args=["users", "create", "y@hospital.test", "--role", "staff",
                                 "--password", "Password1234"])
    assert result.exit_code == 2 and "too common" in result.output


# -- the CLI -----------------------------------------------------------------------------------


def test_cli_lists_users(runner, make_user, make_service):
    ward = make_service(slug="ward-7")
    make_user("clinician", services=[ward], name="Cleo Clin", email="cleo@hospital.test")
    result = runner.invoke(args=["users", "list"])
    assert result.exit_code == 0
    line = next(x for x in result.output.splitlines() if x.startswith("cleo@hospital.test"))
    assert "Cleo Clin" in line and "clinician" in line and "ward-7" in line
    assert "active" in line and "never" in line


def test_cli_set_role_deactivate_and_reactivate(runner, make_user, db, new_client):
    user = make_user("staff")
    browser = new_client()
    login(browser, user.email)
    result = runner.invoke(args=["users", "set-role", user.email, "clinician"])
    assert result.exit_code == 0
    db.session.refresh(user)
    assert user.role == "clinician"
    result = runner.invoke(args=["users", "deactivate", user.email.upper()])
    assert result.exit_code == 0 and "1 session(s) ended" in result.output
    assert browser.get("/services").status_code == 302
    result = runner.invoke(args=["users", "reactivate", user.email])
    assert result.exit_code == 0
    assert login(browser, user.email).status_code == 302
    assert [e.actor for e in events(db, "deactivate", user.id)] == ["cli"]


def test_cli_errors_are_clear(runner, make_user):
    admin = make_user("admin")
    result = runner.invoke(args=["users", "deactivate", "nobody@hospital.test"])
    assert result.exit_code == 2 and "no user with the email" in result.output
    result = runner.invoke(args=["users", "set-role", admin.email, "wizard"])
    assert result.exit_code == 2 and "no role 'wizard'" in result.output
    # the last admin stays
    result = runner.invoke(args=["users", "deactivate", admin.email])
    assert result.exit_code == 2 and "only active admin" in result.output
    result = runner.invoke(args=["users", "set-role", admin.email, "staff"])
    assert result.exit_code == 2 and "only active admin" in result.output


def test_cli_reset_password_prints_a_working_link(runner, make_user, db, new_client):
    user = make_user("staff")
    result = runner.invoke(args=["users", "reset-password", user.email])
    assert result.exit_code == 0
    link = LINK.search(result.output)
    assert link
    browser = new_client()
    r = post_form(browser, link.group(1), {"password": COMMON, "confirm": COMMON})
    assert r.status_code == 400 and "too common" in text_of(r)
    r = post_form(browser, link.group(1), {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert r.status_code == 302
    assert login(browser, user.email, NEW_PASSWORD).status_code == 302


def test_cli_reset_password_can_email_the_link(runner, make_user, smtp):
    user = make_user("staff")
    result = runner.invoke(args=["users", "reset-password", user.email, "--email"])
    assert result.exit_code == 0, result.output
    assert [m["To"] for m in smtp.messages] == [user.email]
    assert "/password/" not in result.output


# -- bad input -------------------------------------------------------------------------------

BAD = ("a\x00b", "x" * 100_000, "\u202eevil", "' OR 1=1 --", "99999999999999999999999")


def test_bad_input_never_breaks_the_account_pages(client, auth, make_user, make_service, db):
    ward = make_service()
    admin = make_user("admin")
    auth.login(admin.email)
    wrong = []
    for value in BAD:
        for url in (f"/staff?role={value[:50]}&service={value[:50]}&status={value[:50]}",
                    f"/password/{value[:500]}"):
            r = client.get(url)
            if r.status_code >= 500:
                wrong.append((url[:60], r.status_code))
        posts = [
            ("/staff/invite", {"email": value, "name": value, "role": value,
                               "services": [value, str(ward.id)], "language": value}),
            ("/staff/invite", {"email": f"ok{len(value)}@hospital.test", "name": value,
                               "role": "staff", "language": ""}),
            (f"/staff/{admin.id}", {"name": value, "role": "admin", "language": value,
                                    "services": [value]}),
            ("/account/password", {"current_password": value, "password": value,
                                   "confirm": value}),
            ("/account/language", {"language": value}),
        ]
        for url, data in posts:
            r = post_form(client, url, data, page_url="/account")
            if r.status_code >= 500:
                wrong.append((url, value[:10], r.status_code))
    names = db.session.scalars(select(User.name)).all()
    assert not any("\x00" in n or "\u202e" in n for n in names)
    anonymous = client.application.test_client()
    for value in BAD:
        r = post_form(anonymous, "/password/forgot", {"email": value})
        if r.status_code >= 500:
            wrong.append(("/password/forgot", value[:10], r.status_code))
    assert wrong == []


def test_session_rows_are_purged_after_ninety_days(make_user, db):
    from engage.accounts.sessions import KEEP_SESSIONS, purge_sessions

    user = make_user("staff")
    now = utcnow()
    old = UserSession(user_id=user.id, token_hash="a" * 64,
                      created_at=now - KEEP_SESSIONS - timedelta(hours=1),
                      last_seen_at=now - KEEP_SESSIONS, ended_at=now - KEEP_SESSIONS,
                      ended_reason="logout")
    recent = UserSession(user_id=user.id, token_hash="b" * 64,
                         created_at=now - timedelta(days=3), last_seen_at=now)
    db.session.add_all([old, recent])
    db.session.flush()
    assert purge_sessions(now) == 1
    assert purge_sessions(now) == 0
    left = db.session.scalars(select(UserSession.token_hash)).all()
    assert left == ["b" * 64]


def test_a_password_change_is_told_to_its_owner_by_email_without_a_link(
    client, auth, make_user, smtp, db
):
    user = make_user("staff", language="es")
    auth.login(user.email)
    page = client.get("/account")
    r = client.post("/account/password", data={
        "csrf_token": csrf_from(page), "current_password": PASSWORD,
        "password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert r.status_code == 302
    r.close()  # the email goes once the response is out
    (msg,) = smtp.messages
    assert msg["To"] == user.email
    body = msg.get_content()
    assert "contraseña" in body.lower()  # in the person's language
    assert "http" not in body  # nothing to click: it cannot be mistaken for a phishing link
    # a failed change (wrong current password) tells nobody anything
    client.post("/account/password", data={
        "csrf_token": csrf_from(client.get("/account")), "current_password": "wrong-one-123",
        "password": "another-long-password", "confirm": "another-long-password"}).close()
    assert len(smtp.messages) == 1
