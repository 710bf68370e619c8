"""Subject→device throughput: 100k set_pixel JSON messages into `bridge run` (memory driver).

The same nats-py driver process measures both sides: it publishes the 100k messages as fast as it
can, then asks the consumer's info subject every few milliseconds until it says all are applied.
The figure is messages applied per wall-clock second, from the first publish to that answer.
Beside it the driver reads the consumer's CPU (all its threads and children, from /proc) right
before the first publish and right after that answer: CPU µs per message of the consumer alone,
not of the driver that generates the load.

- ours: `bridge run` with one `set_pixel` subscription, completion read from `bridge.ID.info`.
- baseline: what a user would write instead, a nats-py asyncio subscriber that parses the same
  JSON, checks it the same way (x, y 0..7; colour [r, g, b] 0..255 or "#rrggbb") and stores it in
  a 64-entry list; it answers an info subject shaped like the bridge's.

Both consumers run for the whole benchmark; the rounds alternate between them, after one warm-up
pair. The `device_throughput` and `device_cpu_per_msg` rows come from the same rounds.

    python -m bench.device_throughput driver URL PIXEL_SUBJECT INFO_SUBJECT PID   # one measurement
    python -m bench.device_throughput baseline URL                                # the baseline consumer
"""

from __future__ import annotations

import functools
import json
import re
import sys
import time

# Either side spends 6–14 CPU µs a message: 100k make a round's CPU sample 60–140 clock ticks, so
# one tick is under 2 % of it even at the goal (≈ 6.5 µs).
MESSAGES = 100_000
DEVICE_ID = "bench-device"
OUR_SUBJECT = "bench.device.pixel"
BASELINE_SUBJECT = "bench.baseline.pixel"
BASELINE_INFO = "bench.baseline.info"
# The bridge takes a burst of MESSAGES at once: let them all wait for the device rather than
# measure how fast the default pending_limit (1000) rejects them.
PENDING_LIMIT = MESSAGES
POLL_INTERVAL = 0.005
ROUNDS = 7
WARM_UP = 1


def payloads() -> list[bytes]:
    return [
        json.dumps({"x": i % 8, "y": i // 8 % 8, "color": [i % 256, i * 7 % 256, i * 13 % 256]}).encode()
        for i in range(MESSAGES)
    ]


def applied_on(info: dict, subject: str) -> tuple[int, int]:
    """(applied, errors + dropped) of the subscription to `subject` in a bridge.ID.info answer."""
    for entry in info["subscriptions"]:
        if entry["subject"] == subject:
            return entry["applied"], entry["errors"] + entry["dropped"]
    raise RuntimeError(f"no subscription to {subject} in {info}")


def driver(url: str, subject: str, info_subject: str, consumer_pid: str) -> dict:
    import asyncio

    import nats

    from bench.common import race_result
    from bridge.testing.procfs import cpu_ticks, thread_cpu_ticks

    pid = int(consumer_pid)

    def consumer_ticks() -> tuple[int, int]:
        """(all of the consumer's CPU, its main thread's: the reactor or the asyncio loop)."""
        return cpu_ticks(pid), thread_cpu_ticks(pid).get(pid, 0)

    messages = payloads()

    async def race() -> dict:
        nc = await nats.connect(url)

        async def applied() -> tuple[int, int]:
            return applied_on(json.loads((await nc.request(info_subject, b"", timeout=10)).data), subject)

        before, failed_before = await applied()
        publish = nc.publish
        ticks_before, main_before = consumer_ticks()
        started = time.perf_counter()
        for payload in messages:
            await publish(subject, payload)
        await nc.flush()
        while True:
            done, failed = await applied()
            if failed != failed_before:
                raise RuntimeError(f"{failed - failed_before} messages failed or were dropped on {subject}")
            if done - before >= MESSAGES:
                break
            await asyncio.sleep(POLL_INTERVAL)
        seconds = time.perf_counter() - started
        ticks_after, main_after = consumer_ticks()
        await nc.close()
        return {**race_result(MESSAGES, seconds, ticks_after - ticks_before), "main_thread_ticks": main_after - main_before}

    return asyncio.run(race())


_HEX_COLOUR = re.compile(r"#[0-9a-fA-F]{6}\Z")


def baseline_consumer(url: str) -> None:
    """The hand-written alternative to the bridge, a few lines around nats-py."""
    from bench.common import serve_with_nats_py

    pixels = [[0, 0, 0]] * 64
    stats = {"subject": BASELINE_SUBJECT, "action": "set_pixel", "received": 0, "applied": 0, "errors": 0, "dropped": 0}

    def colour(value):
        if isinstance(value, str) and _HEX_COLOUR.match(value):
            number = int(value[1:], 16)
            return [number >> 16, number >> 8 & 0xFF, number & 0xFF]
        if isinstance(value, list) and len(value) == 3 and all(type(c) is int and 0 <= c <= 255 for c in value):
            return value
        raise ValueError(f"bad colour {value!r}")

    async def on_pixel(msg):
        stats["received"] += 1
        try:
            command = json.loads(msg.data)
            x, y = command["x"], command["y"]
            if not (type(x) is int and type(y) is int and 0 <= x <= 7 and 0 <= y <= 7):
                raise ValueError(f"bad coordinates {x!r}, {y!r}")
            pixels[y * 8 + x] = colour(command["color"])
        except (ValueError, KeyError, TypeError):
            stats["errors"] += 1
            return
        stats["applied"] += 1

    async def on_info(msg):
        await msg.respond(json.dumps({"subscriptions": [stats]}).encode())

    serve_with_nats_py(url, {BASELINE_SUBJECT: on_pixel, BASELINE_INFO: on_info})


@functools.cache
def measured_rounds() -> tuple[list[dict], list[dict]]:
    """Both sides' rounds, measured once per `python -m bench` for the two rows they make."""
    from bench.common import bridge_against_baseline

    subscriptions = f"  - {{subject: {OUR_SUBJECT}, action: set_pixel, pending_limit: {PENDING_LIMIT}}}\n"
    return bridge_against_baseline(
        "device_throughput", DEVICE_ID, subscriptions,
        lambda url, pid: ("driver", url, OUR_SUBJECT, f"bridge.{DEVICE_ID}.info", pid),
        lambda url, pid: ("driver", url, BASELINE_SUBJECT, BASELINE_INFO, pid),
        ROUNDS, WARM_UP,
    )  # fmt: skip


def main_thread_share(rounds: list[dict]) -> float:
    """CPU µs per message of the consumer's main thread, median over the rounds; the rest of its
    CPU is in its other threads (for the bridge: the device worker)."""
    import statistics

    from bench.common import cpu_us_per_message

    return round(statistics.median(cpu_us_per_message(r["main_thread_ticks"], r["messages"]) for r in rounds), 2)


def run() -> dict:
    from bench.common import rate_and_cpu_row

    ours, theirs = measured_rounds()
    return {
        **rate_and_cpu_row(ours, theirs),
        "ours_main_thread_cpu_us_per_msg": main_thread_share(ours),
        "baseline_main_thread_cpu_us_per_msg": main_thread_share(theirs),
    }


if __name__ == "__main__":
    role, *arguments = sys.argv[1:]
    if role == "driver":
        print(json.dumps(driver(*arguments)))
    elif role == "baseline":
        baseline_consumer(*arguments)
    else:
        sys.exit(f"unknown role {role!r}")
