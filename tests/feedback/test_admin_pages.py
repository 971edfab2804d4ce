"""The admin's feedback settings: themes, routing rules, the theme model, safety rules, replies.

Everything goes through HTTP, as an admin would use the pages without JavaScript.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from html.parser import HTMLParser
from typing import Any

import pytest
from sqlalchemy import func, select

from engage.audit.models import AuditEvent
from engage.feedback.analysis import active_model, active_rules
from engage.feedback.models import (
    ItemTheme,
    ReplyTemplate,
    RoutingRule,
    SafetyRuleSet,
    Theme,
    ThemeModelRecord,
)
from engage.feedback.text.model import default_model
from engage.feedback.text.safety import default_rules
from tests.helpers import csrf_from, text_of

BASE = "/feedback/settings"
PAGES = [
    "", "/themes", "/themes/1", "/routing", "/model", "/safety", "/safety/versions/shipped",
    "/replies", "/replies/new",
]
POSTS = [
    "/themes", "/themes/1", "/themes/1/merge", "/themes/1/retire", "/themes/1/restore",
    "/routing", "/routing/1/delete", "/model/1/activate", "/model/1/reject", "/model/shipped",
    "/model/train", "/safety", "/safety/versions/shipped/restore", "/replies/new",
    "/replies/1", "/replies/1/active",
]


@pytest.fixture
def admin(make_user: Callable[..., Any], auth: Any) -> Any:
    user = make_user("admin", name="Ada Admin")
    auth.login(user.email)
    return user


def words(response: Any) -> str:
    """The page's text as a reader sees it (``text_of`` leaves entities such as &amp;)."""
    return html.unescape(text_of(response))


def post(client: Any, path: str, data: dict[str, Any] | None = None, page: str = "") -> Any:
    """POST to a settings page with the CSRF token of ``page`` (default: the same page)."""
    token = csrf_from(client.get(BASE + (page or path)))
    return client.post(BASE + path, data={"csrf_token": token, **(data or {})})


def audited(db: Any, object_type: str, action: str) -> int:
    return db.session.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.object_type == object_type, AuditEvent.action == action)) or 0


# --- access ------------------------------------------------------------------------------------

@pytest.mark.parametrize("role", ["staff", "clinician", "council"])
def test_only_admins_reach_the_settings(client, auth, make_user, role):
    auth.login(make_user(role).email)
    for path in PAGES:
        assert client.get(BASE + path).status_code == 403, path
    token = csrf_from(client.get("/", follow_redirects=True))  # the header's log-out form
    for path in POSTS:
        assert client.post(BASE + path, data={"csrf_token": token}).status_code == 403, path


def test_a_form_without_its_csrf_token_is_refused(client, admin, db):
    r = client.post(f"{BASE}/themes", data={"name": "Parking fines", "category": "General"})
    assert r.status_code == 400
    assert db.session.scalar(select(Theme).where(Theme.name == "Parking fines")) is None


def test_the_overview_sums_up_each_page(client, admin):
    page = words(client.get(BASE))
    assert "Active: 50 · Retired: 0 · Merged: 0" in page
    assert "The model shipped with Engage is in force." in page
    assert f"The rules shipped with Engage (version {default_rules().version}) are in force." \
        in page
    assert "Built-in templates, in every language: 4. Your own templates in use: 0." in page


# --- themes ------------------------------------------------------------------------------------

def test_adding_a_theme_in_a_new_category(client, admin, db):
    r = post(client, "/themes", {"name": " Car  park payment ", "category": "General",
                                 "new_category": "Estates"})
    assert r.status_code == 302
    theme = db.session.scalar(select(Theme).where(Theme.name == "Car park payment"))
    assert theme is not None and theme.category == "Estates" and theme.status == "active"
    assert audited(db, "theme", "create") == 1
    page = client.get(f"{BASE}/themes")
    assert "Estates" in words(page) and "Car park payment" in words(page)
    history = words(client.get(f"{BASE}/themes/{theme.id}"))
    assert "Added as “Car park payment” in Estates." in history
    assert "Ada Admin" in history


