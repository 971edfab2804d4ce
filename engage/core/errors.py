"""Error pages: translated HTML for people, a JSON problem for the API."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, jsonify, render_template, request
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.http import HTTP_STATUS_CODES

#: i18n: titles of error pages
TITLES = {
    400: _l("Something in that request was not right"),
    403: _l("You do not have access to this page"),
    404: _l("Page not found"),
    405: _l("That action is not allowed here"),
    410: _l("This page is no longer available"),
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

    @app.errorhandler(Exception)
    def unexpected(error: Exception):  # type: ignore[no-untyped-def]
        app.logger.exception("unhandled error on %s", request.path)
        return render_error(InternalServerError.code, None)


def render_error(code: int, detail: str | None, message: str | None = None):  # type: ignore[no-untyped-def]
    if request.path.startswith("/api/"):
        # Machines read these: the status phrase, as RFC 9457 asks, not a translated page title.
        return problem(code, detail)
    title = str(TITLES.get(code, TITLES[500]))
    return render_template("error.html", code=code, title=title, message=message), code


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
