"""Protocol pages: editing, enrolling, CSV import, withdrawal, opt-out, response rates, access."""

from __future__ import annotations

import io
import re
from datetime import timedelta
from html import unescape
from typing import Any

import pytest
from sqlalchemy import func, select

from engage.audit.models import AuditEvent
from engage.delivery.models import Message, message_invitation
from engage.scheduling.models import Enrolment, Protocol
from engage.scheduling.services import TimepointSpec, response_rates
from engage.scheduling.views import pack_csv, unpack_csv
from engage.survey.models import Invitation
from tests.helpers import csrf_from, text_of

ANCHOR = "2031-03-03T10:00"  # far enough ahead that every window is still to come
HEADER = "patient_ref,protocol,anchor,tz,email,phone,language"


def row(label: str = "", offset: str = "", instruments: tuple[str, ...] = (),
        window_opens: str = "0", window_closes: str = "+7d", reminders: str = "",
        channel: str = "patient") -> dict[str, Any]:
    return {"label": label, "offset": offset, "instruments": list(instruments),
            "window_opens": window_opens, "window_closes": window_closes,
            "reminders": reminders, "channel": channel}


def protocol_form(token: str, service_id: int, rows: list[dict[str, Any]], *,
                  name: str = "Hip replacement", slug: str = "hip-replacement",
                  **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"csrf_token": token, "name": name, "slug": slug,
                            "service": str(service_id), "anchor_label": "surgery",
                            "description": "", **extra}
    for index, fields in enumerate(rows):
        for key, value in fields.items():
            data[f"timepoints-{index}-{key}"] = value
    return data


def form_of(protocol: Protocol) -> list[dict[str, Any]]:
    """The protocol's timepoints as the edit form posts them back."""
    return [row(tp.label, tp.offset, tuple(tp.instruments), tp.window_opens, tp.window_closes,
                ", ".join(tp.reminders), tp.channel) for tp in protocol.timepoints]


def upload(client: Any, slug: str, content: bytes, name: str = "patients.csv") -> Any:
    page = client.get(f"/protocols/{slug}/import")
    return client.post(f"/protocols/{slug}/import", data={
        "csrf_token": csrf_from(page), "file": (io.BytesIO(content), name)},
        content_type="multipart/form-data")


def packed_from(response: Any) -> str:
    match = re.search(r'name="content" type="hidden" value="([^"]+)"',
                      response.get_data(as_text=True))
    assert match, "no confirmation form on the page"
    return match.group(1)


def enrolments_of(db: Any, protocol: Protocol) -> list[Enrolment]:
    return list(db.session.scalars(select(Enrolment).where(
        Enrolment.protocol_id == protocol.id)))


@pytest.fixture
def staffed(make_service, make_user, make_protocol):  # type: ignore[no-untyped-def]
    """A service, a member of its staff, and a protocol in it."""
    service = make_service()
    user = make_user("staff", services=[service])
    return service, user, make_protocol(service=service)


# --- creating and editing --------------------------------------------------------------

def test_admin_creates_a_protocol_from_the_form(client, auth, make_user, make_service, db):
    service = make_service()
    auth.login(make_user("admin").email)
    page = client.get("/protocols/new")
    assert page.status_code == 200
    assert "timepoints-1-label" in page.get_data(as_text=True)  # two empty rows
    r = client.post("/protocols/new", data=protocol_form(csrf_from(page), service.id, [
        row("Before surgery", "-7d", ("phq-9",)),
        row(),  # left blank: ignored
        row("6 weeks", "+6w", ("phq-9", "gad-7"), "0", "+14d", "+3d, +10d", "sms"),
    ]))
    assert r.status_code == 302 and r.headers["Location"].endswith("/protocols/hip-replacement")
    protocol = db.session.scalar(select(Protocol).where(Protocol.slug == "hip-replacement"))
    assert protocol.service_id == service.id and protocol.anchor_label == "surgery"
    assert [(tp.label, tp.offset, tp.instruments, tp.reminders, tp.channel)
            for tp in protocol.timepoints] == [
        ("Before surgery", "-7d", ["phq-9"], [], "patient"),
        ("6 weeks", "+6w", ["phq-9", "gad-7"], ["+3d", "+10d"], "sms"),
    ]
    assert db.session.scalar(select(AuditEvent).where(
        AuditEvent.action == "create", AuditEvent.object_type == "protocol")) is not None
    assert "Hip replacement" in text_of(client.get("/protocols"))


