"""The API never reads or sets a cookie: only the key authenticates under ``/api/``.

Without this, a cookie sent beside a valid key changed the answer. Flask-Login reads the
session before it asks the request loader for the key: a staff session cookie from
another client made its "strong" protection empty the session and take the caller as
anonymous without consulting the key (401), and a ``remember_token`` cookie, even a
garbage one, is read instead of the key. Answers set cookies too: a permanent session is
sent again on every request (``SESSION_REFRESH_EACH_REQUEST``), and Flask-Login writes
back the session it emptied and clears its remember cookie.

A session-interface change would cover only Flask's own cookie, not Flask-Login's
remember cookie or anything an extension adds later; so this is WSGI middleware, one
place for both directions: an API request reaches Flask without its ``Cookie`` header,
and an API answer leaves without any ``Set-Cookie``. Every other path keeps its cookies.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment
    from flask import Flask

#: The API's path (as ``engage.core.permissions.is_api_request`` sees it).
API_PREFIX = "/api/"


class CookielessApi:
    """WSGI middleware: no cookie in, no cookie out, under ``/api/``."""

    def __init__(self, app: WSGIApplication) -> None:
        self.app = app

    def __call__(self, environ: WSGIEnvironment,
                 start_response: StartResponse) -> Iterable[bytes]:
        if not environ.get("PATH_INFO", "").startswith(API_PREFIX):
            return self.app(environ, start_response)
        environ.pop("HTTP_COOKIE", None)

        def without_cookies(status: str, headers: list[tuple[str, str]],
                            exc_info: Any = None) -> Any:
            kept = [(k, v) for k, v in headers if k.lower() != "set-cookie"]
            return start_response(status, kept, exc_info)

        return self.app(environ, without_cookies)


def init_app(app: Flask) -> None:
    """Wrap ``app``'s WSGI callable (called once by ``create_app``)."""
    app.wsgi_app = CookielessApi(app.wsgi_app)  # type: ignore[method-assign]