def test_a_theme_name_in_use_is_refused_beside_the_field_keeping_what_was_typed(client, admin, db):
    r = post(client, "/themes", {"name": "parking", "category": "Staff",
                                 "new_category": "Estates and car parks"})
    assert r.status_code == 400
    html = r.get_data(as_text=True)
    assert "An active theme already has that name." in words(r)
    assert 'id="name-error"' in html and 'aria-invalid="true"' in html
    assert 'href="#name"' in html  # the error summary links to the field
    assert 'value="parking"' in html and 'value="Estates and car parks"' in html
    assert '<option value="Staff" selected>' in html


def test_a_theme_without_a_category_is_refused(client, admin):
    r = post(client, "/themes", {"name": "Lifts", "category": "", "new_category": "  "})
    assert r.status_code == 400
    assert 'id="category-error"' in r.get_data(as_text=True)
    assert "Choose a category." in words(r)


def test_renaming_moving_and_describing_a_theme_is_kept_in_its_history(client, admin, theme, db):
    parking = theme("Parking")
    r = post(client, f"/themes/{parking.id}", {
        "name": "Car parking", "category": "Environment & equipment", "new_category": "",
        "description": "Spaces, charges, fines."})
    assert r.status_code == 302
    db.session.refresh(parking)
    assert (parking.name, parking.category, parking.key) == (
        "Car parking", "Environment & equipment", "Parking")
    page = words(client.get(f"{BASE}/themes/{parking.id}"))
    assert "Renamed from “Parking” to “Car parking”." in page
    assert "Moved from Service location, travel & transport to Environment & equipment." in page
    assert "Description changed." in page
    assert audited(db, "theme", "update") == 1


def test_editing_a_theme_with_an_empty_name_answers_400_and_keeps_the_rest(
    client, admin, theme, db,
):
    parking = theme("Parking")
    r = post(client, f"/themes/{parking.id}", {"name": " ", "category": "General",
                                               "new_category": "", "description": "Typed"})
    assert r.status_code == 400
    assert "Enter a name for the theme." in words(r)
    assert ">Typed</textarea>" in r.get_data(as_text=True)
    db.session.refresh(parking)
    assert parking.name == "Parking"


def _carry(db: Any, items: list[Any], theme: Any, status: str = "confirmed") -> None:
    for item in items:
        db.session.add(ItemTheme(item_id=item.id, theme_id=theme.id, status=status))
    db.session.commit()


def test_merging_says_what_moves_then_moves_the_comments(
    client, admin, make_item, make_team, make_rule, db,
):
    from engage.feedback.themes import create_theme

    source = create_theme("Lift breakdowns", "Environment & equipment", admin)
    target = create_theme("Lifts and stairs", "Environment & equipment", admin)
    db.session.commit()
    items = [make_item(f"The lift was broken again ({n})") for n in range(3)]
    _carry(db, items, source)
    make_rule(source, make_team("Estates"))

    first = post(client, f"/themes/{source.id}/merge", {"target": str(target.id)},
                 page=f"/themes/{source.id}")
    assert first.status_code == 200
    assert "3 comments will move from “Lift breakdowns” to “Lifts and stairs”." \
        in words(first)
    assert "Its routing rule moves too." in words(first)
    db.session.refresh(source)
    assert source.status == "active"  # asking wrote nothing

    r = post(client, f"/themes/{source.id}/merge", {"target": str(target.id), "confirm": "1"},
             page=f"/themes/{source.id}")
    assert r.status_code == 302 and r.headers["Location"].endswith(f"/themes/{target.id}")
    db.session.refresh(source)
    assert source.status == "merged" and source.merged_into_id == target.id
    moved = db.session.scalars(select(ItemTheme.item_id).where(
        ItemTheme.theme_id == target.id)).all()
    assert sorted(moved) == sorted(i.id for i in items)
    assert db.session.scalar(select(RoutingRule.theme_id)) == target.id
    assert audited(db, "theme", "merge") == 1
    page = words(client.get(f"{BASE}/themes/{target.id}"))
    assert "“Lift breakdowns” was merged into “Lifts and stairs”: 3 comments moved." in page
    assert "Took over “Lift breakdowns” and its 3 comments." in page


