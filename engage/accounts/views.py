"""Login, logout, and the home page that sends each role where its work is."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.wrappers import Response as WerkzeugResponse

from engage.accounts import login as login_policy
from engage.accounts.forms import LoginForm
from engage.accounts.models import SessionEnd, User
from engage.accounts.sessions import end_current_session, load_session_user
from engage.audit.services import record
from engage.core.permissions import LOGGED_IN, is_api_request, public, require
from engage.extensions import login_manager

bp = Blueprint("accounts", __name__)

login_manager.login_view = "accounts.login"
login_manager.session_protection = "strong"


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    if is_api_request():
        return None  # a staff session never authenticates an API call; only a key does
    user = load_session_user(user_id)
    ended = g.pop("engage_session_ended", None)
    if ended == SessionEnd.IDLE:
        flash(_("You were logged out after a period without activity. Please log in again."))
    elif ended == SessionEnd.EXPIRED:
        flash(_("Your session has expired. Please log in again."))
    return user


def _safe_next(target: str | None) -> str | None:
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


@bp.route("/login", methods=["GET", "POST"])
@public
def login() -> str | WerkzeugResponse:
    if current_user.is_authenticated:
        return redirect(url_for("accounts.home"))
    form = LoginForm()
    error = None
    if form.validate_on_submit():
        # Throttling, lock-out, auditing and the second factor: engage/accounts/login.py.
        outcome = login_policy.check_password(form.email.data or "", form.password.data or "")
        next_url = _safe_next(request.args.get("next")) or url_for("accounts.home")
        if outcome.user is not None and outcome.step == login_policy.Step.DONE:
            login_policy.complete(outcome.user, None)
            return redirect(next_url)
        if outcome.user is not None:
            login_policy.begin_pending(outcome.user, next_url, outcome.step)
            return redirect(url_for("two_factor.verify" if outcome.step == login_policy.Step.CODE
                                    else "two_factor.enrol"))
        error = (login_policy.lock_message(outcome.lock) if outcome.lock else
                 _("That email and password do not match an active account."))
    return render_template("accounts/login.html", form=form, error=error)


@bp.route("/logout", methods=["POST"])
@require(LOGGED_IN)
def logout() -> WerkzeugResponse:
    record("logout", "user", current_user.id)
    end_current_session(SessionEnd.LOGOUT)
    flash(_("You are logged out."))
    return redirect(url_for("accounts.login"))


@bp.route("/")
@public
def home() -> str | WerkzeugResponse:
    if not current_user.is_authenticated:
        return redirect(url_for("accounts.login"))
    if current_user.role == "council":
        return render_template("accounts/council_home.html")
    if current_user.role == "safeguarding":
        return redirect(url_for("feedback.inbox", safety=1))
    if current_user.role == "safety_officer":
        return redirect(url_for("safety.misses"))
    return redirect(url_for("org.services"))
