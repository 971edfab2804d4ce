"""Zero 5xx for bad input: every form field and API field of the app, as each role.

The routes come from ``app.url_map`` (a route added later is fuzzed without a change here).
For each role the test reads every page it may open, collects the forms on them (field
names, defaults, the CSRF or link token), and posts each form again with one field at a
time replaced by payloads of a corpus: 100 KB, NUL, invalid UTF-8 (raw bytes in the
body), control characters, bidi overrides, script, an SQL fragment. API endpoints get the
same payloads in each JSON field named by docs/openapi.yaml. Anything 500 or above fails
the test, and the database must still answer afterwards. Runs on SQLite and PostgreSQL.

Every field gets NUL, control and bidi characters at once, and the other payloads in
turn; fields repeated in the rows of a table are fuzzed once.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
import yaml
from flask import Flask
from sqlalchemy import func, select

from tests.factories import PASSWORD

ROOT = Path(__file__).resolve().parent.parent

#: (name, value) — bytes are sent raw in a urlencoded body (invalid UTF-8).
MIXED = ("NUL, control, bidi", "a\x00b\x01\x02\x1b[31m\x7f\x85\x08 \u202egnp.exe\u2066x\u2069")
ROTATED: list[tuple[str, str | bytes]] = [
    ("100 KB", "x" * 100_000),
    ("invalid UTF-8", b"\xff\xfe\xc3\x28"),
    ("script", "<script>alert(1)</script>\"'><img src=x onerror=alert(1)>"),
    ("SQL", "'; DROP TABLE patient;--"),
]
ROLES = ("admin", "staff", "clinician", "safeguarding", "safety_officer", "council",
         "anonymous")
#: Requests that would end the fuzzing session itself.
SKIP = {"accounts.logout", "account.end", "static"}
#: Values a browser never edits, kept as the page gave them.
TOKENS = {"csrf_token", "form_token", "nonce"}
TEXT_INPUTS = {"text", "email", "tel", "search", "password", "url", "number", "date",
               "datetime-local", "time", "hidden", ""}


class Forms(HTMLParser):
    """The forms of a page: action, method, fields with the values a browser would send."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[dict[str, Any]] = []
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append({"action": a.get("action", ""), "method":
                               a.get("method", "get").lower(), "fields": {}, "text": []})
            return
        if not self.forms or "name" not in a:
            if tag == "option" and self._select and self.forms:
                fields = self.forms[-1]["fields"]
                if self._select not in fields or "selected" in a:
                    fields[self._select] = a.get("value", "")
            return
        form, name = self.forms[-1], a["name"]
        if tag == "input":
            kind = a.get("type", "text").lower()
            if kind in ("checkbox", "radio"):
                if "checked" in a or name not in form["fields"]:
                    form["fields"][name] = a.get("value", "on")
            elif kind not in ("submit", "button", "file", "image", "reset"):
                form["fields"][name] = a.get("value", "")
                if kind in TEXT_INPUTS and name not in TOKENS:
                    form["text"].append(name)
        elif tag == "textarea":
            form["fields"][name] = ""
            form["text"].append(name)
            self._textarea = name
        elif tag == "select":
            self._select = name
        elif tag == "button" and a.get("value"):
            form["fields"].setdefault(name, a["value"])

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self._textarea and self.forms:
            self.forms[-1]["fields"][self._textarea] += data


@pytest.fixture
def world(db: Any, make_service: Any, make_user: Any, make_protocol: Any,
          enrol_patient: Any, make_invitation: Any) -> dict[str, Any]:
    """One of everything a URL can name, in one service every user works in."""
    from engage.alerts.models import Alert, CrisisContact
    from engage.api.services import create_api_key
    from engage.feedback.models import Theme
    from engage.feedback.services import intake
    from engage.teams.models import ImprovementTeam

    service = make_service()
    protocol = make_protocol(service=service)
    enrolment = enrol_patient(protocol, "2027-01-10T09:00")
    invitation, token = make_invitation("fft", service=service)
    item = intake(service=service, text="The nurses were kind but the wait was long.",
                  source="web")
    alert = Alert(service_id=service.id, kind="comment-staff", feedback_item_id=item.id)
    contact = CrisisContact(name="Helpline", phone="0800 000 000", hours="24 hours")
    team = ImprovementTeam(slug="fuzz-team", name="Fuzz team")
    db.session.add_all([alert, contact, team])
    target = make_user("staff", services=[service])  # the user staff pages act on
    _row, key = create_api_key("Fuzz EHR", scope="write", services=[service])
    db.session.commit()
    theme = db.session.scalar(select(Theme).limit(1))
    return {
        "service": service, "protocol": protocol, "enrolment": enrolment,
        "invitation": invitation, "token": token, "item": item, "alert": alert,
        "contact": contact, "team": team, "target": target, "key": key, "theme": theme,
    }