def test_protocol_errors_are_shown_beside_their_fields_with_the_input_kept(
    client, auth, make_user, make_service, db
):
    service = make_service()
    auth.login(make_user("admin").email)
    page = client.get("/protocols/new")
    r = client.post("/protocols/new", data=protocol_form(csrf_from(page), service.id, [
        row("Baseline", "2 weeks", ("phq-9",)),
        row(),
        row("Later", "+4w"),                                       # no questionnaire
        row("Last", "+8w", ("gad-7",), "0", "+7d", "+3d, +9d"),    # reminder after it closes
    ], slug="Not A Slug"))
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    page_text = text_of(r)
    assert db.session.scalar(select(func.count()).select_from(Protocol)) == 0
    assert "There is a problem" in page_text
    # each message sits with its own field, in the row it belongs to
    assert re.search(r'id="timepoints-0-offset-error">.*?is not an offset', html)
    assert re.search(r'id="timepoints-2-instruments-error">.*?choose at least one', html)
    assert re.search(r'id="timepoints-3-reminders-error">.*?reminder \+9d must fall inside',
                     html)
    assert re.search(r'id="slug-error">.*?lower-case letters', html)
    # and everything typed is still there
    assert 'value="2 weeks"' in html and 'value="Not A Slug"' in html
    assert 'value="+3d, +9d"' in html and 'value="Later"' in html
    assert re.search(r'name="timepoints-3-instruments" value="gad-7" checked', html)


def test_a_protocol_needs_a_timepoint(client, auth, make_user, make_service, db):
    service = make_service()
    auth.login(make_user("admin").email)
    page = client.get("/protocols/new")
    r = client.post("/protocols/new", data=protocol_form(csrf_from(page), service.id,
                                                          [row(), row()]))
    assert r.status_code == 200 and "add at least one timepoint" in text_of(r)
    assert db.session.scalar(select(func.count()).select_from(Protocol)) == 0


def test_add_more_rows_keeps_everything_typed_and_saves_nothing(
    client, auth, make_user, make_service, db
):
    service = make_service()
    auth.login(make_user("admin").email)
    page = client.get("/protocols/new")
    r = client.post("/protocols/new", data=protocol_form(
        csrf_from(page), service.id, [row("Baseline", "0", ("phq-9",)), row()],
        add_rows="1"))
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert 'name="timepoints-4-label"' in html and 'name="timepoints-5-label"' not in html
    assert 'value="Baseline"' in html and 'value="Hip replacement"' in html
    assert "There is a problem" not in text_of(r)
    assert db.session.scalar(select(func.count()).select_from(Protocol)) == 0


def test_only_admins_create_or_edit_protocols(client, auth, staffed, db):
    service, user, protocol = staffed
    auth.login(user.email)
    assert "New protocol" not in text_of(client.get("/protocols"))
    assert client.get("/protocols/new").status_code == 403
    page = client.get(f"/protocols/{protocol.slug}")
    assert client.post("/protocols/new", data=protocol_form(
        csrf_from(page), service.id, [row("Baseline", "0", ("phq-9",))])).status_code == 403
    assert client.get(f"/protocols/{protocol.slug}/edit").status_code == 403
    assert client.post(f"/protocols/{protocol.slug}/active",
                       data={"csrf_token": csrf_from(page), "active": "0"}).status_code == 403
    assert db.session.scalar(select(func.count()).select_from(Protocol)) == 1


def test_editing_a_protocol_replans_unsent_invitations(
    client, auth, make_user, staffed, enrol_patient, db
):
    service, _user, protocol = staffed
    enrolment = enrol_patient(protocol, ANCHOR)
    second = protocol.timepoints[1]
    before = db.session.scalar(select(Invitation.due_at).where(
        Invitation.enrolment_id == enrolment.id, Invitation.timepoint_id == second.id,
        Invitation.instrument_id == "phq-9"))
    auth.login(make_user("admin").email)
    page = client.get(f"/protocols/{protocol.slug}/edit")
    assert 'value="2 weeks"' in page.get_data(as_text=True)
    rows = form_of(protocol)
    rows[1]["offset"] = "+3w"
    r = client.post(f"/protocols/{protocol.slug}/edit", data=protocol_form(
        csrf_from(page), service.id, rows, name=protocol.name, slug=protocol.slug),
        follow_redirects=True)
    assert "1 patient enrolled now follow the new timepoints" in text_of(r)
    db.session.expire_all()
    after = db.session.scalar(select(Invitation.due_at).where(
        Invitation.enrolment_id == enrolment.id, Invitation.timepoint_id == second.id,
        Invitation.instrument_id == "phq-9", Invitation.status == "scheduled"))
    assert after - before == timedelta(weeks=1)


