"""Failover after kill -9: 3-node cluster, the node `bridge run` is connected to dies.

The bridge's node (read from `bridge.ID.info` "server") is killed with SIGKILL; the figure is the
seconds from the kill until a `get_pixels` request sent through another node is answered by the
bridge, which has to notice, reconnect elsewhere and re-subscribe. Default reconnect settings.
The median of three rounds; no baseline (nats-py has no bridge to fail over).
"""

from __future__ import annotations

import statistics

ROUNDS = 3
REQUEST_TIMEOUT = 0.1


def run() -> dict:
    from bench.common import failover_seconds
    from bridge.testing.nats_server import NatsServer

    seconds = failover_seconds(NatsServer.kill, ROUNDS, REQUEST_TIMEOUT)
    return {
        "ours": round(statistics.median(seconds), 3),
        "baseline": None,
        "unit": "s",
        "rounds": [round(value, 3) for value in seconds],
    }
