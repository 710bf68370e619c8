"""Resident memory of a `bridge run` with 200 near-max payloads waiting, against its own idle RSS.

- baseline: the bridge's VmRSS after it answered `bridge.ID.info` and sat idle for 3 s.
- ours: the same process once 200 valid `show_message` payloads of 65,000 bytes (just under the
  default max_payload of 64 KiB; `{"text": "hi"}` padded with spaces) wait behind a 27 s scroll.

The driver is sense-emu (headless), whose scroll really takes its time, so the messages really
wait; the memory driver shows text at once. The subscription raises pending_bytes to 64 MiB so
all 200 may wait (the default, 1 MiB, would let 16 wait and reject the rest). A bridge that kept
each waiting message whole would hold 13 MB more; one that keeps the parsed command holds almost
nothing. Lower is better (target in bench/__init__.py). Holds the tests' emulator lock while it runs.
"""

from __future__ import annotations

IDLE_SECONDS = 3.0
WAITING = 200
PAYLOAD_BYTES = 65_000


def config_for(url: str) -> str:
    return f"""\
version: 1
device: {{id: flooded, driver: sense-emu}}
nats: {{servers: ["{url}"], randomize: false}}
subscriptions:
  - subject: bench.flooded.show
    action: show_message
    pending_bytes: 64MiB
    args: {{scroll_speed: 0.05}}
"""


def run() -> dict:
    import time

    from bench.common import outside_client, running_bridge
    from bridge.testing.emulator import emulator_lock
    from bridge.testing.nats_server import NatsServer
    from bridge.testing.procfs import vm_rss_mib

    def waiting(bridge, outside) -> int:
        return bridge.info(outside)["subscriptions"][0]["pending"]

    padded = b'{"text": "hi"}'.ljust(PAYLOAD_BYTES)
    with emulator_lock(), NatsServer() as server, outside_client(server.url) as outside:
        with running_bridge(config_for(server.url), "flooded", outside) as bridge:
            time.sleep(IDLE_SECONDS)
            idle = vm_rss_mib(bridge.process.pid)
            outside.publish("bench.flooded.show", "x" * 90)  # (8 + 6 × 90) × 0.05 s ≈ 27 s
            deadline = time.monotonic() + 10
            while bridge.info(outside)["subscriptions"][0]["received"] < 1 and time.monotonic() < deadline:
                time.sleep(0.05)
            for _ in range(WAITING):
                outside.publish("bench.flooded.show", padded)
            outside.flush()
            deadline = time.monotonic() + 20
            while waiting(bridge, outside) < WAITING and time.monotonic() < deadline:
                time.sleep(0.05)
            count = waiting(bridge, outside)
            time.sleep(0.5)
            flooded = vm_rss_mib(bridge.process.pid)
    if count != WAITING:
        raise RuntimeError(f"only {count} of {WAITING} messages were waiting")
    return {"ours": round(flooded, 1), "baseline": round(idle, 1), "unit": "MiB", "waiting": count}
