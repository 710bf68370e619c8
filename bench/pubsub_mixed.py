"""Client pub→sub throughput on mixed traffic, ours vs nats-py, through one local nats-server.

The same 5,000 messages for both sides, drawn once from a fixed seed: payloads of 0 B to 64 KiB
(log-uniform, random bytes, so CRLFs turn up inside them), every second one with two headers
(an HMSG on the way back), every third one with a reply subject. One client process subscribes,
flushes, publishes them all in a plain loop of `publish` calls and receives them back on the same
connection. The figure is messages received per wall-clock second from the first publish to the
last delivery; each round is a fresh process per side, alternating ours and nats-py.

    python -m bench.pubsub_mixed ours|baseline URL     # one measurement, prints {"rate": ...}
"""

from __future__ import annotations

import json
import random
import sys
import time

MESSAGES = 5_000  # ≈ 30 MB each way: well inside nats-server's 64 MB slow-consumer limit
# Our publish() cannot yield to the reactor, so the whole burst is queued before the first byte is
# written (nats-py's awaited publish flushes every 2 MB instead): the queue must hold it.
OUR_BUFFER_SIZE = 64 * 1024 * 1024
SUBJECT = "bench.mixed"
ROUNDS = 7
TARGET_RATIO = 1


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


def ours(url: str) -> float:
    from twisted.internet import defer, reactor

    from bridge.nats import Client

    messages = make_messages()
    client = Client([url], randomize=False, buffer_size=OUR_BUFFER_SIZE)
    outcome = {}

    @defer.inlineCallbacks
    def race():
        yield client.connect()
        finished = defer.Deferred()
        received = 0

        def on_message(_msg):
            nonlocal received
            received += 1
            if received == MESSAGES:
                finished.callback(time.perf_counter())

        client.subscribe(SUBJECT, on_message)
        yield client.flush()
        publish = client.publish
        started = time.perf_counter()
        for subject, payload, reply, headers in messages:
            publish(subject, payload, reply=reply, headers=headers)
        ended = yield finished
        outcome["rate"] = MESSAGES / (ended - started)
        yield client.close()

    def done(result):
        outcome.setdefault("failure", result)
        reactor.stop()

    reactor.callWhenRunning(lambda: race().addBoth(done))
    reactor.run()
    if "rate" not in outcome:
        raise RuntimeError(f"our client did not finish: {outcome.get('failure')}")
    return outcome["rate"]


def baseline(url: str) -> float:
    import asyncio

    import nats

    messages = make_messages()

    async def race() -> float:
        nc = await nats.connect(url)
        finished = asyncio.get_running_loop().create_future()
        received = 0

        async def on_message(_msg):
            nonlocal received
            received += 1
            if received == MESSAGES:
                finished.set_result(time.perf_counter())

        await nc.subscribe(SUBJECT, cb=on_message)
        await nc.flush()
        publish = nc.publish
        started = time.perf_counter()
        for subject, payload, reply, headers in messages:
            await publish(subject, payload, reply=reply or "", headers=headers)
        await nc.flush()
        ended = await finished
        await nc.close()
        return MESSAGES / (ended - started)

    return asyncio.run(race())


def run() -> dict:
    from bench.common import rates_through_one_server

    return rates_through_one_server("pubsub_mixed", ROUNDS, TARGET_RATIO)


if __name__ == "__main__":
    side, url = sys.argv[1:]
    print(json.dumps({"rate": {"ours": ours, "baseline": baseline}[side](url)}))
