"""The hang watchdog: a device call running past its limit marks the bridge degraded in info and status."""

from __future__ import annotations

import pytest
from twisted.internet import task

from bridge.devices.memory import MemoryDevice
from bridge.runtime.bridge import Bridge, BridgeState
from bridge.runtime.watchdog import HangWatchdog, WatchedDevice, expected_seconds, hang_report
from tests.harness.fake_nats import FakeClient, memory_bridge_config


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_a_long_scroll_is_expected_and_not_a_hang():
    text = "x" * 100  # (8 + 600) × 0.1 = 60.8 s expected
    assert expected_seconds("show_message", (text, (255, 255, 255), (0, 0, 0), 0.1)) == pytest.approx(60.8)
    assert hang_report("display", ("show_message", (text, None, None, 0.1), 0.0), now=90.0, hang_after=30.0) is None
    hung = hang_report("display", ("show_message", (text, None, None, 0.1), 0.0), now=152.0, hang_after=30.0)
    assert hung == {"worker": "display", "call": "show_message", "running_for": 152.0, "limit": 151.6}


def test_a_quick_call_hangs_after_hang_after():
    assert hang_report("sensors", ("read", ("humidity",), 0.0), now=29.0, hang_after=30.0) is None
    assert hang_report("sensors", ("read", ("humidity",), 0.0), now=31.0, hang_after=30.0)["call"] == "read"
    assert hang_report("sensors", None, now=1e9, hang_after=30.0) is None


def test_watched_device_notes_the_running_call_only_while_it_runs():
    clock = Clock()
    seen = {}

    class Stuck(MemoryDevice):
        def read(self, sensor):
            seen["current"] = watched.current
            return super().read(sensor)

    watched = WatchedDevice(Stuck(), "sensors", clock)
    watched.read("temperature")
    assert seen["current"] == ("read", ("temperature",), 100.0)
    assert watched.current is None
    assert watched.driver == "memory"  # everything else is the device's own


def test_a_hung_call_degrades_info_and_status_and_recovery_clears_it():
    clock = Clock()
    reactor = task.Clock()
    bridge = Bridge(memory_bridge_config(), reactor, MemoryDevice(), clock=clock, hang_after=5.0)
    bridge.client = FakeClient()
    bridge.state = BridgeState.RUNNING
    display = WatchedDevice(bridge.device, "display", clock)
    bridge.watchdog = HangWatchdog([display], reactor, bridge._on_hangs_changed, hang_after=5.0, clock=clock)
    bridge.watchdog.start()

    display.current = ("set_pixel", (0, 0, (1, 2, 3)), clock.now)  # as if the worker thread were stuck in it
    clock.now += 4.0
    reactor.advance(1.0)
    assert bridge.info()["health"] == "ok"
    clock.now += 2.0
    reactor.advance(1.0)
    info = bridge.info()
    assert info["health"] == "degraded"
    assert info["hung"] == [{"worker": "display", "call": "set_pixel", "running_for": 6.0, "limit": 5.0}]
    subject, status = bridge.client.replies[-1]
    assert subject == "bridge.pi1.status" and status["status"] == "degraded" and status["hung"][0]["call"] == "set_pixel"

    display.current = None
    reactor.advance(1.0)
    assert bridge.info()["health"] == "ok"
    assert bridge.client.replies[-1][1]["status"] == "online"
    bridge.watchdog.stop()



def test_the_display_layers_frames_are_watched():
    from bridge.display.layers import LayeredDevice

    clock = Clock()
    seen = {}

    class Stuck(MemoryDevice):
        def set_pixels(self, pixels):
            seen.setdefault("current", watched.current)
            super().set_pixels(pixels)

    watched = WatchedDevice(LayeredDevice(Stuck()), "display", clock)
    watched.draw([(1, 2, 3)] * 64)
    assert seen.pop("current")[0] == "draw"
    watched.show_base()
    assert seen.pop("current")[0] == "show_base"
    assert watched.current is None