def test_merging_without_choosing_a_theme_answers_400(client, admin, theme):
    parking = theme("Parking")
    r = post(client, f"/themes/{parking.id}/merge", {"target": ""}, page=f"/themes/{parking.id}")
    assert r.status_code == 400
    assert "Choose the theme to merge into." in words(r)


def test_retiring_and_restoring_a_theme(client, admin, theme, db):
    parking = theme("Parking")
    r = post(client, f"/themes/{parking.id}/retire", page=f"/themes/{parking.id}")
    assert r.status_code == 302
    db.session.refresh(parking)
    assert parking.status == "retired"
    page = client.get(f"{BASE}/themes/{parking.id}")
    assert "Restore this theme" in words(page)
    r = post(client, f"/themes/{parking.id}/restore", page=f"/themes/{parking.id}")
    assert r.status_code == 302
    db.session.refresh(parking)
    assert parking.status == "active"
    history = words(client.get(f"{BASE}/themes/{parking.id}"))
    assert "Retired." in history and "Restored." in history
    assert audited(db, "theme", "retire") == 1 and audited(db, "theme", "restore") == 1
    # Retiring twice (a second press) says why it cannot, with a 400.
    post(client, f"/themes/{parking.id}/retire", page=f"/themes/{parking.id}")
    r = post(client, f"/themes/{parking.id}/retire", page=f"/themes/{parking.id}")
    assert r.status_code == 400 and "Only an active theme can be retired." in words(r)


# --- routing rules -----------------------------------------------------------------------------

def test_routing_rules_are_added_refused_when_duplicated_and_deleted(
    client, admin, theme, make_team, make_service, db,
):
    team, other = make_team("Estates"), make_team("Transport")
    service = make_service(name="Outpatients")
    parking = theme("Parking")
    r = post(client, "/routing", {"theme": str(parking.id), "service": "", "team": str(team.id)})
    assert r.status_code == 302
    r = post(client, "/routing", {"theme": str(parking.id), "service": str(service.id),
                                  "team": str(other.id)})
    assert r.status_code == 302
    page = words(client.get(f"{BASE}/routing"))
    assert "Any service" in page and "Outpatients" in page and "Transport" in page

    r = post(client, "/routing", {"theme": str(parking.id), "service": "",
                                  "team": str(other.id)})
    assert r.status_code == 400
    assert ("Comments about “Parking” in any service already go to Estates. "
            "Delete that rule first to send them elsewhere.") in words(r)
    assert f'<option value="{other.id}" selected>' in r.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(RoutingRule)) == 2

    rule = db.session.scalar(select(RoutingRule).where(RoutingRule.service_id.is_(None)))
    r = post(client, f"/routing/{rule.id}/delete", page="/routing")
    assert r.status_code == 302
    assert db.session.scalar(select(func.count()).select_from(RoutingRule)) == 1
    assert audited(db, "routing_rule", "create") == 2
    assert audited(db, "routing_rule", "delete") == 1


def test_a_routing_rule_needs_a_team(client, admin, theme, make_team):
    make_team("Estates")
    r = post(client, "/routing", {"theme": str(theme("Parking").id), "service": "",
                                  "team": ""})
    assert r.status_code == 400
    assert 'id="team-error"' in r.get_data(as_text=True)
    assert "Choose a team." in words(r)


# --- the theme model ---------------------------------------------------------------------------

@pytest.fixture
def stored_model(db: Any) -> Callable[..., Any]:
    """``stored_model(version, held_out=...)``: the shipped model stored as a candidate."""

    def make(version: str, held_out: int = 40, status: str = "candidate") -> Any:
        manifest, arrays = default_model().to_parts()
        figures = {"n": held_out, "micro_f1": 0.61, "macro_f1": 0.42, "themes_present": 12,
                   "sentiment_n": held_out, "sentiment_accuracy": 0.7}
        record = ThemeModelRecord(
            version=version, source="retrain", status=status,
            manifest={**manifest, "version": version}, arrays=arrays,
            evaluation={"held_out": held_out, "candidate": figures,
                        "active": {**figures, "micro_f1": 0.55},
                        "active_version": default_model().version, "active_id": None},
            training={"base_examples": 4993, "confirmed_used": 160,
                      "confirmed_held_out": held_out, "confirmed_total": 160 + held_out,
                      "labels": 40})
        db.session.add(record)
        db.session.commit()
        return record

    return make


