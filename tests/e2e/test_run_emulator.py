"""`bridge run` on the headless sense-emu driver: what another process sees on the emulated HAT,
overflow policies against a real (seconds-long) scroll, and joystick presses published over NATS."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from bridge.testing.bridgeproc import BridgeProcess
from tests.harness.emulation import joystick_up_pressed, leds_seen_by_another_process

pytest.importorskip("sense_emu", reason="sense-emu is not installed (pip install '.[emu]')")

SLOW_SCROLL = 0.05  # "hello world" then scrolls for about 3 s: long enough to pile messages up behind it


def emulator_config(url: str, device_id: str) -> str:
    return f"""\
version: 1
device: {{id: {device_id}, driver: sense-emu}}
nats:
  servers: ["{url}"]
subscriptions:
  - {{subject: emu.pixel, action: set_pixel}}
  - {{subject: emu.clear, action: clear}}
  - subject: emu.show.queue
    action: show_message
    pending_limit: 1
    overflow: queue
    args: {{scroll_speed: {SLOW_SCROLL}}}
  - subject: emu.show.latest
    action: show_message
    pending_limit: 1
    overflow: latest
    args: {{scroll_speed: {SLOW_SCROLL}}}
  - subject: emu.flood
    action: show_message
    max_payload: 1000000
    pending_bytes: 1GiB
    args: {{scroll_speed: {SLOW_SCROLL}}}
  - subject: emu.bytes
    action: show_message
    args: {{scroll_speed: {SLOW_SCROLL}}}
publications:
  - {{subject: emu.joystick, sensor: joystick}}
  - {{subject: emu.humidity, sensor: humidity, interval: 200ms}}
"""


@pytest.fixture
def emulated_bridge(emulator_exclusive, module_nats_server, nats_py, tmp_path):
    process = BridgeProcess(emulator_config(module_nats_server.url, "emu"), tmp_path, "emu").start()
    try:
        process.wait_ready(nats_py)
        yield process
    finally:
        assert process.stop() == 0, process.logs()


def test_set_pixel_over_nats_shows_on_the_emulated_hat(emulated_bridge, nats_py):
    assert nats_py.request_json("emu.clear", b"") == {"ok": True}
    assert nats_py.request_json("emu.pixel", {"x": 4, "y": 1, "color": [255, 0, 0]}) == {"ok": True}
    pixels = leds_seen_by_another_process()
    assert pixels[1 * 8 + 4] == [248, 0, 0]  # RGB565, as on the real HAT
    assert pixels[0] == [0, 0, 0]


def subscription_stats(bridge, nats_py, subject: str) -> dict:
    return {s["subject"]: s for s in bridge.info(nats_py)["subscriptions"]}[subject]


def wait_until_running(bridge, nats_py, subject: str, received: int) -> None:
    """Until the bridge has `received` messages on `subject` and none of them waits any more."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        stats = subscription_stats(bridge, nats_py, subject)
        if stats["received"] == received and stats["pending"] == 0:
            return
        time.sleep(0.02)
    raise AssertionError(f"the message on {subject} never started: {stats}")


def replies_to_three_quick_messages(bridge, nats_py, subject: str) -> list[dict]:
    """The first message starts scrolling (~3 s); the next two arrive while it runs."""
    inbox = nats_py.subscribe(f"replies.{subject}")
    nats_py.publish(subject, "hello world", reply=f"replies.{subject}")
    wait_until_running(bridge, nats_py, subject, received=1)
    for text in ("second", "third"):
        nats_py.publish(subject, text, reply=f"replies.{subject}")
    return [inbox.next_json(timeout=30) for _ in range(3)]


def test_overflow_queue_rejects_the_newest_when_full(emulated_bridge, nats_py):
    replies = replies_to_three_quick_messages(emulated_bridge, nats_py, "emu.show.queue")
    errors = [r for r in replies if r["ok"] is False]
    assert len(errors) == 1 and "dropped" in errors[0]["error"], replies
    assert replies[0] == errors[0]  # rejected at once, while the first one still scrolls
    stats = {s["subject"]: s for s in emulated_bridge.info(nats_py)["subscriptions"]}["emu.show.queue"]
    assert (stats["received"], stats["applied"], stats["dropped"]) == (3, 2, 1)


def test_overflow_latest_replaces_what_waits_and_cuts_the_running_scroll_short(emulated_bridge, nats_py):
    replies = replies_to_three_quick_messages(emulated_bridge, nats_py, "emu.show.latest")
    assert replies[-1] == {"ok": True}, replies  # only the newest is shown to its end
    errors = [r["error"] for r in replies[:2]]
    assert "show_message: interrupted, replaced by a newer message (overflow latest)" in errors, replies
    stats = {s["subject"]: s for s in emulated_bridge.info(nats_py)["subscriptions"]}["emu.show.latest"]
    assert (stats["received"], stats["applied"], stats["dropped"]) == (3, 1, 2)


