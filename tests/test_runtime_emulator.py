"""`bridge run` on the headless sense-emu driver: what another process sees on the emulated HAT,
overflow policies against a real (seconds-long) scroll, and joystick presses published over NATS."""

from __future__ import annotations

import os
import time

import pytest

from bridge.nats.server import NatsServer
from tests.bridgeproc import BridgeProcess
from tests.emulation import joystick_up_pressed, leds_seen_by_another_process
from tests.outside import OutsideClient

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
publications:
  - {{subject: emu.joystick, sensor: joystick}}
  - {{subject: emu.humidity, sensor: humidity, interval: 200ms}}
"""


@pytest.fixture(scope="module")
def server():
    with NatsServer() as running:
        yield running


@pytest.fixture
def outside(server):
    with OutsideClient(server.url) as client:
        yield client


@pytest.fixture
def emulated_bridge(emulator_exclusive, server, outside, tmp_path):
    process = BridgeProcess(emulator_config(server.url, "emu"), tmp_path, "emu").start()
    try:
        process.wait_ready(outside)
        yield process
    finally:
        assert process.stop() == 0, process.logs()


def test_set_pixel_over_nats_shows_on_the_emulated_hat(emulated_bridge, outside):
    assert outside.request_json("emu.clear", b"") == {"ok": True}
    assert outside.request_json("emu.pixel", {"x": 4, "y": 1, "color": [255, 0, 0]}) == {"ok": True}
    pixels = leds_seen_by_another_process()
    assert pixels[1 * 8 + 4] == [248, 0, 0]  # RGB565, as on the real HAT
    assert pixels[0] == [0, 0, 0]


def subscription_stats(bridge, outside, subject: str) -> dict:
    return {s["subject"]: s for s in bridge.info(outside)["subscriptions"]}[subject]


def wait_until_running(bridge, outside, subject: str, received: int) -> None:
    """Until the bridge has `received` messages on `subject` and none of them waits any more."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        stats = subscription_stats(bridge, outside, subject)
        if stats["received"] == received and stats["pending"] == 0:
            return
        time.sleep(0.02)
    raise AssertionError(f"the message on {subject} never started: {stats}")


def replies_to_three_quick_messages(bridge, outside, subject: str) -> list[dict]:
    """The first message starts scrolling (~3 s); the next two arrive while it runs."""
    inbox = outside.subscribe(f"replies.{subject}")
    outside.publish(subject, "hello world", reply=f"replies.{subject}")
    wait_until_running(bridge, outside, subject, received=1)
    for text in ("second", "third"):
        outside.publish(subject, text, reply=f"replies.{subject}")
    return [inbox.next_json(timeout=30) for _ in range(3)]


def test_overflow_queue_rejects_the_newest_when_full(emulated_bridge, outside):
    replies = replies_to_three_quick_messages(emulated_bridge, outside, "emu.show.queue")
    errors = [r for r in replies if r["ok"] is False]
    assert len(errors) == 1 and "dropped" in errors[0]["error"], replies
    assert replies[0] == errors[0]  # rejected at once, while the first one still scrolls
    stats = {s["subject"]: s for s in emulated_bridge.info(outside)["subscriptions"]}["emu.show.queue"]
    assert (stats["received"], stats["applied"], stats["dropped"]) == (3, 2, 1)


def test_overflow_latest_replaces_what_waits(emulated_bridge, outside):
    replies = replies_to_three_quick_messages(emulated_bridge, outside, "emu.show.latest")
    errors = [r for r in replies if r["ok"] is False]
    assert len(errors) == 1 and "dropped" in errors[0]["error"], replies
    stats = {s["subject"]: s for s in emulated_bridge.info(outside)["subscriptions"]}["emu.show.latest"]
    assert (stats["received"], stats["applied"], stats["dropped"]) == (3, 2, 1)


def test_joystick_press_is_published_at_once(emulated_bridge, outside):
    from sense_emu.stick import StickServer

    presses = outside.subscribe("emu.joystick")
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


def test_emulated_sensor_readings_are_published(emulated_bridge, outside):
    readings = outside.subscribe("emu.humidity")
    reading = readings.next_json()
    assert reading["sensor"] == "humidity" and reading["unit"] == "%RH"
    assert 0 <= reading["value"] <= 100


def test_graceful_stop_lets_the_scrolling_message_finish_then_says_offline(emulator_exclusive, server, outside, tmp_path):
    status = outside.subscribe("bridge.stopper.status")
    process = BridgeProcess(emulator_config(server.url, "stopper"), tmp_path, "stopper").start()
    try:
        process.wait_ready(outside)
        assert status.next_json()["status"] == "online"
        replies = outside.subscribe("replies.stopper")
        outside.publish("emu.show.queue", "hello world", reply="replies.stopper")
        wait_until_running(process, outside, "emu.show.queue", received=1)
    finally:
        code = process.stop()
    assert code == 0, process.logs()
    assert replies.next_json() == {"ok": True}  # the scroll ran to its end before the exit
    assert status.next_json()["status"] == "offline"