def test_the_model_page_compares_a_candidate_and_switches_it_on_and_back(
    client, admin, stored_model, db,
):
    candidate = stored_model("test-candidate-1")
    page = words(client.get(f"{BASE}/model"))
    assert f"The model shipped with Engage: {default_model().version}." in page
    assert "test-candidate-1" in page and "0.61" in page and "0.55" in page
    assert "too few to judge" not in page

    r = post(client, f"/model/{candidate.id}/activate", page="/model")
    assert r.status_code == 302
    db.session.refresh(candidate)
    assert candidate.status == "active"
    assert active_model()[1] == candidate.id
    assert "Model test-candidate-1, switched on" in words(client.get(f"{BASE}/model"))

    r = post(client, "/model/shipped", page="/model")
    assert r.status_code == 302
    db.session.refresh(candidate)
    assert candidate.status == "retired" and active_model()[1] is None
    assert audited(db, "theme_model", "activate") == 2


def test_a_candidate_can_be_rejected_and_says_when_too_few_comments_were_held_out(
    client, admin, stored_model, db,
):
    candidate = stored_model("test-candidate-2", held_out=7)
    page = words(client.get(f"{BASE}/model"))
    assert "Only 7 confirmed comments were held out to test on." in page
    assert "too few to judge" in page
    r = post(client, f"/model/{candidate.id}/reject", page="/model")
    assert r.status_code == 302
    db.session.refresh(candidate)
    assert candidate.status == "rejected"
    assert audited(db, "theme_model", "reject") == 1
    # A rejected model is not switched on, even by a forged form.
    post(client, f"/model/{candidate.id}/activate", page="/model")
    db.session.refresh(candidate)
    assert candidate.status == "rejected" and active_model()[1] is None


def test_training_a_candidate_from_the_page(client, admin, db):
    from engage.feedback.learning import retrain_if_due

    r = post(client, "/model/train", page="/model")
    assert r.status_code == 302
    # Asked for, not done in the request: training can outlast it.
    assert db.session.scalar(select(ThemeModelRecord)) is None
    assert "the scheduler trains it within a minute" in words(client.get(f"{BASE}/model"))
    assert retrain_if_due() is not None  # the job's next run
    assert retrain_if_due() is None      # the request was answered
    candidate = db.session.scalar(select(ThemeModelRecord))
    assert candidate.status == "candidate" and active_model()[1] is None
    page = words(client.get(f"{BASE}/model"))
    assert candidate.version in page
    assert "No confirmed comments were held out to test on yet" in page


# --- safety rules ------------------------------------------------------------------------------

