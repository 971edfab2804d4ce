"""Staff pages: login, the responses of a service, a patient's history, access and audit."""

from __future__ import annotations

from sqlalchemy import select

from engage.audit.models import AuditEvent
from engage.survey.services import save_answers, start_response, submit
from tests.factories import PASSWORD
from tests.helpers import csrf_from, text_of

PHQ9 = {f"phq9-{n}": v for n, v in zip(range(1, 10), (3, 3, 3, 3, 3, 2, 2, 1, 0), strict=True)}


def answered(make_invitation, instrument="phq-9", values=None, **kw):
    invitation, _ = make_invitation(instrument, **kw)
    response = start_response(invitation, respondent=kw.pop("respondent", "self"))
    save_answers(response, values if values is not None else PHQ9)
    submit(response)
    return response


def test_login_logout(client, auth, make_user):
    user = make_user("staff")
    r = auth.login(user.email)
    assert r.status_code == 302
    assert client.get("/services").status_code == 200
    page = client.get("/services")
    r = client.post("/logout", data={"csrf_token": csrf_from(page)})
    assert r.status_code == 302
    assert client.get("/services").status_code == 302  # back to login


def test_wrong_password_keeps_the_email_and_says_so(client, make_user):
    user = make_user("staff")
    page = client.get("/login")
    r = client.post("/login", data={"email": user.email, "password": "wrong-password",
                                     "csrf_token": csrf_from(page)})
    assert r.status_code == 200
    assert "do not match an active account" in text_of(r)
    assert f'value="{user.email}"' in r.get_data(as_text=True)


def test_login_needs_the_csrf_token(client, make_user):
    user = make_user("staff")
    r = client.post("/login", data={"email": user.email, "password": PASSWORD})
    assert r.status_code == 400


def test_inactive_user_cannot_log_in(client, auth, make_user, db):
    user = make_user("staff")
    user.active = False
    db.session.commit()
    r = auth.login(user.email)
    assert r.status_code == 200
    assert "do not match an active account" in text_of(r)


def test_login_refuses_an_open_redirect(client, make_user):
    user = make_user("staff")
    page = client.get("/login?next=https://evil.example/")
    r = client.post("/login?next=https://evil.example/",
                    data={"email": user.email, "password": PASSWORD, "csrf_token": csrf_from(page)})
    assert r.headers["Location"] == "/"


def test_password_is_hashed(make_user):
    user = make_user("staff")
    assert PASSWORD not in user.password_hash
    assert user.check_password(PASSWORD)


def test_responses_page_shows_score_band_proxy_and_language(
    client, auth, make_user, make_service, make_invitation, make_patient, db
):
    service = make_service()
    user = make_user("staff", services=[service])
    answered(make_invitation, service=service, language="es")
    invitation, _ = make_invitation("gad-7", service=service)
    proxy = start_response(invitation, respondent="proxy", relationship="parent")
    save_answers(proxy, {f"gad7-{n}": 1 for n in range(1, 8)})
    submit(proxy)
    db.session.commit()
    auth.login(user.email)
    page = text_of(client.get(f"/services/{service.slug}/responses"))
    assert "20" in page and "Severe" in page          # PHQ-9 total and band
    assert "7" in page and "Mild" in page             # GAD-7 total and band
    assert "Proxy" in page and "Parent or guardian" in page
    assert "Español" in page


def test_responses_page_puts_open_alerts_first(
    client, auth, make_user, make_service, make_invitation, db
):
    service = make_service()
    user = make_user("clinician", services=[service])
    response = answered(make_invitation, service=service,
                        values={**PHQ9, "phq9-9": 2})
    db.session.commit()
    auth.login(user.email)
    html = client.get(f"/services/{service.slug}/responses").get_data(as_text=True)
    alerts_at = html.index("safety alert to acknowledge")
    table_at = html.index("<table>")
    assert alerts_at < table_at
    assert response.patient.ref in html[alerts_at:table_at]


def test_patient_page_shows_the_history_of_scores(
    client, auth, make_user, make_service, make_invitation, make_patient, db
):
    service = make_service()
    patient = make_patient(service=service)
    user = make_user("clinician", services=[service])
    for total_item in (3, 1, 0):
        answered(make_invitation, service=service, patient=patient,
                 values={**PHQ9, "phq9-1": total_item})
    db.session.commit()
    auth.login(user.email)
    page = text_of(client.get(f"/patients/{patient.id}"))
    assert page.count("Severe") + page.count("Moderately severe") >= 3
    assert "Scores over time" in page


