"""Client pub→sub throughput on mixed traffic, ours vs nats-py, through one local nats-server.

The same 5,000 messages for both sides, drawn once from a fixed seed: payloads of 0 B to 64 KiB
(log-uniform, random bytes, so CRLFs turn up inside them), every second one with two headers
(an HMSG on the way back), every third one with a reply subject. One client process subscribes,
flushes, publishes them all in a plain loop of `publish` calls and receives them back on the same
connection, BURSTS times in a row (the next burst once the last one is back). The figure is
messages received per wall-clock second from the first publish to the last delivery, with the
process's CPU per message over the same span beside it; each round is a fresh process per side,
alternating ours and nats-py, after one warm-up pair.

    python -m bench.pubsub_mixed ours|baseline URL     # one measurement, prints {"rate": ..., "cpu_ticks": ...}
"""

from __future__ import annotations

import json
import random
import sys

MESSAGES = 5_000  # ≈ 30 MB each way: well inside nats-server's 64 MB slow-consumer limit
# Our publish() cannot yield to the reactor, so the whole burst is queued before the first byte is
# written (nats-py's awaited publish flushes every 2 MB instead): the queue must hold it.
OUR_BUFFER_SIZE = 64 * 1024 * 1024
# One burst costs either side 6–10 clock ticks of CPU on this box: BURSTS of them make a round's
# CPU sample 60–100 ticks, so one tick is under 2 % of it.
BURSTS = 10
SUBJECT = "bench.mixed"
ROUNDS = 7
WARM_UP = 1


def make_messages() -> list[tuple[str, bytes, str | None, dict | None]]:
    """(subject, payload, reply, headers) for every message, the same on both sides."""
    rng = random.Random(11)
    messages = []
    for index in range(MESSAGES):
        payload = rng.randbytes(int(2 ** rng.uniform(0, 16)) if index else 0)
        reply = f"bench.mixed.reply.{index}" if index % 3 == 0 else None
        headers = {"Trace-Id": f"{rng.getrandbits(64):016x}", "Seq": str(index)} if index % 2 else None
        messages.append((SUBJECT, payload, reply, headers))
    return messages


def ours(url: str) -> dict:
    from bench.common import our_pubsub_rate

    messages = make_messages()

    def send(publish):
        for subject, payload, reply, headers in messages:
            publish(subject, payload, reply=reply, headers=headers)

    return our_pubsub_rate(url, SUBJECT, MESSAGES, send, BURSTS, buffer_size=OUR_BUFFER_SIZE)


def baseline(url: str) -> dict:
    from bench.common import nats_py_pubsub_rate

    messages = make_messages()

    async def send(publish):
        for subject, payload, reply, headers in messages:
            await publish(subject, payload, reply=reply or "", headers=headers)

    return nats_py_pubsub_rate(url, SUBJECT, MESSAGES, send, BURSTS)


def run() -> dict:
    from bench.common import rate_and_cpu_row, rounds_through_one_server

    return rate_and_cpu_row(*rounds_through_one_server("pubsub_mixed", ROUNDS, WARM_UP))


if __name__ == "__main__":
    side, url = sys.argv[1:]
    print(json.dumps({"ours": ours, "baseline": baseline}[side](url)))
