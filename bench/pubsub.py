"""Client pub→sub throughput: 200k 16-byte messages through one local nats-server, ours vs nats-py.

One client process subscribes, flushes, then publishes every message as fast as its API allows
(a plain loop of `publish` calls: what a user writes) and receives them back on the same
connection. The figure is messages received per wall-clock second, from the first publish to the
last delivery. Each round is a fresh process per side, alternating ours and nats-py.

    python -m bench.pubsub ours|baseline URL     # one measurement, prints {"rate": ...}
"""

from __future__ import annotations

import json
import sys
import time

MESSAGES = 200_000
PAYLOAD = b"0123456789abcdef"
SUBJECT = "bench.pubsub"
ROUNDS = 5
TARGET_RATIO = 1


def ours(url: str) -> float:
    from twisted.internet import defer, reactor

    from bridge.nats import Client

    client = Client([url], randomize=False)
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
        for _ in range(MESSAGES):
            publish(SUBJECT, PAYLOAD)
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
        for _ in range(MESSAGES):
            await publish(SUBJECT, PAYLOAD)
        await nc.flush()
        ended = await finished
        await nc.close()
        return MESSAGES / (ended - started)

    return asyncio.run(race())


def run() -> dict:
    from bench.common import rates_through_one_server

    return rates_through_one_server("pubsub", ROUNDS, TARGET_RATIO)


if __name__ == "__main__":
    side, url = sys.argv[1:]
    print(json.dumps({"rate": {"ours": ours, "baseline": baseline}[side](url)}))
