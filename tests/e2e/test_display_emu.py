"""The display layer in `bridge run` on the headless sense-emu driver, driven from outside with
nats-py and read back from the emulated HAT's screen file: a priority-9 notification interrupts a
priority-1 scroll, a set_pixels picture comes back after a notification, the joystick's middle
press dismisses a held one, indicators sit on top of a scroll, "°" is not drawn as "?". Every
check polls the LEDs until a deadline; nothing asserts on how long anything took."""

from __future__ import annotations

import os
import struct
import time

import pytest

from bridge.testing.bridgeproc import BridgeProcess

pytest.importorskip("sense_emu", reason="sense-emu is not installed (pip install '.[emu]')")

SCREEN = "/dev/shm/rpi-sense-emu-screen"
DEADLINE = 15.0  # only bounds a broken test
# Colours the emulator's RGB565 framebuffer keeps exactly.
RED, GREEN, BLUE, BLACK = [248, 0, 0], [0, 252, 0], [0, 0, 248], [0, 0, 0]
PICTURE = [[(index * 8) % 256, (index * 4) % 256, 248 - (index * 8) % 256] for index in range(64)]


def config(url: str) -> str:
    return f"""\
version: 1
device: {{id: disp, driver: sense-emu}}
nats:
  servers: ["{url}"]
subscriptions:
  - {{subject: d.notify, action: notify}}
  - {{subject: d.dismiss, action: dismiss}}
  - {{subject: d.indicator, action: indicator}}
  - {{subject: d.pixels, action: set_pixels}}
  - {{subject: d.clear, action: clear}}
"""


def leds() -> list[list[int]]:
    """The emulated matrix as get_pixels gives it (RGB565 widened), read from its screen file."""
    with open(SCREEN, "rb") as screen:
        values = struct.unpack("64H", screen.read(128))
    return [[(value >> 11 & 0x1F) << 3, (value >> 5 & 0x3F) << 2, (value & 0x1F) << 3] for value in values]


def wait_for(check, what: str) -> list[list[int]]:
    """Poll the LEDs until `check(leds)` holds; the LEDs it held on."""
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        seen = leds()
        if check(seen):
            return seen
        time.sleep(0.01)
    raise AssertionError(f"the LEDs never showed {what}; last seen: {seen}")


def all_of(colour):
    return lambda seen: all(pixel == colour for pixel in seen)


@pytest.fixture
def bridge(emulator_exclusive, module_nats_server, nats_py, tmp_path, monkeypatch):
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path / "state"))  # its runtime apps, not the user's
    process = BridgeProcess(config(module_nats_server.url), tmp_path, "disp").start()
    try:
        process.wait_ready(nats_py)
        assert nats_py.request_json("d.clear") == {"ok": True}
        yield process
    finally:
        assert process.stop() == 0, process.logs()


def notify(nats_py, payload: dict) -> dict:
    reply = nats_py.request_json("d.notify", payload)
    assert reply["ok"] is True, reply
    return reply


def test_a_priority_9_notification_interrupts_a_priority_1_scroll(bridge, nats_py):
    notify(nats_py, {"text": "slow low priority text", "priority": 1, "hold": True, "text_colour": [255, 0, 0]})
    wait_for(lambda seen: RED in seen, "the low-priority scroll")
    accepted = notify(nats_py, {"pixels": [[0, 255, 0]] * 64, "priority": 9, "hold": True, "id": "urgent"})
    assert accepted == {"ok": True, "id": "urgent", "position": 0}
    wait_for(all_of(GREEN), "the priority-9 picture")
    assert nats_py.request_json("d.dismiss", "urgent") == {"ok": True, "dismissed": 1}
    wait_for(lambda seen: RED in seen and GREEN not in seen, "the low-priority scroll again")


def test_a_set_pixels_picture_comes_back_after_a_notification(bridge, nats_py):
    assert nats_py.request_json("d.pixels", PICTURE) == {"ok": True}
    wait_for(lambda seen: seen == PICTURE, "the picture")
    notify(nats_py, {"pixels": [[0, 0, 255]] * 64, "duration": 0.5})
    wait_for(all_of(BLUE), "the notification")
    wait_for(lambda seen: seen == PICTURE, "the picture, exactly, after the notification")


def press_middle_until(check, what: str) -> None:
    """The emulated stick's middle button, pressed again and again until `check(leds)` holds: the
    bridge's stick client registers with the stick server about once a second, and presses before
    that are lost."""
    from sense_emu.stick import StickServer

    stick = StickServer()
    try:
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            stick.send(struct.pack("llHHI", int(time.time()), 0, 0x01, 28, 1))  # EV_KEY, KEY_ENTER, pressed
            stick.send(struct.pack("llHHI", int(time.time()), 0, 0x01, 28, 0))  # released
            if check(leds()):
                return
            time.sleep(0.2)
        raise AssertionError(f"the LEDs never showed {what}; last seen: {leds()}")
    finally:
        stick.close()
        own_socket = f"/dev/shm/rpi-sense-emu-client-{os.getpid()}"
        if os.path.exists(own_socket):
            os.unlink(own_socket)


def test_the_joystick_middle_press_dismisses_a_held_notification(bridge, nats_py):
    notify(nats_py, {"pixels": [[0, 255, 0]] * 64, "hold": True})
    wait_for(all_of(GREEN), "the held notification")
    press_middle_until(all_of(BLACK), "the cleared base after the press")
    assert bridge.info(nats_py)["display"]["queued"] == []


def test_an_indicator_sits_on_top_of_a_scroll(bridge, nats_py):
    notify(nats_py, {"text": "scrolling under an indicator", "hold": True, "text_colour": [0, 0, 255],
                     "scroll_speed": 0.05})
    assert nats_py.request_json("d.indicator", {"n": 3, "color": [255, 0, 0]}) == {"ok": True}
    for _ in range(3):  # on several frames of the scroll, not only the first
        seen = wait_for(lambda seen: seen[63] == RED and BLUE in seen, "the indicator over the scroll")
        assert seen.count(RED) == 1
        time.sleep(0.1)
    assert nats_py.request_json("d.indicator", {"n": 3, "color": None}) == {"ok": True}
    wait_for(lambda seen: seen[63] != RED, "the indicator gone")


def test_a_degree_sign_is_drawn_with_its_own_glyph_not_a_question_mark(bridge, nats_py):
    drawn = {}
    for character in ("°", "?"):
        notify(nats_py, {"draw": [{"text": character, "at": [2, 0], "color": [0, 255, 0]}], "hold": True,
                         "id": "glyph"})
        drawn[character] = wait_for(lambda seen: GREEN in seen, f"{character!r} drawn")
        assert nats_py.request_json("d.dismiss", "glyph") == {"ok": True, "dismissed": 1}
        wait_for(lambda seen: GREEN not in seen, "the notification gone")
    assert drawn["°"] != drawn["?"]
