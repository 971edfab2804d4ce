"""The admin's staff pages (blueprint "staff", /staff): the list, inviting, editing,
deactivating and reactivating, sending a password reset, lifting a login lock and removing a
lost second factor. All need ``users.manage``."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user
from sqlalchemy import select
from werkzeug.wrappers import Response as WerkzeugResponse

from engage.accounts import lifecycle, throttle, two_factor
from engage.accounts.account_forms import ROLE_LABELS, ConfirmForm, EditForm, InviteForm
from engage.accounts.login_models import SecondFactor
from engage.accounts.models import User
from engage.accounts.services import AccountError
from engage.core.i18n import LANGUAGE_NAMES
from engage.core.permissions import ROLES, require
from engage.extensions import db
from engage.org.models import Service, service_member

bp = Blueprint("staff", __name__, url_prefix="/staff")

#: The list's "status" filter.
STATUSES = ("active", "invited", "deactivated")
FIELDS = ("email", "name", "role", "services", "language")


def _id(value: str) -> int | None:
    """A row id from a form or query value; None for anything else (or too big for a
    database integer)."""
    return int(value) if value.isdigit() and len(value) <= 9 else None


def _user_or_404(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        abort(404)
    return user


def _second_factor_users(user_ids: list[int]) -> set[int]:
    """Which of these users have a second factor set up (one query for a whole list)."""
    if not user_ids:
        return set()
    return set(db.session.scalars(
        select(SecondFactor.user_id).where(SecondFactor.user_id.in_(user_ids))))


def status_of(user: User, invited: set[int]) -> str:
    if user.active:
        return "active"
    return "invited" if user.id in invited else "deactivated"


@bp.route("")
@require("users.manage")
def index() -> str:
    services = list(db.session.scalars(select(Service).order_by(Service.name)))
    role = request.args.get("role", "")
    service = request.args.get("service", "")
    status = request.args.get("status", "")
    query = select(User).order_by(User.name, User.email)
    if role in ROLES:
        query = query.where(User.role == role)
    if _id(service) is not None:
        query = query.where(User.id.in_(
            select(service_member.c.user_id).where(service_member.c.service_id == _id(service))))
    if status == "active":
        query = query.where(User.active.is_(True))
    elif status in ("invited", "deactivated"):
        query = query.where(User.active.is_(False))
    users = list(db.session.scalars(query))
    invited = lifecycle.open_invitations([u.id for u in users if not u.active])
    if status in ("invited", "deactivated"):
        users = [u for u in users if status_of(u, invited) == status]
    return render_template(
        "staff/index.html", users=users, services=services, roles=ROLES,
        role_labels=ROLE_LABELS, statuses=STATUSES, invited=invited, status_of=status_of,
        second_factor=_second_factor_users([u.id for u in users]),
        chosen={"role": role, "service": service, "status": status},
    )


def _fill_choices(form: InviteForm | EditForm) -> None:
    form.role.choices = [(r, str(ROLE_LABELS.get(r, r))) for r in ROLES]
    form.services.choices = [
        (str(s.id), s.name) for s in db.session.scalars(select(Service).order_by(Service.name))]
    form.language.choices = [("", _("The browser's language"))] + [
        (code, LANGUAGE_NAMES.get(code, code)) for code in current_app.config["LANGUAGES"]]


def _chosen_services(form: InviteForm | EditForm) -> list[Service] | None:
    values = [str(v) for v in form.services.data or []]
    ids = {i for i in map(_id, values) if i is not None}
    found = list(db.session.scalars(select(Service).where(Service.id.in_(ids)))) if ids else []
    if len(found) != len(set(values)):
        form.services.errors = [*form.services.errors, _("Choose services from the list.")]
        return None
    return found


def _language(form: InviteForm | EditForm) -> str | None:
    value = form.language.data or ""
    if value and value not in current_app.config["LANGUAGES"]:
        form.language.errors = [*form.language.errors, _("Choose a language from the list.")]
    return value or None


def _page(template: str, form: Any, **context: Any) -> str | tuple[str, int]:
    summary = [(form[key].id, message) for key in FIELDS if key in form
               for message in form[key].errors]
    page = render_template(template, form=form, summary=summary, **context)
    return (page, 400) if summary else page


@bp.route("/invite", methods=["GET", "POST"])
@require("users.manage")
def invite() -> str | WerkzeugResponse | tuple[str, int]:
    form = InviteForm()
    _fill_choices(form)
    if request.method == "GET":
        form.role.data = "staff"
    elif not form.csrf_token.validate(form):
        abort(400)
    elif form.validate():
        services = _chosen_services(form)
        language = _language(form)
        if services is not None and not form.language.errors:
            try:
                user = lifecycle.invite_user(
                    form.email.data or "", form.role.data or "", name=form.name.data or "",
                    services=services, language=language, by=current_user)
            except lifecycle.FieldError as exc:
                form[exc.field].errors = [*form[exc.field].errors, str(exc)]
            else:
                flash(_("Invitation sent to %(email)s. The link works for %(hours)d hours.",
                        email=user.email, hours=current_app.config["INVITE_HOURS"]))
                return redirect(url_for(".index"))
    return _page("staff/invite.html", form)


@bp.route("/<int:user_id>", methods=["GET", "POST"])
@require("users.manage")
def edit(user_id: int) -> str | WerkzeugResponse | tuple[str, int]:
    user = _user_or_404(user_id)
    if request.method == "POST":
        form = EditForm()
    else:
        form = EditForm(data={"name": user.name, "role": user.role,
                              "services": [str(s.id) for s in user.services],
                              "language": user.language or ""})
    _fill_choices(form)
    if request.method == "POST":
        if not form.csrf_token.validate(form):
            abort(400)
        if form.validate():
            services = _chosen_services(form)
            language = _language(form)
            if services is not None and not form.language.errors:
                try:
                    changed = lifecycle.update_user(
                        user, name=form.name.data or "", role=form.role.data or "",
                        services=services, language=language, by=current_user)
                except lifecycle.FieldError as exc:
                    form[exc.field].errors = [*form[exc.field].errors, str(exc)]
                else:
                    if changed:
                        flash(_("Changes to %(email)s saved.", email=user.email))
                    else:
                        flash(_("Nothing was changed."))
                    return redirect(url_for(".index"))
    invited = lifecycle.open_invitations([user.id])
    return _page("staff/edit.html", form, user=user, status=status_of(user, invited),
                 second_factor=user.id in _second_factor_users([user.id]),
                 locked=throttle.current_lock(user.email, None),
                 role_labels=ROLE_LABELS, confirm=ConfirmForm())


def _confirm(user_id: int, action: str) -> str | WerkzeugResponse | tuple[str, int]:
    """A confirmation page, then the action: deactivate, reactivate, reset, resend, unlock
    (lift a login lock) or reset-2fa (remove a lost second factor)."""
    user = _user_or_404(user_id)
    form = ConfirmForm()
    error = None
    if request.method == "POST":
        if not form.validate_on_submit():
            abort(400)
        try:
            if action == "deactivate":
                ended = lifecycle.deactivate(user, by=current_user)
                flash(ngettext("%(email)s is deactivated; %(num)d session was ended.",
                               "%(email)s is deactivated; %(num)d sessions were ended.",
                               ended, email=user.email))
            elif action == "reactivate":
                invitation = user.password_changed_at is None
                lifecycle.reactivate(user, by=current_user)
                flash(_("A new invitation was sent to %(email)s.", email=user.email)
                      if invitation else _("%(email)s can log in again.", email=user.email))
            elif action == "reset":
                lifecycle.send_password_reset(user, by=current_user)
                flash(_("A password reset link was sent to %(email)s. It works for %(hours)d "
                        "hours.", email=user.email, hours=current_app.config["RESET_HOURS"]))
            elif action == "unlock":
                throttle.unlock(user)
                flash(_("%(email)s can try to log in again now.", email=user.email))
            elif action == "reset-2fa":
                two_factor.reset(user)
                flash(_("The second factor of %(email)s is removed. They set up a new one "
                        "at their next login.", email=user.email)
                      if two_factor.required_for(user) else
                      _("The second factor of %(email)s is removed. They can set up a new "
                        "one on their account page.", email=user.email))
            else:
                lifecycle.resend_invitation(user, by=current_user)
                flash(_("A new invitation was sent to %(email)s.", email=user.email))
        except AccountError as exc:
            error = str(exc)
        else:
            return redirect(url_for(".edit", user_id=user.id))
    page = render_template("staff/confirm.html", user=user, action=action, form=form,
                           error=error, self_action=user.id == current_user.id)
    return (page, 400) if error else page


@bp.route("/<int:user_id>/deactivate", methods=["GET", "POST"])
@require("users.manage")
def deactivate(user_id: int) -> str | WerkzeugResponse | tuple[str, int]:
    return _confirm(user_id, "deactivate")


@bp.route("/<int:user_id>/reactivate", methods=["GET", "POST"])
@require("users.manage")
def reactivate(user_id: int) -> str | WerkzeugResponse | tuple[str, int]:
    return _confirm(user_id, "reactivate")


@bp.route("/<int:user_id>/reset-password", methods=["GET", "POST"])
@require("users.manage")
def reset_password(user_id: int) -> str | WerkzeugResponse | tuple[str, int]:
    return _confirm(user_id, "reset")


@bp.route("/<int:user_id>/resend-invitation", methods=["GET", "POST"])
@require("users.manage")
def resend_invitation(user_id: int) -> str | WerkzeugResponse | tuple[str, int]:
    return _confirm(user_id, "resend")


@bp.route("/<int:user_id>/unlock", methods=["GET", "POST"])
@require("users.manage")
def unlock(user_id: int) -> str | WerkzeugResponse | tuple[str, int]:
    return _confirm(user_id, "unlock")


@bp.route("/<int:user_id>/reset-second-factor", methods=["GET", "POST"])
@require("users.manage")
def reset_second_factor(user_id: int) -> str | WerkzeugResponse | tuple[str, int]:
    return _confirm(user_id, "reset-2fa")
