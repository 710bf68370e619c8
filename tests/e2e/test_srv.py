"""The services protocol (ADR-32) of a running bridge, seen from outside: a real nats-server, `bridge
run` as a subprocess, nats-py asking `$SRV.PING/INFO/STATS`; every answer is checked against the
published JSON schemas (tests/schemas/micro_v1) and parsed with nats-py's own `nats.micro` types."""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path

import jsonschema
import pytest
from nats.micro.service import ServiceInfo, ServicePing, ServiceStats

from bridge import __version__
from bridge.runtime.srv import Identity, endpoint_name, endpoints_of, stats_response
from bridge.testing.bridgeproc import BridgeProcess, memory_config

SCHEMAS = Path(__file__).parent / "schemas" / "micro_v1"


def schema(verb: str) -> dict:
    return json.loads((SCHEMAS / f"{verb}_response.json").read_text())


def check(verb: str, document: dict) -> dict:
    """Valid against the schema; `started` really RFC 3339 (jsonschema checks `date-time` only with
    an optional package, so it is checked here)."""
    jsonschema.Draft7Validator(schema(verb), format_checker=jsonschema.FormatChecker()).validate(document)
    if verb == "stats":
        assert document["started"].endswith("Z")
        datetime.fromisoformat(document["started"].replace("Z", "+00:00"))
    return document


SUBSCRIPTIONS = """\
  - {subject: svc.one.clear, action: clear}
  - {subject: svc.one.set_pixel, action: set_pixel}
  - {subject: "svc.*.text", action: show_message, queue: texters}
"""


@pytest.fixture(scope="module")
def bridge(module_nats_server, nats_py, tmp_path_factory):
    process = BridgeProcess(memory_config(module_nats_server.url, "one", SUBSCRIPTIONS),
                            tmp_path_factory.mktemp("svc"), "one")
    with process.running(nats_py):
        yield process


def scatter(nats_py, subject: str, wait: float = 0.5) -> list[dict]:
    """Every answer to one request on `subject` within `wait` seconds."""
    inbox = nats_py.nc.new_inbox()
    answers = nats_py.subscribe(inbox)
    nats_py.publish(subject, b"", reply=inbox)
    time.sleep(wait)
    nats_py._run(answers.subscription.unsubscribe())
    return [json.loads(msg.data) for msg in answers.drain() if msg.data]


def ours(documents: list[dict], device: str = "one") -> list[dict]:
    return [d for d in documents if d.get("name") == "bridge" and (d.get("metadata") or {}).get("device") == device]


@pytest.mark.parametrize("verb", ["PING", "INFO", "STATS"])
def test_every_control_subject_answers_with_a_valid_response(bridge, nats_py, verb):
    pinged = ours(scatter(nats_py, "$SRV.PING.bridge"))
    assert len(pinged) == 1
    instance = pinged[0]["id"]
    for subject in (f"$SRV.{verb}", f"$SRV.{verb}.bridge", f"$SRV.{verb}.bridge.{instance}"):
        answers = ours(scatter(nats_py, subject))
        assert len(answers) == 1, (subject, answers)
        document = check(verb.lower(), answers[0])
        assert document["type"] == f"io.nats.micro.v1.{verb.lower()}_response"
        assert document["id"] == instance
        assert document["name"] == "bridge"
        assert document["version"] == __version__


def test_an_other_instance_id_is_not_answered(bridge, nats_py):
    assert ours(scatter(nats_py, "$SRV.PING.bridge.notthisone", wait=0.3)) == []
    assert ours(scatter(nats_py, "$SRV.PING.other", wait=0.3)) == []


def test_metadata_names_device_driver_host_config_and_server(bridge, nats_py, module_nats_server):
    document = check("ping", nats_py.request_json("$SRV.PING.bridge", timeout=5))
    metadata = document["metadata"]
    assert metadata["device"] == "one"
    assert metadata["driver"] == "memory"
    assert metadata["host"]
    assert metadata["config"] == f"file:{bridge.config_path.resolve()}"
    assert metadata["server"] == module_nats_server.url


def test_info_lists_each_subscription_as_an_endpoint(bridge, nats_py):
    document = check("info", nats_py.request_json("$SRV.INFO.bridge", timeout=5))
    assert document["description"]
    assert document["endpoints"] == [
        {"name": "svc_one_clear", "subject": "svc.one.clear", "queue_group": "", "metadata": {"action": "clear"}},
        {"name": "svc_one_set_pixel", "subject": "svc.one.set_pixel", "queue_group": "",
         "metadata": {"action": "set_pixel"}},
        {"name": "svc_any_text", "subject": "svc.*.text", "queue_group": "texters",
         "metadata": {"action": "show_message"}},
    ]


def endpoint(document: dict, name: str) -> dict:
    return next(e for e in document["endpoints"] if e["name"] == name)


