"""Durable readings per second the bridge sustains while every server is down, writing them to the
spool; target at least 1,000/s (far above any sensor's rate). Beside it, the bridge's CPU µs per
reading for a plain publication, a durable one with its server up (publish, ack, spool) and a
durable one spooling with the server down.

Each case is a fresh `bridge run` (memory driver) polling the temperature as fast as it can
(`interval: 0.2ms`; a read is skipped while the previous one is still on the sensor worker). The
readings counted are the publication's `published` in the web view's /state (it answers without
NATS); the CPU is the process's utime + stime (bridge/testing/procfs.py) over the same window.
No baseline: nats-py has no spool.

    python -m bench spool_rate
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import urllib.request
from pathlib import Path

DEVICE_ID = "bench"
SUBJECT = f"sensors.{DEVICE_ID}.temperature"
WINDOW = 5.0  # seconds measured per case


def _published(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/state", timeout=5) as response:
        return json.load(response)["publications"][0]["published"]


def _case(server, durable: bool, server_down: bool) -> dict:
    from bench.common import outside_client
    from bridge.testing.bridgeproc import BridgeProcess, memory_config
    from bridge.testing.nats_server import free_port
    from bridge.testing.procfs import CLOCK_TICKS_PER_SECOND, cpu_ticks

    port = free_port()
    extra = ", durable: {stream: SENSORS}" if durable else ""
    publication = f"  - {{subject: {SUBJECT}, sensor: temperature, interval: 0.2ms{extra}}}\n"
    config = memory_config(server.url, DEVICE_ID, publications=publication) + f"web:\n  listen: 127.0.0.1:{port}\n"
    with tempfile.TemporaryDirectory(prefix="bench-spool-") as folder:
        bridge = BridgeProcess(config, Path(folder), DEVICE_ID)
        os.environ["STATE_DIRECTORY"] = str(Path(folder) / "state")
        try:
            bridge.start()
        finally:
            del os.environ["STATE_DIRECTORY"]
        try:
            with outside_client(server.url) as outside:
                bridge.wait_ready(outside)
            if server_down:
                server.stop()
            time.sleep(1.0)  # past the start and the disconnect
            readings, ticks, began = _published(port), cpu_ticks(bridge.process.pid), time.monotonic()
            time.sleep(WINDOW)
            readings = _published(port) - readings
            ticks = cpu_ticks(bridge.process.pid) - ticks
            seconds = time.monotonic() - began
        finally:
            bridge.stop()
            if server_down:
                server.start()
    return {"rate": round(readings / seconds), "cpu_us": round(ticks / CLOCK_TICKS_PER_SECOND * 1e6 / max(readings, 1), 1)}


def run() -> dict:
    from bridge.testing.nats_server import NatsServer

    with NatsServer(jetstream=True) as server:
        server.start()
        plain = _case(server, durable=False, server_down=False)
        durable = _case(server, durable=True, server_down=False)
        spooling = _case(server, durable=True, server_down=True)
    return {"ours": spooling["rate"], "baseline": None, "unit": "readings/s",
            "cpu_us_per_reading_plain": plain["cpu_us"], "cpu_us_per_reading_durable": durable["cpu_us"],
            "cpu_us_per_reading_spooling": spooling["cpu_us"],
            "rate_plain": plain["rate"], "rate_durable": durable["rate"]}