def test_staff_of_another_service_cannot_see_its_responses(
    client, auth, make_user, make_service, make_invitation, db
):
    mine, theirs = make_service(), make_service()
    user = make_user("staff", services=[mine])
    response = answered(make_invitation, service=theirs)
    db.session.commit()
    auth.login(user.email)
    assert client.get(f"/services/{theirs.slug}/responses").status_code == 404
    assert client.get(f"/responses/{response.id}").status_code == 404
    assert client.get(f"/patients/{response.patient_id}").status_code == 404


def test_council_members_cannot_see_responses(client, auth, make_user, make_service, db):
    service = make_service()
    user = make_user("council")
    auth.login(user.email)
    assert client.get(f"/services/{service.slug}/responses").status_code == 403
    assert client.get("/alerts").status_code == 403
    assert "Proposals for your council" in text_of(client.get("/", follow_redirects=True))


def test_anonymous_visitors_are_sent_to_login(client, make_service):
    service = make_service()
    r = client.get(f"/services/{service.slug}/responses")
    assert r.status_code == 302 and "/login" in r.headers["Location"]


def test_viewing_identifiable_data_is_audited(
    client, auth, make_user, make_service, make_invitation, db
):
    service = make_service()
    user = make_user("staff", services=[service])
    response = answered(make_invitation, service=service)
    db.session.commit()
    auth.login(user.email)
    client.get(f"/services/{service.slug}/responses")
    client.get(f"/responses/{response.id}")
    client.get(f"/patients/{response.patient_id}")
    seen = db.session.execute(
        select(AuditEvent.object_type, AuditEvent.action)
        .where(AuditEvent.user_id == user.id, AuditEvent.patient_id == response.patient_id)
    ).all()
    assert ("response_list", "view") in seen
    assert ("response", "view") in seen
    assert ("patient", "view") in seen


def test_staff_invite_form_creates_a_working_link(
    client, auth, make_user, make_service, db
):
    service = make_service()
    user = make_user("staff", services=[service])
    auth.login(user.email)
    page = client.get(f"/services/{service.slug}/invite")
    r = client.post(f"/services/{service.slug}/invite", data={
        "patient_ref": "MRN-77", "instrument": "gad-2", "language": "es",
        "csrf_token": csrf_from(page)})
    html = r.get_data(as_text=True)
    import re

    link = re.search(r'value="http://engage\.test(/s/[^"]+)"', html).group(1)
    assert client.get(link).status_code == 200


def test_staff_invite_form_keeps_what_was_typed_on_error(client, auth, make_user, make_service):
    service = make_service()
    user = make_user("staff", services=[service])
    auth.login(user.email)
    page = client.get(f"/services/{service.slug}/invite")
    r = client.post(f"/services/{service.slug}/invite", data={
        "patient_ref": "bad ref with spaces", "instrument": "gad-2", "language": "es",
        "csrf_token": csrf_from(page)})
    assert r.status_code == 200
    assert "Use letters, digits" in text_of(r)
    assert 'value="bad ref with spaces"' in r.get_data(as_text=True)


def test_response_exports_as_a_valid_fhir_questionnaire_response(
    client, auth, make_user, make_service, make_invitation, db
):
    from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse

    service = make_service()
    user = make_user("staff", services=[service])
    response = answered(make_invitation, service=service, language="es")
    db.session.commit()
    auth.login(user.email)
    r = client.get(f"/responses/{response.id}/fhir")
    assert r.status_code == 200
    assert r.mimetype == "application/fhir+json"
    resource = QuestionnaireResponse.model_validate(r.get_json())
    assert resource.status == "completed"
    assert resource.subject.reference == f"Patient/{response.patient.ref}"
    assert resource.questionnaire.startswith("https://engage.example.org/fhir/Questionnaire/phq-9")
    assert db.session.scalar(select(AuditEvent).where(
        AuditEvent.action == "export", AuditEvent.object_id == response.id)) is not None


def test_an_unfinished_response_is_not_shown_to_staff(
    client, auth, make_user, make_service, make_invitation, db
):
    service = make_service()
    user = make_user("staff", services=[service])
    invitation, _ = make_invitation("phq-9", service=service)
    draft = start_response(invitation)
    db.session.commit()
    auth.login(user.email)
    assert client.get(f"/responses/{draft.id}").status_code == 404
    assert client.get(f"/responses/{draft.id}/fhir").status_code == 404