def test_stats_count_requests_errors_and_processing_time(bridge, nats_py):
    before = check("stats", nats_py.request_json("$SRV.STATS.bridge", timeout=5))
    for _ in range(3):
        assert nats_py.request_json("svc.one.set_pixel", {"x": 1, "y": 1, "color": [1, 2, 3]}) == {"ok": True}
    for _ in range(2):
        assert nats_py.request_json("svc.one.set_pixel", {"x": 9, "y": 0, "color": [1, 2, 3]})["ok"] is False
    assert nats_py.request_json("svc.one.clear") == {"ok": True}
    after = check("stats", nats_py.request_json("$SRV.STATS.bridge", timeout=5))
    assert after["started"] == before["started"]
    was, now = endpoint(before, "svc_one_set_pixel"), endpoint(after, "svc_one_set_pixel")
    assert now["num_requests"] - was["num_requests"] == 5
    assert now["num_errors"] - was["num_errors"] == 2
    assert "0..7, got 9" in now["last_error"]
    assert now["processing_time"] > was["processing_time"]
    assert now["average_processing_time"] == now["processing_time"] // now["num_requests"]
    clear = endpoint(after, "svc_one_clear")
    assert clear["num_errors"] == 0 and clear["last_error"] == ""
    assert clear["num_requests"] - endpoint(before, "svc_one_clear")["num_requests"] == 1


def test_queue_group_subscription_keeps_its_semantics(bridge, nats_py):
    # svc.*.text is in queue group "texters": a second member of that group shares the messages,
    # so the bridge's subscription is still the configured queue subscription, not a plain one.
    rival = nats_py.subscribe("svc.*.text", queue_group="texters")
    before = endpoint(nats_py.request_json("$SRV.STATS.bridge", timeout=5), "svc_any_text")["num_requests"]
    for _ in range(40):
        nats_py.publish("svc.one.text", "x")
    nats_py.flush()
    time.sleep(0.5)
    after = endpoint(nats_py.request_json("$SRV.STATS.bridge", timeout=5), "svc_any_text")["num_requests"]
    taken = len(rival.drain())
    nats_py._run(rival.subscription.unsubscribe())
    assert taken > 0 and after - before > 0
    assert taken + (after - before) == 40


def test_nats_py_micro_reads_our_answers_and_sees_us_beside_its_own_service(bridge, nats_py):
    from nats.micro import add_service

    service = nats_py._run(add_service(nats_py.nc, name="other", version="1.2.3", description="a nats-py service"))
    try:
        everyone = scatter(nats_py, "$SRV.PING")
        assert {d["name"] for d in everyone} >= {"bridge", "other"}
        ping = ServicePing.from_dict(ours(everyone)[0])
        info = ServiceInfo.from_dict(ours(scatter(nats_py, "$SRV.INFO"))[0])
        stats = ServiceStats.from_dict(ours(scatter(nats_py, "$SRV.STATS"))[0])
        assert ping.id == info.id == stats.id
        assert ping.metadata["device"] == "one"
        assert [e.subject for e in info.endpoints] == ["svc.one.clear", "svc.one.set_pixel", "svc.*.text"]
        assert [e.name for e in stats.endpoints] == [e.name for e in info.endpoints]
        # and its answers pass the same schemas, so the schemas are not written around our output
        check("info", [d for d in scatter(nats_py, "$SRV.INFO.other")][0])
    finally:
        nats_py._run(service.stop())


# -- in memory ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("subject, action, name", [
    ("sense.pi.clear", "clear", "sense_pi_clear"),
    ("a.*.b", "clear", "a_any_b"),
    ("sense.>", "read_sensors", "sense_all"),
    ("weird.$sub-ject.x", "clear", "weird_sub-ject_x"),
])
def test_endpoint_names_are_valid(subject, action, name):
    assert endpoint_name(subject, action) == name
    assert jsonschema.Draft7Validator(schema("info")["properties"]["endpoints"]["items"]["properties"]["name"]).is_valid(name)


def test_repeated_endpoint_names_are_numbered_and_drops_count_as_errors():
    from types import SimpleNamespace

    from bridge.runtime.subscriptions import SubscriptionStats

    def item(queue, errors, dropped):
        config = SimpleNamespace(subject="a.b", queue=queue, action="clear")
        return SimpleNamespace(config=config, stats=SubscriptionStats(4, 4 - errors - dropped, errors, dropped, 400),
                               last_error="x")

    endpoints = endpoints_of([item(None, 1, 0), item("q", 1, 2)])
    assert [e.name for e in endpoints] == ["a_b", "a_b-2"]
    assert [e.num_errors for e in endpoints] == [1, 3]
    document = check("stats", stats_response(Identity("abc", "0.1.0", {}), "2024-01-01T00:00:00.000Z", endpoints))
    assert [e["average_processing_time"] for e in document["endpoints"]] == [100, 100]
    assert [e["queue_group"] for e in document["endpoints"]] == ["", "q"]