def test_a_deactivated_protocol_takes_nobody_new(client, auth, make_user, staffed, db):
    _service, user, protocol = staffed
    auth.login(make_user("admin").email)
    page = client.get(f"/protocols/{protocol.slug}")
    r = client.post(f"/protocols/{protocol.slug}/active",
                    data={"csrf_token": csrf_from(page), "active": "0"}, follow_redirects=True)
    assert "nobody new can be enrolled" in text_of(r)
    db.session.refresh(protocol)
    assert protocol.active is False
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "deactivate"))
    assert "Enrol a patient" not in text_of(r)


# --- enrolling one patient -------------------------------------------------------------

def test_staff_enrol_a_patient_from_the_protocol_page(client, auth, staffed, db):
    _service, user, protocol = staffed
    auth.login(user.email)
    page = client.get(f"/protocols/{protocol.slug}")
    assert "Enrol a patient" in text_of(page)
    r = client.post(f"/protocols/{protocol.slug}/enrol", data={
        "csrf_token": csrf_from(page), "patient_ref": "MRN-501", "anchor": ANCHOR,
        "tz": "Europe/London", "email": "p501@example.org", "phone": "", "language": "es"},
        follow_redirects=True)
    assert "MRN-501 is enrolled: 10 questionnaires are planned." in text_of(r)
    (enrolment,) = enrolments_of(db, protocol)
    assert enrolment.source == "web" and enrolment.patient.language == "es"
    assert enrolment.patient.email == "p501@example.org"
    assert "MRN-501" in text_of(r)  # in the list of enrolled patients
    assert db.session.scalar(select(AuditEvent).where(
        AuditEvent.action == "view", AuditEvent.object_type == "enrolment_list",
        AuditEvent.patient_id == enrolment.patient_id)) is not None


def test_enrolment_errors_are_shown_in_place_with_the_input_kept(client, auth, staffed, db):
    _service, user, protocol = staffed
    auth.login(user.email)
    page = client.get(f"/protocols/{protocol.slug}")
    r = client.post(f"/protocols/{protocol.slug}/enrol", data={
        "csrf_token": csrf_from(page), "patient_ref": "MRN-502", "anchor": "next tuesday",
        "tz": "Mars/Olympus", "email": "not-an-email", "phone": "", "language": ""})
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert re.search(r'id="anchor-error">.*?is not a date like', html)
    assert re.search(r'id="tz-error">.*?is not a time zone', html)
    assert re.search(r'id="email-error">.*?is not an email address', html)
    assert 'value="next tuesday"' in html and 'value="MRN-502"' in html
    assert 'value="Mars/Olympus"' in html
    assert enrolments_of(db, protocol) == []


# --- CSV import ------------------------------------------------------------------------

def test_a_csv_with_row_errors_is_previewed_and_nothing_is_imported(
    client, auth, staffed, make_protocol, db
):
    service, user, protocol = staffed
    other = make_protocol(service=service)
    auth.login(user.email)
    content = "\n".join([
        HEADER,
        f"MRN-601,{protocol.slug},{ANCHOR},Europe/London,a@example.org,,en",
        f"MRN-602,{protocol.slug},yesterday,Europe/London,,,",
        f"MRN-603,{other.slug},{ANCHOR},,,,",
        f"MRN-604,,{ANCHOR},,,+447700900123,es",
    ]).encode()
    r = upload(client, protocol.slug, content)
    assert r.status_code == 200
    page = text_of(r)
    assert "2 of 4 rows have errors" in page and "Nothing has been imported" in page
    html = unescape(r.get_data(as_text=True))
    assert re.search(r"<th scope=\"row\">3</th>.*?'yesterday' is not a date", html, re.S)
    assert re.search(r"<th scope=\"row\">4</th>.*?this row is for " + other.slug, html, re.S)
    assert "Confirm import" not in page
    assert enrolments_of(db, protocol) == [] and enrolments_of(db, other) == []


