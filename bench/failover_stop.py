"""Failover after SIGSTOP: 3-node cluster, the node `bridge run` is connected to freezes.

A frozen server keeps its sockets open and answers nothing, so only the bridge's own PINGs can
tell (defaults: every 10 s, dead after 2 unanswered). The figure is the seconds from SIGSTOP until
a `get_pixels` request sent through another node is answered by the bridge. Where the freeze
falls in the ping cycle decides between about 20 s and 30 s, so this is one round (a median
would cost minutes) and the reading varies from run to run within that window. No baseline.
"""

from __future__ import annotations

ROUNDS = 1
TARGET_SECONDS = 30
REQUEST_TIMEOUT = 0.1


def run() -> dict:
    from bench.common import failover_seconds
    from bridge.nats.server import NatsServer

    (seconds,) = failover_seconds(NatsServer.freeze, ROUNDS, REQUEST_TIMEOUT)
    return {"ours": round(seconds, 3), "baseline": None, "unit": "s", "target": TARGET_SECONDS}
