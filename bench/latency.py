"""`get_pixels` request/reply latency, p50 and p99 over 2k sequential requests.

The same nats-py requester process measures both sides: one request at a time, each timed from
the call to the reply (time.perf_counter), after a short warm-up that is not counted.

- ours: `bridge run` (memory driver) answering `get_pixels` through its device worker thread.
- baseline: a nats-py responder holding the same 64 colours and answering with their JSON.

Both responders run for the whole benchmark; the rounds alternate between them. The ratio is on
p50 (lower is better); p99 is reported beside it.

    python -m bench.latency requester URL SUBJECT   # one measurement, prints {"p50": ms, "p99": ms}
    python -m bench.latency baseline URL            # the baseline responder
"""

from __future__ import annotations

import json
import statistics
import sys
import time

REQUESTS = 2_000
WARM_UP = 100
DEVICE_ID = "bench-latency"
OUR_SUBJECT = "bench.latency.get"
BASELINE_SUBJECT = "bench.baseline.get"


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def requester(url: str, subject: str) -> dict:
    import asyncio

    import nats

    async def race() -> dict:
        nc = await nats.connect(url)
        request = nc.request
        clock = time.perf_counter
        expected = None
        for _ in range(WARM_UP):
            expected = (await request(subject, b"", timeout=5)).data
        colours = json.loads(expected)
        if len(colours) != 64:
            raise RuntimeError(f"{subject} did not answer with 64 colours: {expected[:200]!r}")
        samples = []
        for _ in range(REQUESTS):
            started = clock()
            reply = await request(subject, b"", timeout=5)
            samples.append(clock() - started)
            if reply.data != expected:
                raise RuntimeError(f"{subject} answered {reply.data[:200]!r}")
        await nc.close()
        return {"p50": percentile(samples, 0.50) * 1000, "p99": percentile(samples, 0.99) * 1000}

    return asyncio.run(race())


def baseline_responder(url: str) -> None:
    """The hand-written alternative: the display's 64 colours in a list, sent as JSON on request."""
    from bench.common import serve_with_nats_py

    pixels = [[0, 0, 0] for _ in range(64)]

    async def on_request(msg):
        await msg.respond(json.dumps(pixels).encode())

    serve_with_nats_py(url, {BASELINE_SUBJECT: on_request})


def run() -> dict:
    from bench.common import bridge_against_baseline

    subscriptions = f"  - {{subject: {OUR_SUBJECT}, action: get_pixels}}\n"
    ours, theirs = bridge_against_baseline(
        "latency", DEVICE_ID, subscriptions,
        lambda url, _pid: ("requester", url, OUR_SUBJECT), lambda url, _pid: ("requester", url, BASELINE_SUBJECT),
    )  # fmt: skip
    return {
        "ours": round(statistics.median(r["p50"] for r in ours), 3),
        "baseline": round(statistics.median(r["p50"] for r in theirs), 3),
        "unit": "ms p50",
        "p99": round(statistics.median(r["p99"] for r in ours), 3),
        "baseline_p99": round(statistics.median(r["p99"] for r in theirs), 3),
    }


if __name__ == "__main__":
    role, *arguments = sys.argv[1:]
    if role == "requester":
        print(json.dumps(requester(*arguments)))
    elif role == "baseline":
        baseline_responder(*arguments)
    else:
        sys.exit(f"unknown role {role!r}")
