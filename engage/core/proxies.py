"""The client's address: taken from the trusted proxies in front, never from the client.

``request.remote_addr`` is what the audit log, rate limits and login throttling record.
With ``ENGAGE_TRUSTED_PROXIES`` = n, Werkzeug's ProxyFix takes it (and the scheme) from the
n right-most entries of X-Forwarded-For (and -Proto), the ones those proxies appended; with
0 the headers are ignored. Either way the forwarding headers are then removed from the
request, because libraries read them directly (Flask-Login's session protection takes the
first X-Forwarded-For entry, which the client wrote itself).
X-Forwarded-Host, -Port and -Prefix are never trusted: links are built from
``ENGAGE_BASE_URL``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

FORWARDING_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_HOST",
                      "HTTP_X_FORWARDED_PORT", "HTTP_X_FORWARDED_PREFIX", "HTTP_FORWARDED")


class DropForwardingHeaders:
    """WSGI middleware: the request as the app sees it carries no forwarding header."""

    def __init__(self, app: WSGIApplication) -> None:
        self.app = app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse
                 ) -> Iterable[bytes]:
        for key in FORWARDING_HEADERS:
            environ.pop(key, None)
        return self.app(environ, start_response)


def trust_proxies(app: Flask) -> None:
    """Install the address handling for ``app.config["TRUSTED_PROXIES"]`` proxies."""
    proxies = int(app.config.get("TRUSTED_PROXIES") or 0)
    wsgi: Any = DropForwardingHeaders(app.wsgi_app)
    if proxies > 0:
        wsgi = ProxyFix(wsgi, x_for=proxies, x_proto=proxies, x_host=0, x_port=0, x_prefix=0)
    app.wsgi_app = wsgi  # type: ignore[method-assign]
