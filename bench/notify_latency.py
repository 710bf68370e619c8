"""`notify` latency: a priority-9 notification published while a priority-1 one scrolls, to its
first frame on the matrix; p50 over several rounds.

One process: a nats-server, the bridge on the Twisted reactor (memory driver, the display layer as
`bridge run` builds it) and a nats-py publisher on its own thread. The memory device's `set_pixels`
(what the display layer draws with) is wrapped to timestamp each frame; the publisher takes
time.perf_counter() right before publishing `{"pixels": all green, "priority": 9}` and waits for
the first all-green frame. Then it dismisses that notification, waits for the scroll to come back,
and starts the next round. The target is one scroll step (`SCROLL_SPEED`) + 5 ms: the new one must
not wait for more than the scroll's next frame. No baseline: nats-py has no display layer.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import threading
import time

ROUNDS = 40
WARM_UP = 5
SCROLL_SPEED = 0.1  # the low-priority scroll's step, seconds per column
DEVICE_ID = "bench-notify"
SUBJECT = "bench.notify"
DISMISS_SUBJECT = "bench.dismiss"
GREEN = (0, 255, 0)
WAIT = 10.0  # only bounds a broken round


class FrameClock:
    """Timestamps the frames a device shows; a waiter is woken by the first one matching."""

    def __init__(self):
        self._condition = threading.Condition()
        self._frames: list[tuple[float, tuple]] = []

    def record(self, picture) -> None:
        with self._condition:
            self._frames.append((time.perf_counter(), tuple(tuple(colour) for colour in picture)))
            self._condition.notify_all()

    def first_after(self, started: float, matches) -> float:
        """The time of the first frame drawn at or after `started` that `matches`."""
        deadline = time.monotonic() + WAIT
        with self._condition:
            while True:
                for at, picture in self._frames:
                    if at >= started and matches(picture):
                        return at
                if not self._condition.wait(max(0.0, deadline - time.monotonic())):
                    raise RuntimeError("the display drew no matching frame")


def timed_device(frames: FrameClock):
    from bridge.devices.memory import MemoryDevice

    class TimedMemoryDevice(MemoryDevice):
        def set_pixels(self, pixels):
            super().set_pixels(pixels)
            frames.record(pixels)

    return TimedMemoryDevice()


def all_green(picture: tuple) -> bool:
    return all(colour == GREEN for colour in picture)


def publisher(url: str, frames: FrameClock, samples: list[float], done: threading.Event) -> None:
    import asyncio

    import nats

    async def rounds() -> None:
        nc = await nats.connect(url)
        scroll = {"text": "low priority scrolling along", "priority": 1, "hold": True, "scroll_speed": SCROLL_SPEED}
        await nc.request(SUBJECT, json.dumps(scroll).encode(), timeout=WAIT)
        urgent = json.dumps({"pixels": [list(GREEN)] * 64, "priority": 9, "hold": True, "id": "urgent"}).encode()
        for round_number in range(WARM_UP + ROUNDS):
            await asyncio.sleep(SCROLL_SPEED * 2.5)  # mid-step: the scroll neither just drew nor is about to
            started = time.perf_counter()
            await nc.publish(SUBJECT, urgent)
            await nc.flush()
            shown = await asyncio.to_thread(frames.first_after, started, all_green)
            if round_number >= WARM_UP:
                samples.append((shown - started) * 1000)
            dismissed = time.perf_counter()
            await nc.request(DISMISS_SUBJECT, b"urgent", timeout=WAIT)
            await asyncio.to_thread(frames.first_after, dismissed, lambda picture: not all_green(picture))
        await nc.close()

    try:
        asyncio.run(rounds())
    finally:
        done.set()


def measure() -> list[float]:
    from twisted.internet import reactor

    from bridge.config.model import BridgeConfig, DeviceConfig, NatsConfig, SubscriptionConfig
    from bridge.display.store import AppStore
    from bridge.runtime.bridge import Bridge
    from bridge.testing.nats_server import NatsServer

    frames = FrameClock()
    samples: list[float] = []
    done = threading.Event()
    failures = []
    with NatsServer() as server, tempfile.TemporaryDirectory(prefix="bench-notify-") as state:
        config = BridgeConfig(
            device=DeviceConfig(id=DEVICE_ID, driver="memory"), nats=NatsConfig(servers=(server.url,)),
            subscriptions=(SubscriptionConfig(subject=SUBJECT, action="notify"),
                           SubscriptionConfig(subject=DISMISS_SUBJECT, action="dismiss")))
        bridge = Bridge(config, reactor, timed_device(frames), app_store=AppStore(state))

        def started(_):
            thread = threading.Thread(target=publisher, args=(server.url, frames, samples, done), daemon=True)
            thread.start()
            reactor.callInThread(lambda: (done.wait(), reactor.callFromThread(stop)))

        def stop():
            bridge.stop().addBoth(lambda _: reactor.stop())

        def failed(failure):
            failures.append(failure.getErrorMessage())
            reactor.stop()

        reactor.callWhenRunning(lambda: bridge.start().addCallbacks(started, failed))
        reactor.run(installSignalHandlers=False)
    if failures or len(samples) < ROUNDS:
        raise RuntimeError(f"notify_latency: {failures[0] if failures else 'rounds did not finish'}")
    return samples


def run() -> dict:
    from bench.common import measure as measure_in_process

    samples = measure_in_process("notify_latency", "measure")["samples"]
    return {
        "ours": round(statistics.median(samples), 3),
        "baseline": None,
        "unit": "ms p50",
        "p90": round(sorted(samples)[int(0.9 * len(samples))], 3),
        "rounds": len(samples),
        "scroll_step_ms": SCROLL_SPEED * 1000,
    }


if __name__ == "__main__":
    import sys

    role = sys.argv[1]
    if role != "measure":
        sys.exit(f"unknown role {role!r}")
    print(json.dumps({"samples": measure()}))