def test_a_valid_csv_is_previewed_then_imported_whole_on_confirmation(
    client, auth, staffed, db
):
    _service, user, protocol = staffed
    auth.login(user.email)
    content = "\n".join([HEADER] + [
        f"MRN-70{n},{protocol.slug},2031-03-0{n},Europe/London,p{n}@example.org,," for n in
        (1, 2, 3)]).encode("utf-8-sig")  # Excel's "CSV UTF-8" starts with a byte-order mark
    preview = upload(client, protocol.slug, content)
    assert "Confirm import of 3 patients" in text_of(preview)
    assert "MRN-702" in text_of(preview)
    assert enrolments_of(db, protocol) == []  # a preview writes nothing
    r = client.post(f"/protocols/{protocol.slug}/import/confirm", data={
        "csrf_token": csrf_from(preview), "content": packed_from(preview)},
        follow_redirects=True)
    assert "3 patients enrolled from the file." in text_of(r)
    enrolled = enrolments_of(db, protocol)
    assert sorted(e.patient.ref for e in enrolled) == ["MRN-701", "MRN-702", "MRN-703"]
    assert {e.source for e in enrolled} == {"csv"}


def test_a_tampered_confirmation_is_checked_again(client, auth, staffed, db):
    _service, user, protocol = staffed
    auth.login(user.email)
    preview = upload(client, protocol.slug, "\n".join([
        HEADER, f"MRN-801,{protocol.slug},{ANCHOR},,,,"]).encode())
    text = unpack_csv(packed_from(preview))
    assert text is not None
    tampered = text + f"\nMRN-802,{protocol.slug},not-a-date,,,,\n"
    r = client.post(f"/protocols/{protocol.slug}/import/confirm", data={
        "csrf_token": csrf_from(preview), "content": pack_csv(tampered)})
    assert r.status_code == 200
    assert "1 of 2 rows has errors" in text_of(r)
    assert "Nothing has been imported" in text_of(r)
    garbage = client.post(f"/protocols/{protocol.slug}/import/confirm", data={
        "csrf_token": csrf_from(preview), "content": "not-packed-at-all"})
    assert "could not be read" in text_of(garbage)
    assert enrolments_of(db, protocol) == []


@pytest.mark.parametrize(("content", "message"), [
    ("patient_ref,protocol,anchor\nMRN-1,x,2031-01-01 caf\u00e9".encode("latin-1"),
     "is not UTF-8"),
    (b"", "the file is empty"),
    (b"patient_ref,anchor\nMRN-1,2031-01-01\n", "missing columns: protocol"),
    ((HEADER + "\n" + "MRN-1,,2031-01-01,,,,\n" * 5001).encode(),
     "the file has 5001 rows; at most 5000"),
])
def test_a_file_that_cannot_be_read_is_refused_clearly(
    client, auth, staffed, db, content, message
):
    _service, user, protocol = staffed
    auth.login(user.email)
    r = upload(client, protocol.slug, content)
    assert r.status_code == 200
    assert message in text_of(r)
    assert "Nothing has been imported" in text_of(r)
    assert enrolments_of(db, protocol) == []


def test_the_command_line_imports_a_csv_with_the_same_rules(runner, staffed, db, tmp_path):
    _service, _user, protocol = staffed
    good = tmp_path / "good.csv"
    good.write_text("\n".join([HEADER, f"MRN-901,{protocol.slug},{ANCHOR},,,,",
                               f"MRN-902,{protocol.slug},{ANCHOR},,,,"]))
    result = runner.invoke(args=["enroll", "--csv", str(good)])
    assert "Enrolled 2 patients." in result.output
    latin = tmp_path / "latin.csv"
    latin.write_bytes("patient_ref,protocol,anchor\nMRN-903,x,caf\u00e9".encode("latin-1"))
    result = runner.invoke(args=["enroll", "--csv", str(latin)])
    assert result.exit_code == 2 and "is not UTF-8" in result.output


# --- withdrawing, stopping messages ----------------------------------------------------

def test_withdrawing_from_the_protocol_page_cancels_what_is_unsent(
    client, auth, staffed, enrol_patient, db
):
    _service, user, protocol = staffed
    enrolment = enrol_patient(protocol, ANCHOR)
    auth.login(user.email)
    page = client.get(f"/protocols/{protocol.slug}")
    r = client.post(f"/enrolments/{enrolment.id}/withdraw", data={
        "csrf_token": csrf_from(page), "reason": "moved away"}, follow_redirects=True)
    assert "10 questionnaires not yet sent are cancelled" in text_of(r)
    db.session.expire_all()
    assert enrolment.status == "withdrawn" and enrolment.withdrawal_reason == "moved away"
    statuses = set(db.session.scalars(select(Invitation.status).where(
        Invitation.enrolment_id == enrolment.id)))
    assert statuses == {"cancelled"}


