"""A subscription's limits seen from outside: `bridge run` (memory driver) as a subprocess, a real
nats-server, and nats-py as the publisher. Every bad message gets an error reply and a count;
the log gets a summary instead of a line per message."""

from __future__ import annotations

import json
import time

import pytest

from bridge.testing.bridgeproc import BridgeProcess


def config_text(url: str, device_id: str) -> str:
    return f"""\
version: 1
device: {{id: {device_id}, driver: memory}}
nats:
  servers: ["{url}"]
subscriptions:
  - {{subject: lim.rotate, action: set_rotation}}
  - {{subject: lim.pixel, action: set_pixel}}
  - {{subject: lim.small, action: show_message, max_payload: 100}}
  - subject: lim.locked
    action: show_message
    args: {{scroll_speed: 0.05}}
    locked: [scroll_speed]
  - {{subject: lim.short, action: show_message, max_scroll: 10s}}
  - {{subject: lim.rate, action: clear, rate: 5/s, burst: 3}}
"""


@pytest.fixture(scope="module")
def bridge(module_nats_server, nats_py, tmp_path_factory):
    process = BridgeProcess(config_text(module_nats_server.url, "lim"), tmp_path_factory.mktemp("bridge"), "lim").start()
    try:
        process.wait_ready(nats_py)
        yield process
    finally:
        assert process.stop() == 0, process.logs()


def stats(bridge, nats_py, subject: str) -> dict:
    return {s["subject"]: s for s in bridge.info(nats_py)["subscriptions"]}[subject]


@pytest.mark.parametrize("payload", ["²", "9" * 5000])
def test_rotation_digits_that_are_no_int_get_an_error_reply_and_are_counted(bridge, nats_py, payload):
    before = stats(bridge, nats_py, "lim.rotate")["errors"]
    reply = nats_py.request_json("lim.rotate", payload)
    assert reply["ok"] is False and reply["error"].startswith("set_rotation: payload must be 0, 90, 180 or 270")
    assert stats(bridge, nats_py, "lim.rotate")["errors"] == before + 1
    assert "Traceback" not in bridge.logs()
    assert nats_py.request_json("lim.rotate", "90") == {"ok": True}


def test_a_flood_of_bad_messages_is_summarised_in_the_log(bridge, nats_py):
    count = 20_000
    for index in range(count):
        nats_py.publish("lim.pixel", b"not json")
    nats_py.flush()
    deadline = time.monotonic() + 30
    while stats(bridge, nats_py, "lim.pixel")["errors"] < count and time.monotonic() < deadline:
        time.sleep(0.1)
    assert stats(bridge, nats_py, "lim.pixel")["errors"] == count
    lines = [r for r in bridge.log_records() if "lim.pixel" in json.dumps(r)]
    assert 1 <= len(lines) <= 3, lines[:5]  # the first in full, then at most a summary per 10 s


def test_a_payload_over_max_payload_gets_an_error_reply(bridge, nats_py):
    reply = nats_py.request_json("lim.small", "x" * 101)
    assert reply == {"ok": False, "error": "show_message: payload is 101 bytes, more than this subscription's max_payload of 100"}
    assert nats_py.request_json("lim.small", '{"text": "hi"}'.ljust(100)) == {"ok": True}


def test_a_locked_arg_cannot_be_set_by_a_payload(bridge, nats_py):
    reply = nats_py.request_json("lim.locked", {"text": "hi", "scroll_speed": 1})
    assert reply["ok"] is False and "scroll_speed is locked" in reply["error"]
    assert nats_py.request_json("lim.locked", {"text": "hi"}) == {"ok": True}


def test_a_scroll_longer_than_max_scroll_gets_an_error_reply(bridge, nats_py):
    reply = nats_py.request_json("lim.short", {"text": "x" * 100, "scroll_speed": 0.1})  # up to 60.8 s
    assert reply["ok"] is False and "more than this subscription's max_scroll of 10 s" in reply["error"]
    assert nats_py.request_json("lim.short", {"text": "x" * 10, "scroll_speed": 0.001}) == {"ok": True}


def test_past_the_rate_a_message_is_rate_limited_and_counted_as_dropped(bridge, nats_py):
    before = stats(bridge, nats_py, "lim.rate")
    inbox = nats_py.subscribe("lim.rate.replies")
    for _ in range(10):
        nats_py.publish("lim.rate", b"", reply="lim.rate.replies")
    replies = [inbox.next_json() for _ in range(10)]
    limited = [r for r in replies if r != {"ok": True}]
    assert 6 <= len(limited) <= 7, replies  # a burst of 3, and maybe one more token within the burst's time
    assert all(r["error"].startswith("clear: rate limited") for r in limited)
    after = stats(bridge, nats_py, "lim.rate")
    assert after["dropped"] - before["dropped"] == len(limited)
    time.sleep(0.25)  # a token comes back every 0.2 s
    assert nats_py.request_json("lim.rate", b"") == {"ok": True}
