"""Channels: the SMS HTTP gateway (against a real local HTTP server), GSM-7 sizing, SMS dispatch."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest

from engage.delivery.channels import (
    HttpGatewaySms,
    PermanentError,
    Sms,
    TransientError,
    sms_segments,
    sms_units,
)


class Gateway:
    """A real HTTP server on 127.0.0.1 that records JSON posts and answers a chosen status."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.status = 200
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers["Content-Length"])
                gateway.received.append(json.loads(self.rfile.read(length)))
                gateway.headers.append(dict(self.headers))
                self.send_response(gateway.status)
                self.end_headers()
                self.wfile.write(b'{"id": "abc"}')

            def log_message(self, *args: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/sms"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    gw = Gateway()
    yield gw
    gw.close()


def test_gateway_receives_json_with_the_token(gateway):
    HttpGatewaySms(gateway.url, token="s3cret", sender="Engage").send(Sms("+447700900123", "Hi"))
    assert gateway.received == [{"to": "+447700900123", "from": "Engage", "body": "Hi"}]
    assert gateway.headers[0]["Authorization"] == "Bearer s3cret"
    assert gateway.headers[0]["Content-Type"] == "application/json"


@pytest.mark.parametrize("status, error", [(500, TransientError), (503, TransientError),
                                           (429, TransientError), (400, PermanentError)])
def test_gateway_errors_are_sorted_into_transient_and_permanent(gateway, status, error):
    gateway.status = status
    with pytest.raises(error):
        HttpGatewaySms(gateway.url).send(Sms("+447700900123", "Hi"))


def test_an_unreachable_gateway_is_transient():
    with pytest.raises(TransientError):
        HttpGatewaySms("http://127.0.0.1:1/sms", timeout=2).send(Sms("+1", "x"))


def test_gsm7_counting():
    assert sms_units("Hello {world}") == ("gsm7", 15)  # braces take two septets each
    assert sms_units("Hola, ¿cómo está?")[0] == "ucs2"  # ó is not in GSM-7
    assert sms_units("مرحبا")[0] == "ucs2"
    assert sms_segments("a" * 160) == 1
    assert sms_segments("a" * 161) == 2
    assert sms_segments("ب" * 70) == 1
    assert sms_segments("ب" * 71) == 2


def test_sms_dispatch_fits_one_gsm7_message_in_english(
    app, gateway, make_protocol, enrol_patient, db
):
    from engage.delivery.services import dispatch
    from engage.scheduling.services import TimepointSpec

    app.config.update(SMS_BACKEND="http", SMS_GATEWAY_URL=gateway.url)
    try:
        protocol = make_protocol(timepoints=[
            TimepointSpec("Visit", "+1d", ["fft"], "0", "+3d", ["+1d"], "sms")])
        enrol_patient(protocol, "2027-03-01T10:00", email="", phone="+447700900123")
        dispatch(datetime(2027, 3, 2, 10, 5, tzinfo=UTC))
    finally:
        app.config.update(SMS_BACKEND="console", SMS_GATEWAY_URL=None)
    assert len(gateway.received) == 1
    sms = gateway.received[0]
    assert sms["to"] == "+447700900123"
    assert "http://engage.test/s/" in sms["body"]
    assert "http://engage.test/u/" in sms["body"]
    assert sms_units(sms["body"])[0] == "gsm7"
    assert sms_segments(sms["body"]) == 1, (len(sms["body"]), sms["body"])