def test_withdrawing_from_the_patient_page_returns_there(
    client, auth, staffed, enrol_patient, db
):
    _service, user, protocol = staffed
    enrolment = enrol_patient(protocol, ANCHOR)
    auth.login(user.email)
    page = client.get(f"/patients/{enrolment.patient_id}")
    assert protocol.name in text_of(page) and "Withdraw" in text_of(page)
    r = client.post(f"/enrolments/{enrolment.id}/withdraw", data={
        "csrf_token": csrf_from(page), "reason": "", "back": "patient"})
    assert r.headers["Location"].endswith(f"/patients/{enrolment.patient_id}")
    db.session.expire_all()
    assert enrolment.status == "withdrawn"


def test_stopping_and_resuming_messages_from_the_patient_page_is_recorded(
    client, auth, staffed, enrol_patient, db
):
    _service, user, protocol = staffed
    patient = enrol_patient(protocol, ANCHOR).patient
    auth.login(user.email)
    page = client.get(f"/patients/{patient.id}")
    assert "pat@example.org" in text_of(page)  # contact details are shown to staff
    r = client.post(f"/patients/{patient.id}/opt-out", data={"csrf_token": csrf_from(page)},
                    follow_redirects=True)
    assert "Messages to this patient are stopped" in text_of(r)
    db.session.refresh(patient)
    assert patient.opted_out_at is not None and patient.opt_out_source == "staff"
    # resuming overrides the patient's choice: staff must confirm the patient asked
    r = client.post(f"/patients/{patient.id}/opt-in", data={"csrf_token": csrf_from(page)})
    assert r.status_code == 200
    assert re.search(r'id="asked-error">.*?Confirm that the patient asked',
                     r.get_data(as_text=True))
    db.session.refresh(patient)
    assert patient.opted_out_at is not None
    r = client.post(f"/patients/{patient.id}/opt-in",
                    data={"csrf_token": csrf_from(page), "asked": "y"}, follow_redirects=True)
    assert "Messages to this patient are resumed" in text_of(r)
    db.session.refresh(patient)
    assert patient.opted_out_at is None
    actions = db.session.execute(
        select(AuditEvent.action, AuditEvent.user_id).where(
            AuditEvent.patient_id == patient.id, AuditEvent.action.in_(("opt-out", "opt-in")))
        .order_by(AuditEvent.id)).all()
    assert actions == [("opt-out", user.id), ("opt-in", user.id)]


def test_resuming_plans_again_what_the_opt_out_held_back(
    smtp, make_protocol, enrol_patient, db
):
    from datetime import UTC, datetime

    from engage.delivery.services import dispatch, opt_in, opt_out

    def at(text: str) -> datetime:
        return datetime.fromisoformat(text).replace(tzinfo=UTC)

    enrolment = enrol_patient(make_protocol(), "2027-03-01T10:00")
    opt_out(enrolment.patient, "staff")
    db.session.commit()
    dispatch(at("2027-03-01T10:05"))  # planned, but nothing goes to an opted-out patient
    assert smtp.messages == []
    opt_in(enrolment.patient)
    db.session.commit()
    dispatch(at("2027-03-02T10:05"))  # the baseline window is still open
    assert len(smtp.messages) == 1


def test_the_patient_page_shows_invitations_and_messages_with_failures(
    client, auth, staffed, enrol_patient, db
):
    _service, user, protocol = staffed
    enrolment = enrol_patient(protocol, ANCHOR)
    invitation = db.session.scalars(select(Invitation).where(
        Invitation.enrolment_id == enrolment.id).order_by(Invitation.due_at)).first()
    invitation.status, invitation.last_error = "failed", "550 mailbox unavailable"
    invitation.messages_planned = 1
    message = Message(patient_id=enrolment.patient_id, kind="invitation", channel="email",
                      status="failed", attempts=1, last_error="550 mailbox unavailable")
    db.session.add(message)
    db.session.flush()
    db.session.execute(message_invitation.insert(),
                       [{"message_id": message.id, "invitation_id": invitation.id}])
    db.session.commit()
    auth.login(user.email)
    r = client.get(f"/patients/{enrolment.patient_id}")
    page = text_of(r)
    assert page.count("550 mailbox unavailable") == 2  # on the invitation and the message
    assert "Failed" in page and "Scheduled" in page and "Baseline" in page
    assert 'class="failed"' in r.get_data(as_text=True)


# --- response rates --------------------------------------------------------------------

