"""Improvement teams: the list, a team's page with its queue, and the admin's team editor."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import func, select
from werkzeug.wrappers import Response as WerkzeugResponse

from engage.accounts.models import User
from engage.core.db import utcnow
from engage.core.permissions import has_permission, require
from engage.extensions import db
from engage.feedback import services as feedback
from engage.feedback.forms import ActionForm
from engage.feedback.models import OPEN_STATUSES, FeedbackItem, FeedbackRoute, RoutingRule
from engage.teams.models import ImprovementTeam
from engage.teams.services import TeamError, all_teams, find_team, save_team

bp = Blueprint("teams", __name__)


@bp.route("/teams")
@require("feedback.view")
def index() -> str:
    teams = all_teams()
    waiting = dict(db.session.execute(
        select(FeedbackRoute.team_id, func.count())
        .join(FeedbackItem, FeedbackItem.id == FeedbackRoute.item_id)
        .where(FeedbackItem.status.in_(OPEN_STATUSES)).group_by(FeedbackRoute.team_id)).all())
    return render_template("teams/index.html", teams=teams, waiting=waiting,
                           may_manage=has_permission(current_user, "teams.manage"))


@bp.route("/teams/<slug>")
@require("feedback.view")
def team(slug: str) -> str:
    found = find_team(slug)
    if found is None:
        abort(404)
    status = request.args.get("status", "open")
    f = feedback.InboxFilter(team=found.id, status=status if status in (
        "open", "all", "responded", "closed") else "open")
    now = utcnow()
    items = db.session.scalars(feedback.inbox_query(current_user, f, now).limit(200)).all()
    if items:
        from engage.audit.services import record, record_views

        record("view", "feedback_list", None, items=[i.id for i in items], team=found.slug)
        record_views("feedback_list", [i.patient_id for i in items if i.patient_id])
    rules = db.session.scalars(select(RoutingRule).where(RoutingRule.team_id == found.id)).all()
    kept = {"team": str(found.id)}
    return render_template(
        "teams/team.html", team=found, items=items, rules=rules, now=now, f=f,
        kept=kept, query_string=urlencode(kept), form=ActionForm(), teams=[found],
        may_triage=has_permission(current_user, "feedback.triage"),
        may_manage=has_permission(current_user, "teams.manage"),
    )


@bp.route("/teams/new", methods=["GET", "POST"])
@require("teams.manage")
def new() -> str | WerkzeugResponse | tuple[str, int]:
    return _edit(None)


@bp.route("/teams/<slug>/edit", methods=["GET", "POST"])
@require("teams.manage")
def edit(slug: str) -> str | WerkzeugResponse | tuple[str, int]:
    found = find_team(slug)
    if found is None:
        abort(404)
    return _edit(found)


def _edit(team: ImprovementTeam | None) -> str | WerkzeugResponse | tuple[str, int]:
    form = ActionForm()
    users = list(db.session.scalars(select(User).where(User.active.is_(True))
                                    .order_by(User.name, User.email)))
    values: dict[str, Any] = {
        "name": team.name if team else "", "slug": team.slug if team else "",
        "description": team.description if team else "", "email": (team.email or "") if team
        else "", "active": team.active if team else True,
        "members": [u.id for u in team.members] if team else [],
    }
    error: TeamError | None = None
    if request.method == "POST":
        if not form.validate_on_submit():
            abort(400)
        chosen = {int(i) for i in request.form.getlist("members") if i.isdigit()}
        values = {"name": request.form.get("name", ""), "slug": request.form.get("slug", ""),
                  "description": request.form.get("description", ""),
                  "email": request.form.get("email", ""),
                  "active": request.form.get("active") == "1", "members": sorted(chosen)}
        try:
            saved = save_team(team, slug=values["slug"], name=values["name"],
                              description=values["description"], email=values["email"],
                              active=values["active"],
                              members=[u for u in users if u.id in chosen])
        except TeamError as exc:
            error = exc
        else:
            flash(_("Team saved."))
            return redirect(url_for("teams.team", slug=saved.slug))
    page = render_template("teams/edit.html", team=team, form=form, values=values,
                           users=users, error=error)
    return (page, 400) if error else page
