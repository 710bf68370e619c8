"""Failover after SIGSTOP: 3-node cluster, the node `bridge run` is connected to freezes.

A frozen server keeps its sockets open and answers nothing, so only the bridge's own PINGs can
tell (defaults: one every 10 s, dead when 2 are outstanding at the next tick). The figure is the
seconds from SIGSTOP until a `get_pixels` request sent through another node is answered by the
bridge. The freeze comes within a second of the bridge connecting, which is the worst phase of
the ping cycle: detection takes three intervals (30 s) less that second, then the reconnect and
re-subscription add a few tens of milliseconds. One round, no baseline.
"""

from __future__ import annotations

ROUNDS = 1
REQUEST_TIMEOUT = 0.1


def run() -> dict:
    from bench.common import failover_seconds
    from bridge.testing.nats_server import NatsServer

    (seconds,) = failover_seconds(NatsServer.freeze, ROUNDS, REQUEST_TIMEOUT)
    return {"ours": round(seconds, 3), "baseline": None, "unit": "s"}
