"""Client pub→sub throughput: 200k 16-byte messages through one local nats-server, ours vs nats-py.

One client process subscribes, flushes, then publishes every message as fast as its API allows
(a plain loop of `publish` calls: what a user writes) and receives them back on the same
connection. The figure is messages received per wall-clock second, from the first publish to the
last delivery, with each side's CPU per message beside it (bench.common.rate_and_cpu_row). Each
round is a fresh process per side, alternating ours and nats-py.

    python -m bench.pubsub ours|baseline URL     # one measurement, prints {"rate": ..., "cpu_ticks": ...}
"""

from __future__ import annotations

import json
import sys

MESSAGES = 200_000
PAYLOAD = b"0123456789abcdef"
SUBJECT = "bench.pubsub"
ROUNDS = 5


def ours(url: str) -> dict:
    from bench.common import our_pubsub_rate

    def send(publish):
        for _ in range(MESSAGES):
            publish(SUBJECT, PAYLOAD)

    return our_pubsub_rate(url, SUBJECT, MESSAGES, send)


def baseline(url: str) -> dict:
    from bench.common import nats_py_pubsub_rate

    async def send(publish):
        for _ in range(MESSAGES):
            await publish(SUBJECT, PAYLOAD)

    return nats_py_pubsub_rate(url, SUBJECT, MESSAGES, send)


def run() -> dict:
    from bench.common import rate_and_cpu_row, rounds_through_one_server

    return rate_and_cpu_row(*rounds_through_one_server("pubsub", ROUNDS))


if __name__ == "__main__":
    side, url = sys.argv[1:]
    print(json.dumps({"ours": ours, "baseline": baseline}[side](url)))
