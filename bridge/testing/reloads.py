"""Steady request load across SIGHUP reloads: how many requests a reload leaves unanswered.

`bridge run` (memory driver) serves `clear` on one subject; nats-py sends requests at a steady
rate, never waiting for a reply before sending the next, while the bridge gets SIGHUP with a config
that changes only that subscription's `args` (the colour), alternating.
"""

from __future__ import annotations

import asyncio
import signal
import time

from bridge.testing.bridgeproc import memory_config

DEVICE_ID = "bench-reload"
SUBJECT = "bench.reload.clear"


def subscriptions(colour: str) -> str:
    return f"  - {{subject: {SUBJECT}, action: clear, args: {{color: '{colour}'}}}}\n"


def reload_config(url: str, colour: str) -> str:
    return memory_config([url], DEVICE_ID, subscriptions(colour), reconnect=None)


async def steady_requests(nc, subject: str, rate: int, seconds: float, timeout: float = 5.0) -> dict:
    """Send `rate` requests per second for `seconds` (in 10 ms batches), then wait for every answer."""
    async def one() -> bool:
        try:
            reply = await nc.request(subject, b"", timeout=timeout)
        except Exception:  # timeout, no responders: unanswered
            return False
        return reply.data == b'{"ok": true}'

    tasks = []
    per_batch = max(1, rate // 100)
    started = time.perf_counter()
    batches = int(seconds * 100)
    for batch in range(batches):
        tasks.extend(asyncio.ensure_future(one()) for _ in range(per_batch))
        delay = started + (batch + 1) / 100 - time.perf_counter()
        await asyncio.sleep(max(0.0, delay))
    answered = await asyncio.gather(*tasks)
    return {"sent": len(answered), "unanswered": answered.count(False)}


def unanswered_across_reloads(process, outside, url: str, colours: tuple[str, str], *, rate: int,
                              seconds: float, reload_every: float = 1.0) -> dict:
    """Run the steady load against a running `BridgeProcess`, SIGHUP it every `reload_every`
    seconds with its config rewritten to alternate `colours`; the load's counts plus `reloads`."""
    before = sum("reloaded" in str(record.get("message")) for record in process.log_records())
    load = outside.submit(steady_requests(outside.nc, SUBJECT, rate, seconds))
    deadline = time.monotonic() + seconds - reload_every
    signals = 0
    while time.monotonic() < deadline:
        time.sleep(reload_every)
        signals += 1
        process.rewrite_config(reload_config(url, colours[signals % 2]))
        process.signal(signal.SIGHUP)
    result = load.result(seconds + 60)
    after = sum("reloaded" in str(record.get("message")) for record in process.log_records())
    return {**result, "reloads": after - before, "signals": signals}