def test_joystick_press_is_published_at_once(emulated_bridge, nats_py):
    from sense_emu.stick import StickServer

    presses = nats_py.subscribe("emu.joystick")
    stick = StickServer()
    try:
        # The bridge's stick client registers with the server about once a second and events sent
        # before that are lost, so keep pressing until one comes through.
        deadline = time.monotonic() + 15
        while presses.messages.empty() and time.monotonic() < deadline:
            stick.send(joystick_up_pressed())
            time.sleep(0.2)
        event = presses.next_json(timeout=1)
    finally:
        stick.close()
        own_socket = f"/dev/shm/rpi-sense-emu-client-{os.getpid()}"
        if os.path.exists(own_socket):
            os.unlink(own_socket)
    assert event["device"] == "emu" and event["sensor"] == "joystick"
    assert event["value"] == {"direction": "up", "action": "pressed"}


def test_emulated_sensor_readings_are_published(emulated_bridge, nats_py):
    readings = nats_py.subscribe("emu.humidity")
    reading = readings.next_json()
    assert reading["sensor"] == "humidity" and reading["unit"] == "%RH"
    assert 0 <= reading["value"] <= 100


def test_graceful_stop_cuts_the_scroll_short_then_says_offline(emulator_exclusive, module_nats_server, nats_py, tmp_path):
    status = nats_py.subscribe("bridge.stopper.status")
    process = BridgeProcess(emulator_config(module_nats_server.url, "stopper"), tmp_path, "stopper").start()
    try:
        process.wait_ready(nats_py)
        assert status.next_json()["status"] == "online"
        replies = nats_py.subscribe("replies.stopper")
        # about 18 s of scrolling, cut short by the stop
        nats_py.publish("emu.show.queue", json.dumps({"text": "x" * 60}), reply="replies.stopper")
        wait_until_running(process, nats_py, "emu.show.queue", received=1)
        time.sleep(0.5)
        process.signal(signal.SIGTERM)
        process.process.wait(10)  # far less than the scroll's 18 s: only bounds a broken test
    finally:
        code = process.stop()
    assert code == 0, process.logs()
    assert replies.next_json() == {"ok": False, "error": "show_message: interrupted, the device worker is stopping"}
    assert status.next_json()["status"] == "offline"


def test_overflow_latest_shows_the_newest_text_at_once(emulator_exclusive, module_nats_server, nats_py, tmp_path):
    process = BridgeProcess(emulator_config(module_nats_server.url, "preempt"), tmp_path, "preempt").start()
    try:
        process.wait_ready(nats_py)
        replies = nats_py.subscribe("replies.preempt")
        nats_py.publish("emu.show.latest", "x" * 60, reply="replies.preempt")  # about 18 s
        wait_until_running(process, nats_py, "emu.show.latest", received=1)
        time.sleep(0.3)
        nats_py.publish("emu.show.latest", "new", reply="replies.preempt")
        first = replies.next_json(timeout=20)
        second = replies.next_json(timeout=20)
    finally:
        assert process.stop() == 0, process.logs()
    assert first == {"ok": False, "error": "show_message: interrupted, replaced by a newer message (overflow latest)"}
    assert second == {"ok": True}


def test_waiting_messages_keep_no_payload(emulator_exclusive, module_nats_server, nats_py, tmp_path):
    """300 valid ~1 MB show_message payloads wait behind a scroll: the process must not hold them."""
    from bridge.testing.procfs import vm_rss_mib

    process = BridgeProcess(emulator_config(module_nats_server.url, "flood"), tmp_path, "flood").start()
    try:
        process.wait_ready(nats_py)
        nats_py.publish("emu.flood", "x" * 90)  # about 27 s: everything after it waits
        wait_until_running(process, nats_py, "emu.flood", received=1)
        before = vm_rss_mib(process.process.pid)
        padded = b'{"text": "hi"}' + b" " * (1_000_000 - 14)
        # In batches: 300 MB at once would pass nats-server's 64 MB pending limit for the bridge's
        # connection (a slow consumer, disconnected), which is not what this is about.
        for batch in range(1, 16):
            for _ in range(20):
                nats_py.publish("emu.flood", padded)
            nats_py.flush()
            deadline = time.monotonic() + 30
            while subscription_stats(process, nats_py, "emu.flood")["pending"] < 20 * batch and time.monotonic() < deadline:
                time.sleep(0.05)
        stats = subscription_stats(process, nats_py, "emu.flood")
        after = vm_rss_mib(process.process.pid)
    except BaseException:
        print(process.logs()[-3000:])
        raise
    finally:
        assert process.stop() == 0, process.logs()
    assert stats["pending"] == 300 and stats["errors"] == stats["dropped"] == 0, stats
    assert after - before < 40, f"RSS grew from {before:.0f} to {after:.0f} MiB with 300 MB of payloads waiting"


def test_pending_bytes_rejects_what_would_pass_it(emulated_bridge, nats_py):
    nats_py.publish("emu.bytes", "x" * 60)  # about 18 s: everything after it waits
    wait_until_running(emulated_bridge, nats_py, "emu.bytes", received=1)
    inbox = nats_py.subscribe("replies.bytes")
    payload = b'{"text": "hi"}' + b" " * (60_000 - 14)  # under the default max_payload of 64 KiB
    for _ in range(20):
        nats_py.publish("emu.bytes", payload, reply="replies.bytes")
    # the default pending_bytes, 1 MiB, holds 17 of them
    rejected = [inbox.next_json() for _ in range(3)]
    assert all("(pending_bytes, overflow queue)" in reply["error"] for reply in rejected), rejected
    stats = subscription_stats(emulated_bridge, nats_py, "emu.bytes")
    assert (stats["pending"], stats["dropped"]) == (17, 3)