def url_for_rule(rule: Any, w: dict[str, Any]) -> str:
    return fill(rule.rule, rule.endpoint, w)


def fill(pattern: str, endpoint: str, w: dict[str, Any]) -> str:
    """A rule's URL, naming the world's objects (a name it does not know: a miss)."""
    slugs = {"scheduling": w["protocol"].slug, "teams": w["team"].slug}
    ids = {"alert_id": w["alert"].id, "contact_id": w["contact"].id,
           "enrolment_id": w["enrolment"].id, "item_id": w["item"].id,
           "patient_id": w["enrolment"].patient_id, "user_id": w["target"].id,
           "response_id": 1, "number": 1,
           "theme_id": w["theme"].id if w["theme"] else 1}
    blueprint = endpoint.split(".")[0]

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "slug":
            return str(slugs.get(blueprint, w["service"].slug))
        if name == "token":
            return str(w["token"])
        return str(ids.get(name, 1))

    return re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", value, pattern)


def api_fields() -> dict[str, list[str]]:
    """JSON fields of each API route (``/enrolments/{id}/withdraw`` style), from the spec."""
    spec = yaml.safe_load((ROOT / "docs" / "openapi.yaml").read_text())
    schemas = spec.get("components", {}).get("schemas", {})
    out = {}
    for path, operations in spec["paths"].items():
        for operation in operations.values():
            body = isinstance(operation, dict) and operation.get("requestBody")
            if not body:
                continue
            schema = body["content"]["application/json"]["schema"]
            if "$ref" in schema:
                schema = schemas[schema["$ref"].rsplit("/", 1)[1]]
            out[re.sub(r"\{[^}]+\}", "{}", path)] = list(schema.get("properties", {}))
    return out


def distinct(names: list[str]) -> list[str]:
    """One field of each kind: rows of a table (``rule-3-phrases-en``, ``timepoints-7-label``)
    repeat the same field, which is read by the same code."""
    seen: set[str] = set()
    out = []
    for name in names:
        kind = re.sub(r"\d+", "#", name)
        if kind not in seen:
            seen.add(kind)
            out.append(name)
    return out


def login(client: Any, role: str, make_user: Any, service: Any) -> None:
    from tests.helpers import csrf_from

    user = make_user(role, services=[service])
    page = client.get("/login")
    r = client.post("/login", data={"email": user.email, "password": PASSWORD,
                                    "csrf_token": csrf_from(page)})
    assert r.status_code in (302, 303), f"{role} could not log in"


def encode(fields: dict[str, str], name: str, payload: str | bytes) -> bytes:
    body = urlencode({k: v for k, v in fields.items() if k != name}).encode()
    if isinstance(payload, bytes):
        return body + b"&" + name.encode() + b"=" + payload
    return body + b"&" + urlencode({name: payload}).encode()