class _Fields(HTMLParser):
    """What a browser would send for the form with ``form_id`` (buttons left out)."""

    def __init__(self, form_id: str) -> None:
        super().__init__()
        self.form_id, self.inside = form_id, False
        self.fields: list[tuple[str, str]] = []
        self._textarea: str | None = None
        self._select: str | None = None
        self._options: list[tuple[str, bool]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.inside = a.get("id") == self.form_id
        if not self.inside or "name" not in a and tag != "option":
            return
        if tag == "input" and (a.get("type") != "checkbox" or "checked" in a):
            self.fields.append((a["name"], a.get("value", "")))
        elif tag == "textarea":
            self._textarea = a["name"]
            self.fields.append((a["name"], ""))
        elif tag == "select":
            self._select, self._options = a["name"], []
        elif tag == "option" and self._select:
            self._options.append((a.get("value", ""), "selected" in a))

    def handle_data(self, data: str) -> None:
        if self._textarea:
            name, value = self.fields[-1]
            self.fields[-1] = (name, value + data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False
        elif tag == "textarea":
            self._textarea = None
        elif tag == "select" and self._select:
            chosen = [v for v, s in self._options if s] or [self._options[0][0]]
            self.fields.append((self._select, chosen[0]))
            self._select = None


def rules_form(client: Any, **changes: str) -> dict[str, Any]:
    """The safety-rule editor as the page shows it, with ``changes`` typed in."""
    parser = _Fields("rules-form")
    parser.feed(client.get(f"{BASE}/safety").get_data(as_text=True))
    data: dict[str, Any] = {}
    for name, value in parser.fields:
        data.setdefault(name, []).append(value)
    data = {k: v if len(v) > 1 else v[0] for k, v in data.items()}
    new = int(data["rule_count"]) - 1  # the empty "Add a rule" set of fields
    data.update({k.replace("new-", f"rule-{new}-"): v for k, v in changes.items()})
    return data


def test_saving_the_rules_makes_a_version_the_checker_then_uses(client, admin, db):
    data = rules_form(client, **{
        "new-id": "stampede", "new-category": "danger",
        "new-description": "Animals loose on the ward",
        "new-phrases-en": "purple elephant* ... stampede\n\n", "new-phrases-es": "elefante morado",
        "note": "Test rule for the elephant problem", "action": "save"})
    r = client.post(f"{BASE}/safety", data=data)
    assert r.status_code == 302
    saved = db.session.scalar(select(SafetyRuleSet))
    assert saved.note == "Test rule for the elephant problem"
    rules, rules_id = active_rules()
    assert rules_id == saved.id
    assert [r.id for r in rules.rules] == [r.id for r in default_rules().rules] + ["stampede"]
    result = rules.check("Two purple elephants started a stampede", "en")
    assert result.urgent and result.reason == "stampede"
    # Everything else survived the round trip through the form.
    assert rules.to_dict()["rules"][:-1] == default_rules().to_dict()["rules"]
    assert audited(db, "safety_rules", "update") == 1
    page = words(client.get(f"{BASE}/safety"))
    assert f"In force: version {saved.id}" in page
    assert "Test rule for the elephant problem" in page


def test_an_invalid_rule_is_refused_with_the_problem_beside_it_and_nothing_lost(
    client, admin, db,
):
    data = rules_form(client, **{
        "new-id": "Not An Id!", "new-category": "danger", "new-description": "Typed by me",
        "new-phrases-en": "(unbalanced", "note": "Trying", "action": "save"})
    r = client.post(f"{BASE}/safety", data=data)
    assert r.status_code == 400
    html = r.get_data(as_text=True)
    assert "'id' must be lower-case letters" in words(r)
    assert "'(' without a matching ')'" in words(r)
    new = int(data["rule_count"]) - 1
    assert f'href="#rule-{new}"' in html  # the summary points at the rule's fieldset
    assert 'value="Not An Id!"' in html and 'value="Typed by me"' in html
    assert ">(unbalanced</textarea>" in html and ">Trying</textarea>" in html
    assert db.session.scalar(select(SafetyRuleSet)) is None


def test_saving_the_rules_needs_a_reason(client, admin, db):
    r = client.post(f"{BASE}/safety", data=rules_form(client, note=" ", action="save"))
    assert r.status_code == 400
    assert 'id="note-error"' in r.get_data(as_text=True)
    assert db.session.scalar(select(SafetyRuleSet)) is None


def test_the_version_name_is_checked_beside_its_field(client, admin, db):
    # Comments record "<version>#<id>" in 40 characters: a longer name would not fit.
    r = client.post(f"{BASE}/safety", data=rules_form(client, version="v" * 31, note="Long",
                                                       action="save"))
    assert r.status_code == 400
    assert 'id="version-error"' in r.get_data(as_text=True)
    assert "Use 30 characters or fewer." in words(r)
    r = client.post(f"{BASE}/safety", data=rules_form(client, version=" ", note="Empty",
                                                       action="save"))
    assert r.status_code == 400
    assert 'id="version-error"' in r.get_data(as_text=True)
    assert "'version' must be non-empty text" in words(r)
    assert db.session.scalar(select(SafetyRuleSet)) is None


def test_trying_a_comment_marks_what_matched(client, admin):
    data = rules_form(client, try_text="I want to kill myself tonight", action="try-live")
    r = client.post(f"{BASE}/safety", data=data)
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert '<mark class="danger-mark">kill myself<span class="vh">' in html
    assert "Urgent: the rule “suicide” fired (self-harm)." in words(r)
    assert ">I want to kill myself tonight</textarea>" in html


def test_trying_a_comment_with_the_rules_as_typed_saves_nothing(client, admin, db):
    data = rules_form(client, **{
        "new-id": "stampede", "new-category": "danger", "new-description": "Animals",
        "new-phrases-en": "stampede", "try_text": "There was a stampede",
        "action": "try-typed"})
    r = client.post(f"{BASE}/safety", data=data)
    assert r.status_code == 200
    assert "Urgent: the rule “stampede” fired (danger)." in words(r)
    assert 'value="stampede"' in r.get_data(as_text=True)  # the typed rule is still there
    live = client.post(f"{BASE}/safety", data={**data, "action": "try-live"})
    assert "No safety concern: no rule fired." in words(live)
    assert db.session.scalar(select(SafetyRuleSet)) is None


def test_an_old_version_can_be_viewed_and_restored_as_a_new_version(client, admin, db):
    for n, phrase in enumerate(("stampede", "charging rhino")):
        r = client.post(f"{BASE}/safety", data=rules_form(client, **{
            "new-id": f"animals-{n}", "new-category": "danger",
            "new-description": "Animals", "new-phrases-en": phrase,
            "note": f"Change {n}", "action": "save"}))
        assert r.status_code == 302
    first, second = db.session.scalars(select(SafetyRuleSet).order_by(SafetyRuleSet.id)).all()
    page = client.get(f"{BASE}/safety/versions/{first.id}")
    assert "animals-0" in words(page) and "Restore these rules" in words(page)
    r = post(client, f"/safety/versions/{first.id}/restore", {"note": "Rhino was a joke"},
             page=f"/safety/versions/{first.id}")
    assert r.status_code == 302
    newest = db.session.scalar(select(SafetyRuleSet).order_by(SafetyRuleSet.id.desc()))
    assert newest.id > second.id and newest.rules == first.rules
    assert f"Restored version {first.id}" in newest.note and "Rhino was a joke" in newest.note
    assert active_rules()[1] == newest.id
    # Back to the shipped rules the same way.
    r = post(client, "/safety/versions/shipped/restore", page="/safety/versions/shipped")
    assert r.status_code == 302
    assert active_rules()[0].to_dict() == default_rules().to_dict()


# --- reply templates ---------------------------------------------------------------------------

def test_the_built_in_templates_are_shown_with_the_placeholder(client, admin):
    page = words(client.get(f"{BASE}/replies"))
    assert "Thank you for your feedback" in page
    assert "your care at {service}" in page
    assert "English, Español, العربية" in page


def test_an_admin_writes_edits_and_stops_offering_a_reply_template(client, admin, db):
    r = post(client, "/replies/new", {"name": "Parking fines", "language": "es",
                                      "subject": "Su multa", "active": "1",
                                      "body": "Gracias por escribir sobre {service}."})
    assert r.status_code == 302
    template = db.session.scalar(select(ReplyTemplate))
    assert (template.language, template.active) == ("es", True)
    assert "Parking fines" in words(client.get(f"{BASE}/replies"))

    r = post(client, f"/replies/{template.id}", {
        "name": "Multas de aparcamiento", "language": "es", "subject": "Su multa",
        "body": "Gracias por escribirnos sobre {service}.", "active": "1"})
    assert r.status_code == 302
    db.session.refresh(template)
    assert template.name == "Multas de aparcamiento"

    r = post(client, f"/replies/{template.id}/active", {"active": ""}, page="/replies")
    assert r.status_code == 302
    db.session.refresh(template)
    assert template.active is False
    assert audited(db, "reply_template", "update") == 3


def test_a_reply_template_without_text_answers_400_keeping_what_was_typed(client, admin, db):
    r = post(client, "/replies/new", {"name": "Half written", "language": "en",
                                      "subject": "Kept subject", "body": "  "})
    assert r.status_code == 400
    html = r.get_data(as_text=True)
    assert "Write the text of the reply." in words(r)
    assert 'id="body-error"' in html and re.search(r'id="body"[^>]*aria-invalid="true"', html)
    assert 'value="Half written"' in html and 'value="Kept subject"' in html
    assert db.session.scalar(select(ReplyTemplate)) is None
