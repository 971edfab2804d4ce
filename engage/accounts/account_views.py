"""Everyone's own account page (blueprint "account": password, language, sessions) and the
pages a password link opens: "forgot password" and setting a password from a link."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.wrappers import Response as WerkzeugResponse

from engage.accounts import lifecycle
from engage.accounts.account_forms import (
    ChangePasswordForm,
    ConfirmForm,
    ForgotForm,
    LanguageForm,
    SetPasswordForm,
)
from engage.accounts.models import SessionEnd, TokenPurpose, User
from engage.accounts.sessions import (
    current_session,
    end_current_session,
    end_session,
    open_sessions,
)
from engage.core.i18n import LANGUAGE_NAMES
from engage.core.permissions import LOGGED_IN, public, require
from engage.extensions import db

bp = Blueprint("account", __name__)


def _language_form(data: bool = False) -> LanguageForm:
    form = LanguageForm() if not data else LanguageForm(
        data={"language": current_user.language or ""})
    form.language.choices = [("", _("The browser's language"))] + [
        (code, LANGUAGE_NAMES.get(code, code)) for code in current_app.config["LANGUAGES"]]
    return form


def _account_page(password_form: ChangePasswordForm | None = None,
                  language_form: LanguageForm | None = None) -> str | tuple[str, int]:
    password_form = password_form or ChangePasswordForm(formdata=None)
    language_form = language_form or _language_form(data=True)
    summary = [(f.id, message) for form in (password_form, language_form) for f in form
               for message in f.errors if f.name != "csrf_token"]
    page = render_template(
        "account/index.html", password_form=password_form, language_form=language_form,
        sessions=open_sessions(current_user), current=current_session(),
        end_form=ConfirmForm(), summary=summary)
    return (page, 400) if summary else page


@bp.route("/account")
@require(LOGGED_IN)
def index() -> str | tuple[str, int]:
    return _account_page()


@bp.route("/account/password", methods=["POST"])
@require(LOGGED_IN)
def change_password() -> str | WerkzeugResponse | tuple[str, int]:
    form = ChangePasswordForm()
    if not form.csrf_token.validate(form):
        abort(400)
    if form.validate():
        try:
            ended = lifecycle.change_password(
                current_user, form.current_password.data or "", form.password.data or "",
                keep=current_session())
        except lifecycle.FieldError as exc:
            form[exc.field].errors = [*form[exc.field].errors, str(exc)]
        else:
            if ended:
                flash(_("Your password is changed. Your other sessions were ended."))
            else:
                flash(_("Your password is changed."))
            return redirect(url_for(".index"))
    return _account_page(password_form=form)


@bp.route("/account/language", methods=["POST"])
@require(LOGGED_IN)
def change_language() -> str | WerkzeugResponse | tuple[str, int]:
    form = _language_form()
    if not form.validate_on_submit():
        abort(400)
    value = form.language.data or ""
    if value and value not in current_app.config["LANGUAGES"]:
        form.language.errors = [_("Choose a language from the list.")]
        return _account_page(language_form=form)
    lifecycle.set_language(current_user, value or None)
    flash(_("Your language is saved."))
    return redirect(url_for(".index"))


@bp.route("/account/sessions/<int:session_id>/end", methods=["POST"])
@require(LOGGED_IN)
def end(session_id: int) -> WerkzeugResponse:
    form = ConfirmForm()
    if not form.validate_on_submit():
        abort(400)
    this = current_session()
    if not end_session(current_user, session_id):
        abort(404)  # not one of theirs, or already ended
    if this is not None and this.id == session_id:
        end_current_session(SessionEnd.ENDED)
        flash(_("You are logged out."))
        return redirect(url_for("accounts.login"))
    flash(_("That session is ended: its browser must log in again."))
    return redirect(url_for(".index", _anchor="sessions"))


@bp.route("/password/forgot", methods=["GET", "POST"])
@public
def forgot() -> str | tuple[str, int]:
    form = ForgotForm()
    if request.method == "POST":
        if not form.csrf_token.validate(form):
            abort(400)
        if form.validate():
            lifecycle.forgot_password(form.email.data or "")
            # The same answer whether or not the address has an account.
            return render_template("account/forgot_sent.html",
                                   hours=current_app.config["RESET_HOURS"])
        return render_template("account/forgot.html", form=form), 400
    return render_template("account/forgot.html", form=form)


@bp.route("/password/<token>", methods=["GET", "POST"])
@public
def set_password(token: str) -> str | WerkzeugResponse | tuple[str, int]:
    row = lifecycle.find_token(token)
    if row is None:
        return render_template("account/link_invalid.html"), 404
    form = SetPasswordForm()
    if request.method == "POST":
        if not form.csrf_token.validate(form):
            abort(400)
        if form.validate():
            try:
                user = lifecycle.use_token(row, form.password.data or "")
            except lifecycle.FieldError as exc:
                form[exc.field].errors = [*form[exc.field].errors, str(exc)]
            else:
                if current_user.is_authenticated:
                    end_current_session(SessionEnd.PASSWORD)
                flash(_("Your password is set. Log in with %(email)s and the new password.",
                        email=user.email))
                return redirect(url_for("accounts.login"))
    owner = db.session.get(User, row.user_id)
    summary = [(f.id, message) for f in form for message in f.errors
               if f.name != "csrf_token"]
    page = render_template("account/set_password.html", form=form, user=owner,
                           invitation=row.purpose == TokenPurpose.INVITE, summary=summary)
    return (page, 400) if summary else page
