"""Readings missing from the stream, of those a durable publication took while its server was
killed again and again; the target is none.

A 3-node JetStream cluster, `bridge run` (memory driver) publishing a temperature reading every
50 ms with `durable: {stream: SENSORS}`; the node the bridge is connected to is killed (kill -9)
and started again 8 times (bridge/testing/durable.py `kill_cycle`). After a graceful stop the
stream is read back with nats-py and held against the spool's floor: every reading below it was
acked and must be in the stream, once. No baseline (a plain publication loses what was in flight
at each kill).

    python -m bench telemetry_loss
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

KILLS = 8
DEVICE_ID = "bench"
SUBJECT = f"sensors.{DEVICE_ID}.temperature"


def run() -> dict:
    from bench.common import outside_client
    from bridge.testing.bridgeproc import BridgeProcess, memory_config
    from bridge.testing.durable import acked, kill_cycle, losses, spool_state, stream_messages
    from bridge.testing.polling import wait_for
    from bridge.testing.nats_server import NatsCluster

    publication = f"  - {{subject: {SUBJECT}, sensor: temperature, interval: 50ms, durable: {{stream: SENSORS}}}}\n"
    with tempfile.TemporaryDirectory(prefix="bench-durable-") as folder, NatsCluster(3, jetstream=True) as cluster:
        state = Path(folder) / "state"
        bridge = BridgeProcess(memory_config(cluster.urls, DEVICE_ID, publications=publication), Path(folder),
                               DEVICE_ID)
        os.environ["STATE_DIRECTORY"] = str(state)
        try:
            bridge.start()
        finally:
            del os.environ["STATE_DIRECTORY"]
        with outside_client(cluster.urls) as outside:
            try:
                bridge.wait_ready(outside)
                wait_for(lambda: acked(bridge, outside) >= 5, what="the first readings acked")
                kill_cycle(cluster, bridge, outside, KILLS)
            finally:
                bridge.stop()
            floor, leftover = spool_state(state, SUBJECT)
            counts = losses(wait_for(lambda: stream_messages(outside), timeout=30.0, what="the stream"), floor, leftover)
    return {"ours": counts["missing"], "baseline": None, "unit": "readings", "kills": KILLS, **counts}
