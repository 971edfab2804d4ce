"""Error pages: translated HTML for people, a JSON problem for the API."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, current_app, g, jsonify, make_response, render_template, request
from flask_babel import lazy_gettext as _l
from flask_babel import refresh
from flask_wtf.csrf import CSRFError
from markupsafe import escape
from werkzeug.exceptions import HTTPException, InternalServerError, TooManyRequests
from werkzeug.http import HTTP_STATUS_CODES

from engage.core.i18n import supported
from engage.extensions import db

#: i18n: titles of error pages
TITLES = {
    400: _l("Something in that request was not right"),
    403: _l("You do not have access to this page"),
    404: _l("Page not found"),
    405: _l("That action is not allowed here"),
    410: _l("This page is no longer available"),
    413: _l("That was too much to send at once"),
    429: _l("Too many requests: please wait a moment"),
    500: _l("Something went wrong on our side"),
}


def register(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):  # type: ignore[no-untyped-def]
        return render_error(error.code or 500, getattr(error, "description", None))

    @app.errorhandler(CSRFError)
    def csrf_error(error: CSRFError):  # type: ignore[no-untyped-def]
        from flask_babel import gettext as _

        message = _("The form had expired. Please go back, reload the page and try again.")
        return render_error(400, error.description, message=message)

    @app.errorhandler(TooManyRequests)
    def too_many(error: TooManyRequests):  # type: ignore[no-untyped-def]
        # Registered for the code, so it wins over a blueprint's handler of every
        # HTTPException (the API's): a refused call always says when to come back.
        retry_after = max(1, int(getattr(error, "retry_after", None) or 60))
        if not g.get("locale"):
            # Refused before a patient page chose its language: honour the page's ?lang.
            g.locale = supported(request.args.get("lang"))
            refresh()
        response = make_response(render_error(429, None, retry_after=retry_after))
        response.headers["Retry-After"] = str(retry_after)
        return response

    @app.errorhandler(Exception)
    def unexpected(error: Exception):  # type: ignore[no-untyped-def]
        app.logger.exception("unhandled error on %s", request.path)
        return render_error(InternalServerError.code, None)


def render_error(code: int, detail: str | None, message: str | None = None,  # type: ignore[no-untyped-def]
                 **context: Any):
    """The error page (or problem JSON under ``/api/``) for ``code``.

    The request's transaction is rolled back first: after a failed statement the session
    refuses every query (``PendingRollbackError``), and the page itself reads the database
    (the signed-in user, the open-alert count in the staff header). Should the page still
    fail to render (the database gone), a plain page with no query stands in, so an error
    is never reported by a traceback.
    """
    _rollback()
    if request.path.startswith("/api/"):
        # Machines read these: the status phrase, as RFC 9457 asks, not a translated page title.
        return problem(code, detail)
    title = str(TITLES.get(code, TITLES[500]))
    g.error_page = True  # the staff header leaves out what it would read from the database
    template = "errors/429.html" if code == 429 else "error.html"
    try:
        return render_template(template, code=code, title=title, message=message,
                               **context), code
    except Exception:
        current_app.logger.exception("the error page failed on %s", request.path)
        _rollback()
        return _plain_page(code, title), code


def _rollback() -> None:
    try:
        db.session.rollback()
    except Exception:  # the connection itself is gone: nothing left to undo
        current_app.logger.warning("rollback failed before an error page", exc_info=True)


def _plain_page(code: int, title: str) -> Response:
    """An error page that needs no template, user or database."""
    response = make_response(
        f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{escape(title)}</title></head><body><h1>{escape(title)}</h1>"
        f"<p>{code}</p></body></html>", code)
    response.mimetype = "text/html"
    return response


def problem(status: int, detail: str | None = None, *, title: str | None = None,
            **extra: Any) -> Response:
    """An RFC 9457 problem details response (``application/problem+json``).

    ``title`` defaults to the HTTP status phrase, as RFC 9457 asks for the
    ``about:blank`` type; ``extra`` adds members such as ``errors``.
    """
    body: dict[str, Any] = {"type": "about:blank",
                            "title": title or HTTP_STATUS_CODES.get(status, "Error"),
                            "status": status}
    if detail:
        body["detail"] = str(detail)
    body.update(extra)
    response = jsonify(body)
    response.status_code = status
    response.mimetype = "application/problem+json"
    return response