def pages(app: Flask, w: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for rule in app.url_map.iter_rules():
        if rule.endpoint in SKIP or rule.rule.startswith("/api/"):
            continue
        yield rule.endpoint, url_for_rule(rule, w)


@pytest.mark.parametrize("role", ROLES)
def test_no_field_of_any_form_gives_a_server_error(
    role: str, app: Flask, client: Any, make_user: Any, world: dict[str, Any], db: Any,
) -> None:
    # Every field gets the mixed payload, and the others in turn (the admin, who reaches
    # every page, two of them per field; other roles one): every payload reaches every
    # form, in well under a minute.
    per_field = 2 if role == "admin" else 1
    turn = iter(range(10**9))

    def corpus() -> list[tuple[str, str | bytes]]:
        return [MIXED, *(ROTATED[next(turn) % len(ROTATED)] for _ in range(per_field))]

    if role != "anonymous":
        login(client, role, make_user, world["service"])
    failures: list[str] = []

    def check(response: Any, what: str) -> Any:
        if response.status_code >= 500:
            failures.append(f"{what}: {response.status_code}")
        return response

    # Read every page the role may open and keep its forms, by where they post.
    forms: dict[str, tuple[str | None, dict[str, Any]]] = {}
    posts: dict[str, str] = {}
    rules = {r.endpoint: r for r in app.url_map.iter_rules()}
    for endpoint, url in sorted(pages(app, world)):
        methods = rules[endpoint].methods or set()
        if methods & {"POST", "PUT", "PATCH"}:
            posts[endpoint] = url
        if "GET" not in methods:
            continue
        page = check(client.get(url), f"GET {url}")
        if page.status_code != 200 or "html" not in (page.mimetype or ""):
            continue
        parser = Forms()
        parser.feed(page.get_data(as_text=True))
        for form in parser.forms:
            action = urlsplit(form["action"] or url).path
            forms.setdefault(f"{form['method']} {action}", (url, form))

    # GET forms (filters): each text field with each payload in the query string.
    for key, (_page, form) in sorted(forms.items()):
        method, action = key.split(" ", 1)
        if method != "get":
            continue
        for name in distinct(form["text"]):
            for label, payload in corpus():
                if isinstance(payload, str):
                    query = urlencode({**form["fields"], name: payload[:10_000]})
                    check(client.get(f"{action}?{query}"), f"GET {action} {name} {label}")

    # Every route that takes a post: its form's fields one at a time.
    for endpoint, url in sorted(posts.items()):
        path = urlsplit(url).path
        nothing: tuple[str | None, dict[str, Any]] = (None, {"fields": {}, "text": []})
        page_url, form = forms.get(f"post {path}", nothing)
        fields = dict(form["fields"])
        names = distinct(form["text"]) or ["text", "name", "note", "email"]
        if "csrf_token" not in fields and role != "anonymous":
            fields["csrf_token"] = next(
                (f["fields"]["csrf_token"] for _u, f in forms.values()
                 if "csrf_token" in f["fields"]), "")
        for name in names:
            for label, payload in corpus():
                if page_url and {"form_token", "nonce"} & fields.keys():
                    # A patient or public form: a fresh one each time (each is sent once).
                    fresh = Forms()
                    fresh.feed(client.get(page_url).get_data(as_text=True))
                    for candidate in fresh.forms:
                        if urlsplit(candidate["action"] or page_url).path == path:
                            fields = dict(candidate["fields"])
                response = client.post(
                    url, data=encode(fields, name, payload),
                    content_type="application/x-www-form-urlencoded")
                check(response, f"POST {url} ({endpoint}) {name} {label}")

    # The API: each JSON field of each route with a body, with a key of the service.
    headers = {"Authorization": f"Bearer {world['key']}"}
    bodies = api_fields()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/") or not (rule.methods or set()) & {"POST", "PUT",
                                                                               "PATCH"}:
            continue
        url = url_for_rule(rule, world)
        template = re.sub(r"<[^>]+>", "{}", rule.rule.removeprefix("/api/v1"))
        for name in bodies.get(template, ["name", "value"]):
            for label, payload in corpus():
                if isinstance(payload, bytes):
                    response = client.post(url, data=b'{"' + name.encode() + b'": "'
                                           + payload + b'"}', headers=headers,
                                           content_type="application/json")
                else:
                    response = client.post(url, json={name: payload}, headers=headers)
                check(response, f"POST {url} {name} {label}")

    # Values in the path (slugs, tokens, references): each with NUL and control characters.
    for rule in app.url_map.iter_rules():
        if rule.endpoint in SKIP or "GET" not in (rule.methods or set()):
            continue
        for name in re.findall(r"<(?:string:)?([a-z_]+)>", rule.rule):
            bad = re.sub(rf"<(?:string:)?{name}>", "a%00b%01%E2%80%AE", rule.rule)
            url = fill(bad, rule.endpoint, world)
            check(client.get(url), f"GET {url} ({name} in the path)")

    assert failures == []
    # The database still answers, and so does the app.
    from engage.patients.models import Patient

    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Patient)) >= 1
    assert client.get("/login").status_code in (200, 302)