def test_response_rates_by_timepoint_language_and_channel(
    client, auth, make_service, make_user, make_protocol, enrol_patient, db
):
    service = make_service()
    user = make_user("staff", services=[service])
    protocol = make_protocol(service=service, timepoints=[
        TimepointSpec("Baseline", "0", ["phq-9"]), TimepointSpec("Later", "+4w", ["phq-9"])])
    people = [  # language, contact, what happened to the baseline questionnaire
        ("en", {"email": "a@example.org"}, "completed"),
        ("en", {"email": "b@example.org"}, "sent"),
        ("es", {"email": "", "phone": "+447700900001"}, "expired"),
        ("es", {"email": "", "phone": "+447700900002"}, "failed"),
    ]
    baseline = protocol.timepoints[0]
    for language, contact, status in people:
        enrolment = enrol_patient(protocol, ANCHOR, language=language, **contact)
        invitation = db.session.scalar(select(Invitation).where(
            Invitation.enrolment_id == enrolment.id, Invitation.timepoint_id == baseline.id))
        invitation.status = status
        if status == "failed":
            # the SMS number had no phone behind it: its first message went by email
            message = Message(patient_id=enrolment.patient_id, kind="invitation",
                              channel="email", status="failed")
            db.session.add(message)
            db.session.flush()
            db.session.execute(message_invitation.insert(),
                               [{"message_id": message.id, "invitation_id": invitation.id}])
    db.session.commit()  # the "Later" invitations stay scheduled: not sent, not counted

    rates = response_rates(protocol)
    assert [(r.key, r.sent, r.completed) for r in rates["timepoint"]] == [(baseline.id, 4, 1)]
    assert [(r.key, r.sent, r.completed) for r in rates["language"]] == [
        ("en", 2, 1), ("es", 2, 0)]
    assert [(r.key, r.sent, r.completed) for r in rates["channel"]] == [
        ("email", 3, 1), ("sms", 1, 0)]

    auth.login(user.email)
    page = text_of(client.get(f"/protocols/{protocol.slug}"))
    assert "Baseline 4 1 25%" in page
    assert "English 2 1 50%" in page and "Español 2 0 0%" in page
    assert "Email 3 1 33%" in page and "Text message (SMS) 1 0 0%" in page


# --- who may see what ------------------------------------------------------------------

def test_staff_of_another_service_cannot_see_its_protocols(
    client, auth, make_service, make_user, make_protocol, enrol_patient, db
):
    theirs = make_protocol(service=make_service())
    enrolment = enrol_patient(theirs, ANCHOR)
    user = make_user("staff", services=[make_service()])
    auth.login(user.email)
    assert theirs.name not in text_of(client.get("/protocols"))
    assert client.get(f"/protocols/{theirs.slug}").status_code == 404
    assert client.get(f"/protocols/{theirs.slug}/import").status_code == 404
    page = client.get("/protocols")
    token = csrf_from(page)
    assert client.post(f"/protocols/{theirs.slug}/enrol", data={
        "csrf_token": token, "patient_ref": "MRN-1", "anchor": ANCHOR}).status_code == 404
    assert client.post(f"/enrolments/{enrolment.id}/withdraw",
                       data={"csrf_token": token}).status_code == 404
    assert client.get(f"/patients/{enrolment.patient_id}").status_code == 404
    assert client.post(f"/patients/{enrolment.patient_id}/opt-out",
                       data={"csrf_token": token}).status_code == 404
    db.session.refresh(enrolment)
    assert enrolment.status == "active" and enrolment.patient.opted_out_at is None


def test_council_members_cannot_see_protocols(client, auth, make_user, staffed, db):
    _service, _staff, protocol = staffed
    auth.login(make_user("council").email)
    assert client.get("/protocols").status_code == 403
    assert client.get(f"/protocols/{protocol.slug}").status_code == 403
    assert client.get(f"/protocols/{protocol.slug}/import").status_code == 403
    assert 'href="/protocols"' not in client.get("/", follow_redirects=True).get_data(
        as_text=True)


def test_the_list_counts_timepoints_and_active_enrolments(
    client, auth, staffed, enrol_patient, db
):
    from engage.scheduling.services import withdraw

    _service, user, protocol = staffed
    enrol_patient(protocol, ANCHOR)
    enrol_patient(protocol, ANCHOR)
    withdraw(enrol_patient(protocol, ANCHOR), "")
    db.session.commit()
    auth.login(user.email)
    assert 'href="/protocols"' in client.get("/services").get_data(as_text=True)  # the nav
    assert f"{protocol.name} {protocol.service.name} 5 2" in text_of(client.get("/protocols"))
