"""ADR-32 error replies: a bridge endpoint that cannot do what it was asked answers with the
`Nats-Service-Error` and `Nats-Service-Error-Code` headers, read by nats-py as the requester."""

from __future__ import annotations

import json

import pytest

from bridge.actions import ActionFailed, PayloadError
from bridge.devices.worker import Dropped
from bridge.runtime.intake import RateLimited
from bridge.runtime.srv import service_error_code, service_error_headers
from bridge.testing.bridgeproc import BridgeProcess, memory_config


@pytest.mark.parametrize("error, code", [
    (PayloadError("clear: color: expected [r, g, b]"), 400),
    (Dropped("clear: queue full"), 503),
    (RateLimited("clear: rate limited"), 503),
    (ActionFailed("clear: the device failed"), 500),
    (RuntimeError("a bug"), 500),
])
def test_each_kind_of_endpoint_error_has_its_code(error, code):
    assert service_error_code(error) == code
    assert dict(service_error_headers(error).items()) == {"Nats-Service-Error": str(error),
                                                          "Nats-Service-Error-Code": str(code)}


def test_the_error_header_is_one_line_and_never_empty():
    assert service_error_headers(ValueError("first\r\nsecond")).get("Nats-Service-Error") == "first second"
    assert service_error_headers(ValueError()).get("Nats-Service-Error") == "ValueError"


@pytest.fixture(scope="module")
def bridge(module_nats_server, nats_py, tmp_path_factory):
    process = BridgeProcess(memory_config(module_nats_server.url, "errs", "  - {subject: errs.clear, action: clear}\n"),
                            tmp_path_factory.mktemp("errs"), "errs")
    with process.running(nats_py):
        yield process


def test_an_error_reply_carries_the_adr32_headers_and_a_success_none(bridge, nats_py):
    refused = nats_py.request("errs.clear", b'{"color": "purple"}')
    body = json.loads(refused.data)
    assert body["ok"] is False
    assert refused.headers == {"Nats-Service-Error": body["error"], "Nats-Service-Error-Code": "400"}
    fine = nats_py.request("errs.clear", b"")
    assert json.loads(fine.data) == {"ok": True} and not fine.headers
