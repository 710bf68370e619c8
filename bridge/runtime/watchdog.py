"""Noticing a device call that hangs.

Each device worker gets its own `WatchedDevice`: a thin stand-in for the device that notes which
call runs and since when (one tuple assignment before and after, no lock: only its worker thread
writes it). `HangWatchdog` looks at them from the reactor once a second. A call is hung when it
runs longer than `hang_after` seconds plus twice its expected duration: only `show_message` has a
long one (`bridge.actions.scroll_seconds`), so a long scroll is not mistaken for a hang while a
stuck I2C read or framebuffer write is noticed after `hang_after`.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Sequence

from twisted.internet import task
from twisted.logger import Logger

from bridge.actions import scroll_seconds

log = Logger(namespace="bridge")

HANG_AFTER = 30.0  # seconds beyond the expected duration
CHECK_INTERVAL = 1.0


def expected_seconds(call: str, args: tuple) -> float:
    if call == "show_message" and len(args) >= 4:
        text, scroll_speed = args[0], args[3]
        return scroll_seconds(text, float(scroll_speed))
    return 0.0


def hang_report(role: str, current: tuple | None, now: float, hang_after: float) -> dict | None:
    """What `info`/status say about one worker's running call, or None when it is not hung."""
    if current is None:
        return None
    call, args, started = current
    limit = hang_after + 2 * expected_seconds(call, args)
    running = now - started
    if running <= limit:
        return None
    return {"worker": role, "call": call, "running_for": round(running, 1), "limit": round(limit, 1)}


class WatchedDevice:
    """Delegates to the device; blocking methods note `current = (name, args, started)` while they run."""

    WATCHED = frozenset((
        "show_message", "show_letter", "set_pixel", "set_pixels", "get_pixels", "clear", "set_rotation",
        "flip_h", "flip_v", "set_low_light", "read", "run_batch",
        "draw", "show_base",  # the display layer's frames (bridge.display.layers.LayeredDevice)
    ))  # fmt: skip

    def __init__(self, device, role: str, clock: Callable[[], float] = time.monotonic):
        self._device = device
        self.role = role
        self._clock = clock
        self.current: tuple[str, tuple, float] | None = None

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._device, name)
        if name not in self.WATCHED:
            return attribute
        clock = self._clock

        def watched(*args, **options):  # options: e.g. the scroll's `interrupt` event
            self.current = (name, args, clock())
            try:
                return attribute(*args, **options)
            finally:
                self.current = None

        watched.__name__ = name
        self.__dict__[name] = watched  # found directly from now on
        return watched


class HangWatchdog:
    """Calls `on_change(hung)` with the list of hang reports whenever it changes."""

    def __init__(self, devices: Sequence[WatchedDevice], reactor, on_change: Callable[[list], None], *,
                 hang_after: float = HANG_AFTER, clock: Callable[[], float] = time.monotonic,
                 interval: float = CHECK_INTERVAL):
        self.devices = list(devices)
        self.hang_after = hang_after
        self.hung: list[dict] = []
        self._on_change = on_change
        self._clock = clock
        self._interval = interval
        self._loop = task.LoopingCall(self.check)
        self._loop.clock = reactor

    def start(self) -> None:
        self._loop.start(self._interval, now=False).addErrback(lambda failure: log.failure("hang watchdog stopped", failure))

    def stop(self) -> None:
        if self._loop.running:
            self._loop.stop()

    def check(self) -> None:
        now = self._clock()
        reports = [hang_report(device.role, device.current, now, self.hang_after) for device in self.devices]
        hung = [report for report in reports if report is not None]
        before = {(r["worker"], r["call"]) for r in self.hung}
        after = {(r["worker"], r["call"]) for r in hung}
        self.hung = hung
        if after == before:
            return
        for report in hung:
            if (report["worker"], report["call"]) not in before:
                log.error("degraded: {call} on the {worker} worker has run {running_for}s (limit {limit}s)", **report)
        for worker, call in before - after:
            log.info("{call} on the {worker} worker finished; no longer degraded by it", worker=worker, call=call)
        self._on_change(hung)
