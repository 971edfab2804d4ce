"""Pages of the second factor: the code at login, setting it up (at login when the role
requires it, or from the own account), turning it off, and new recovery codes."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user
from werkzeug.wrappers import Response as WerkzeugResponse

from engage.accounts import login as policy
from engage.accounts.login import SETUP_KEY, Step
from engage.accounts.models import User
from engage.accounts.two_factor import (
    FactorError,
    check_code,
    disable,
    enrol,
    factor_of,
    new_secret,
    provisioning_uri,
    qr_data_uri,
    recovery_codes_left,
    regenerate_recovery_codes,
    required_for,
)
from engage.accounts.two_factor_forms import CodeForm, SetupForm
from engage.core.permissions import LOGGED_IN, public, require

bp = Blueprint("two_factor", __name__)

#: Where a user whose role requires a second factor may go before setting one up.
_ALLOWED_WITHOUT_FACTOR = {"two_factor.setup", "accounts.logout", "static"}


@bp.before_app_request
def require_second_factor() -> WerkzeugResponse | None:
    """A logged-in user whose role requires a second factor and who has none (the role
    was changed, an admin reset it, the setting was turned on) sets one up first."""
    if (request.endpoint in _ALLOWED_WITHOUT_FACTOR or request.path.startswith("/api/")
            or not current_user.is_authenticated
            or not isinstance(current_user._get_current_object(), User)):
        return None
    if required_for(current_user) and factor_of(current_user) is None:
        return redirect(url_for("two_factor.setup"))
    return None


def _wrong_code() -> str:
    return _("That code is not right. Check your authenticator app and try again; each "
             "code works once.")


@bp.route("/login/two-factor", methods=["GET", "POST"])
@public
def verify() -> str | WerkzeugResponse:
    """The second step of a login: the code from the app, or a recovery code."""
    if current_user.is_authenticated:
        return redirect(url_for("accounts.home"))
    held = policy.pending(Step.CODE)
    if held is None:
        flash(_("Please log in again: the time to enter the code ran out."))
        return redirect(url_for("accounts.login"))
    user, next_url = held
    form = CodeForm()
    error = None
    if form.validate_on_submit():
        lock = policy.code_refused_by_lock(user)
        if lock is None:
            factor = check_code(user, form.code.data or "")
            if factor is not None:
                policy.complete(user, factor)
                if factor == "recovery":
                    left = recovery_codes_left(user)
                    flash(ngettext(
                        "You used a recovery code; %(num)d is left. If you have lost your "
                        "phone, ask an admin to reset your second factor.",
                        "You used a recovery code; %(num)d are left. If you have lost your "
                        "phone, ask an admin to reset your second factor.", left))
                return redirect(next_url)
            lock = policy.code_failed(user)
            if lock is None:
                error = _wrong_code()
        if lock is not None:
            policy.drop_pending()
            flash(policy.lock_message(lock))
            return redirect(url_for("accounts.login"))
    return render_template("two_factor/verify.html", form=form, error=error)


def _setup_secret() -> str:
    secret = session.get(SETUP_KEY)
    if not isinstance(secret, str) or len(secret) != 32:
        secret = new_secret()
        session[SETUP_KEY] = secret
    return secret


def _setup_page(user: User, form: SetupForm, error: str | None, forced: bool,
                action: str) -> str:
    secret = _setup_secret()
    uri = provisioning_uri(user, secret)
    return render_template(
        "two_factor/setup.html", form=form, error=error, forced=forced, qr=qr_data_uri(uri),
        secret=" ".join(secret[i:i + 4] for i in range(0, len(secret), 4)),
        action=action,
    )


def _enrol_from_form(user: User, form: SetupForm) -> list[str] | None:
    secret = session.get(SETUP_KEY)
    if not isinstance(secret, str):
        return None
    try:
        codes = enrol(user, secret, form.code.data or "")
    except FactorError:
        return None
    session.pop(SETUP_KEY, None)
    return codes


@bp.route("/login/two-factor/setup", methods=["GET", "POST"], endpoint="enrol")
@public
def enrol_at_login() -> str | WerkzeugResponse:
    """After the password, for a user whose role requires a second factor they lack."""
    if current_user.is_authenticated:
        return redirect(url_for("accounts.home"))
    held = policy.pending(Step.ENROL)
    if held is None:
        flash(_("Please log in again: the time to set up your authenticator ran out."))
        return redirect(url_for("accounts.login"))
    user, next_url = held
    form = SetupForm()
    error = None
    if form.validate_on_submit():
        codes = _enrol_from_form(user, form)
        if codes is not None:
            policy.complete(user, "totp")
            return render_template("two_factor/recovery_codes.html", codes=codes,
                                   next_url=next_url)
        error = _("That code does not match. Check that the time on your phone is right, "
                  "and enter the code the app shows now.")
    return _setup_page(user, form, error, forced=True, action=url_for("two_factor.enrol"))


@bp.route("/account/two-factor")
@require(LOGGED_IN)
def account() -> str:
    """The own second factor: whether it is on, recovery codes left, what can be done."""
    return render_template("two_factor/account.html")


@bp.route("/account/two-factor/setup", methods=["GET", "POST"])
@require(LOGGED_IN)
def setup() -> str | WerkzeugResponse:
    user = current_user._get_current_object()
    if factor_of(user) is not None:
        flash(_("Your second factor is already set up. To move it to a new phone, turn it "
                "off and set it up again, or ask an admin to reset it."))
        return redirect(url_for("two_factor.account"))
    form = SetupForm()
    error = None
    if form.validate_on_submit():
        codes = _enrol_from_form(user, form)
        if codes is not None:
            return render_template("two_factor/recovery_codes.html", codes=codes,
                                   next_url=url_for("two_factor.account"))
        error = _("That code does not match. Check that the time on your phone is right, "
                  "and enter the code the app shows now.")
    return _setup_page(user, form, error, forced=required_for(user),
                       action=url_for("two_factor.setup"))


@bp.route("/account/two-factor/disable", methods=["GET", "POST"], endpoint="disable")
@require(LOGGED_IN)
def disable_factor() -> str | WerkzeugResponse:
    """Turning the second factor off, confirmed with a current code."""
    user = current_user._get_current_object()
    if factor_of(user) is None:
        return redirect(url_for("two_factor.account"))
    if required_for(user):
        flash(_("Your role must log in with a second factor, so it cannot be turned off. "
                "An admin can reset it if you have lost your phone."))
        return redirect(url_for("two_factor.account"))
    form = CodeForm()
    error = None
    if form.validate_on_submit():
        if check_code(user, form.code.data or "") is not None:
            try:
                disable(user)
            except FactorError:  # the role became one that requires it meanwhile
                return redirect(url_for("two_factor.account"))
            flash(_("Your second factor is off. Logging in now needs only your password."))
            return redirect(url_for("two_factor.account"))
        policy.code_failed(user)
        error = _wrong_code()
    return render_template("two_factor/confirm.html", form=form, error=error,
                           purpose="disable")


@bp.route("/account/two-factor/recovery-codes", methods=["GET", "POST"])
@require(LOGGED_IN)
def recovery_codes() -> str | WerkzeugResponse:
    """New recovery codes (the old ones stop working), confirmed with a current code."""
    user = current_user._get_current_object()
    if factor_of(user) is None:
        return redirect(url_for("two_factor.account"))
    form = CodeForm()
    error = None
    if form.validate_on_submit():
        if check_code(user, form.code.data or "") is not None:
            codes = regenerate_recovery_codes(user)
            return render_template("two_factor/recovery_codes.html", codes=codes,
                                   next_url=url_for("two_factor.account"))
        policy.code_failed(user)
        error = _wrong_code()
    return render_template("two_factor/confirm.html", form=form, error=error,
                           purpose="recovery")



@bp.app_template_global()
def second_factor_status(user: User) -> dict[str, object]:
    """What ``templates/account/_second_factor.html`` shows (the account page includes it)."""
    on = factor_of(user) is not None
    return {"on": on, "required": required_for(user),
            "left": recovery_codes_left(user) if on else 0}
