"""Requests left without a reply across SIGHUP reloads under steady load; target 0.

`bridge run` (memory driver) serves `clear` on one subject. A nats-py client (on its own loop in
this process, tests/outside.py) sends requests at a steady rate, never waiting for a reply before
sending the next; meanwhile the bridge gets SIGHUP once a second with a config that changes only
that subscription's `args` (the colour), alternating. Every request has 5 s to be answered; the
figure is how many were not (timeout, no responders or an error reply). No baseline.

    python -m bench reload_loss
"""

from __future__ import annotations

import asyncio
import signal
import time

DEVICE_ID = "bench-reload"
SUBJECT = "bench.reload.clear"
RATE = 2000  # requests per second
SECONDS = 12.0
RELOAD_EVERY = 1.0
TARGET = 0


def subscriptions(colour: str) -> str:
    return f"  - {{subject: {SUBJECT}, action: clear, args: {{color: '{colour}'}}}}\n"


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


def unanswered_across_reloads(process, outside, url: str, colours: tuple[str, str], *, rate: int = RATE,
                              seconds: float = SECONDS, reload_every: float = RELOAD_EVERY) -> dict:
    """Run the steady load against a running `BridgeProcess`, SIGHUP it every `reload_every`
    seconds with its config rewritten to alternate `colours`; the load's counts plus `reloads`."""
    from bench.common import bridge_config

    before = sum("reloaded" in str(record.get("message")) for record in process.log_records())
    load = asyncio.run_coroutine_threadsafe(steady_requests(outside.nc, SUBJECT, rate, seconds), outside._loop)
    deadline = time.monotonic() + seconds - reload_every
    signals = 0
    while time.monotonic() < deadline:
        time.sleep(reload_every)
        signals += 1
        process.rewrite_config(bridge_config(DEVICE_ID, [url], subscriptions(colours[signals % 2])))
        process.signal(signal.SIGHUP)
    result = load.result(seconds + 60)
    after = sum("reloaded" in str(record.get("message")) for record in process.log_records())
    return {**result, "reloads": after - before, "signals": signals}


def run() -> dict:
    from bench.common import bridge_config, outside_client, running_bridge
    from bridge.nats.server import NatsServer

    colours = ("#000001", "#000002")
    with NatsServer() as server, outside_client(server.url) as outside:
        config = bridge_config(DEVICE_ID, [server.url], subscriptions(colours[0]))
        with running_bridge(config, DEVICE_ID, outside) as process:
            result = unanswered_across_reloads(process, outside, server.url, colours)
    if result["reloads"] == 0:
        raise RuntimeError(f"no reload was applied: {result}")
    return {"ours": result["unanswered"], "baseline": None, "unit": "requests", "target": TARGET, **result}
