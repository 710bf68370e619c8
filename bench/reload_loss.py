"""Requests left without a reply across SIGHUP reloads under steady load; the target is none.

`bridge run` (memory driver) serves `clear` on one subject. A nats-py client (on its own loop in
this process, bridge/testing/outside.py) sends requests at a steady rate, never waiting for a reply before
sending the next; meanwhile the bridge gets SIGHUP once a second with a config that changes only
that subscription's `args` (the colour), alternating (bridge/testing/reloads.py). Every request has
5 s to be answered; the figure is how many were not (timeout, no responders or an error reply).
No baseline.

    python -m bench reload_loss
"""

from __future__ import annotations

RATE = 2000  # requests per second
SECONDS = 12.0


def run() -> dict:
    from bench.common import outside_client, running_bridge
    from bridge.testing.nats_server import NatsServer
    from bridge.testing.reloads import DEVICE_ID, reload_config, unanswered_across_reloads

    colours = ("#000001", "#000002")
    with NatsServer() as server, outside_client(server.url) as outside:
        with running_bridge(reload_config(server.url, colours[0]), DEVICE_ID, outside) as process:
            result = unanswered_across_reloads(process, outside, server.url, colours, rate=RATE, seconds=SECONDS)
    if result["reloads"] == 0:
        raise RuntimeError(f"no reload was applied: {result}")
    return {"ours": result["unanswered"], "baseline": None, "unit": "requests", **result}
