"""What the process-level benchmarks share: one side per fresh interpreter, alternating rounds.

Our client runs on the Twisted reactor (which cannot restart) and nats-py on asyncio, so every
measured side runs in its own `python -m bench.<module> <role> ...` process. A *measurement*
process prints one JSON object as its last stdout line and exits; a *helper* process (a nats-py
responder, a bridge) prints "ready" once it is subscribed and runs until it is stopped by PID.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator

from bridge.testing.helpers import announce_ready, helper_process
from bridge.testing.procfs import CLOCK_TICKS_PER_SECOND, cpu_ticks

ROUNDS = 3
REPO = Path(__file__).resolve().parent.parent


def measure(module: str, *args: object, timeout: float = 120.0) -> dict:
    """Run one measurement in a fresh interpreter and return the JSON object it printed last."""
    command = [sys.executable, "-m", f"bench.{module}", *map(str, args)]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{' '.join(command[2:])} exited with {done.returncode}:\n{done.stderr}{done.stdout}")
    return json.loads(lines[-1])


def alternate(rounds: int, ours: Callable[[], object], baseline: Callable[[], object], warm_up: int = 0
              ) -> tuple[list, list]:
    """ours, baseline, ours, ... so that drift on a shared machine hits both sides alike; the first
    `warm_up` pairs (page cache, server buffers, CPU frequency) are run and dropped."""
    our_values, baseline_values = [], []
    for index in range(warm_up + rounds):
        our_value, baseline_value = ours(), baseline()
        if index >= warm_up:
            our_values.append(our_value)
            baseline_values.append(baseline_value)
    return our_values, baseline_values


def compare_rounds(ours: list[float], baseline: list[float]) -> tuple[float, float, float]:
    """(median of ours, median of baseline, median of the per-round ratios ours / baseline).

    The ratio of a row is taken per round: the two sides of a round run back to back, so a
    neighbour's load that lasts a few seconds raises or lowers both; the median then drops the
    rounds where a burst hit only one side. A ratio of the two medians would pair values from
    different minutes.
    """
    if len(ours) != len(baseline) or not ours:
        raise ValueError(f"rounds do not pair up: {len(ours)} of ours, {len(baseline)} of the baseline")
    ratios = [our_value / baseline_value for our_value, baseline_value in zip(ours, baseline)]
    return statistics.median(ours), statistics.median(baseline), statistics.median(ratios)


def cpu_us_per_message(ticks: int, messages: int) -> float:
    """CPU microseconds per message from a difference of /proc clock ticks."""
    return ticks * 1_000_000 / CLOCK_TICKS_PER_SECOND / messages


def rate_and_cpu_row(ours: list[dict], baseline: list[dict]) -> dict:
    """The row of a throughput figure from its rounds, each a measurement's JSON: `rate` (msgs/s),
    `messages` and `cpu_ticks` (the measured process's CPU over the same span).

    `ours`/`baseline`/`ratio` are wall-clock rates; the CPU figures sit beside them, with
    `cpu_ratio` (ours ÷ baseline CPU µs per message, per-round median: lower is better) and
    `cpu_ticks_min` (the smallest sample of a round: one tick in it is the CPU figure's resolution).
    """
    our_rate, baseline_rate, ratio = compare_rounds([r["rate"] for r in ours], [r["rate"] for r in baseline])
    our_cpu = [cpu_us_per_message(r["cpu_ticks"], r["messages"]) for r in ours]
    baseline_cpu = [cpu_us_per_message(r["cpu_ticks"], r["messages"]) for r in baseline]
    our_cpu_median, baseline_cpu_median, cpu_ratio = compare_rounds(our_cpu, baseline_cpu)
    return {
        "ours": round(our_rate),
        "baseline": round(baseline_rate),
        "unit": "msgs/s",
        "ratio": ratio,
        "ours_rounds": [round(r["rate"]) for r in ours],
        "baseline_rounds": [round(r["rate"]) for r in baseline],
        "ours_cpu_us_per_msg": round(our_cpu_median, 2),
        "baseline_cpu_us_per_msg": round(baseline_cpu_median, 2),
        "cpu_ratio": round(cpu_ratio, 2),
        "ours_cpu_rounds": [round(value, 2) for value in our_cpu],
        "baseline_cpu_rounds": [round(value, 2) for value in baseline_cpu],
        "cpu_ticks_min": min(r["cpu_ticks"] for r in ours + baseline),
    }


def our_pubsub_rate(url: str, subject: str, count: int, send: Callable, bursts: int = 1, **client_options) -> dict:
    """Our client's race: it subscribes to `subject`, flushes, then `send(client.publish)`
    publishes a burst of `count` messages in a plain loop (what a user writes); the next burst
    starts once the last one is delivered back on the same connection.

    Returns `rate` (messages/s from the first publish to the last delivery), `messages` and
    `cpu_ticks` (this process, all threads, over the same span).
    """
    from twisted.internet import defer, reactor

    from bridge.nats import Client, ClientOptions

    client = Client(ClientOptions.from_keywords([url], randomize=False, **client_options))
    outcome = {}

    @defer.inlineCallbacks
    def race():
        yield client.connect()
        finished = None
        received = 0

        def on_message(_msg):
            nonlocal received
            received += 1
            if received == count:
                received = 0
                finished.callback(None)

        client.subscribe(subject, on_message)
        yield client.flush()
        ticks_before, started = cpu_ticks(os.getpid()), time.perf_counter()
        for _ in range(bursts):
            finished = defer.Deferred()
            send(client.publish)
            yield finished
        ended, ticks_after = time.perf_counter(), cpu_ticks(os.getpid())
        outcome["result"] = race_result(count * bursts, ended - started, ticks_after - ticks_before)
        yield client.close()

    def done(result):
        outcome.setdefault("failure", result)
        reactor.stop()

    reactor.callWhenRunning(lambda: race().addBoth(done))
    reactor.run()
    if "result" not in outcome:
        raise RuntimeError(f"our client did not finish: {outcome.get('failure')}")
    return outcome["result"]


def nats_py_pubsub_rate(url: str, subject: str, count: int, send: Callable, bursts: int = 1) -> dict:
    """The same with nats-py; `send(nc.publish)` is a coroutine awaiting each publish."""
    import asyncio

    import nats

    async def race() -> dict:
        nc = await nats.connect(url)
        finished = None
        received = 0

        async def on_message(_msg):
            nonlocal received
            received += 1
            if received == count:
                received = 0
                finished.set_result(None)

        await nc.subscribe(subject, cb=on_message)
        await nc.flush()
        ticks_before, started = cpu_ticks(os.getpid()), time.perf_counter()
        for _ in range(bursts):
            finished = asyncio.get_running_loop().create_future()
            await send(nc.publish)
            await nc.flush()
            await finished
        ended, ticks_after = time.perf_counter(), cpu_ticks(os.getpid())
        await nc.close()
        return race_result(count * bursts, ended - started, ticks_after - ticks_before)

    return asyncio.run(race())


def race_result(messages: int, seconds: float, ticks: int) -> dict:
    """What a throughput measurement prints: the input of `rate_and_cpu_row`."""
    return {"rate": messages / seconds, "messages": messages, "seconds": seconds, "cpu_ticks": ticks}


def rounds_through_one_server(module: str, rounds: int, warm_up: int = 0) -> tuple[list[dict], list[dict]]:
    """Alternating rounds of `python -m bench.<module> ours|baseline URL` (each prints a
    `race_result`) against one nats-server."""
    from bridge.testing.nats_server import NatsServer

    with NatsServer() as server:
        return alternate(
            rounds,
            lambda: measure(module, "ours", server.url),
            lambda: measure(module, "baseline", server.url),
            warm_up,
        )


def helper(module: str, *args: object, timeout: float = 30.0):
    """A long-running side (`python -m bench.<module> ...`), yielded once it printed "ready"."""
    return helper_process(f"bench.{module}", *args, timeout=timeout, cwd=REPO)


def serve_with_nats_py(url: str, callbacks: dict) -> None:
    """A baseline helper process: subscribe each subject to its nats-py callback, say ready, serve
    until stopped by PID."""
    import asyncio

    import nats

    async def serve():
        nc = await nats.connect(url)
        for subject, callback in callbacks.items():
            await nc.subscribe(subject, cb=callback)
        await nc.flush()
        announce_ready()
        await asyncio.Event().wait()  # until SIGTERM

    asyncio.run(serve())


def bridge_against_baseline(module: str, device_id: str, subscriptions: str, ours: Callable, baseline: Callable,
                            rounds: int = ROUNDS, warm_up: int = 0) -> tuple[list, list]:
    """Alternate rounds of a `python -m bench.<module> ...` measurement against a `bridge run`
    with these subscriptions and against the module's nats-py `baseline` helper, both running
    throughout.

    `ours(url, pid)` and `baseline(url, pid)` give the measurement's arguments, `pid` being the
    consumer's process (to read its CPU from /proc); returns both lists of results.
    """
    from bridge.testing.nats_server import NatsServer

    with NatsServer() as server, outside_client(server.url) as outside:
        config = bridge_config(device_id, [server.url], subscriptions)
        with running_bridge(config, device_id, outside) as bridge, helper(module, "baseline", server.url) as helped:
            return alternate(
                rounds,
                lambda: measure(module, *ours(server.url, bridge.process.pid)),
                lambda: measure(module, *baseline(server.url, helped.pid)),
                warm_up,
            )


def bridge_config(device_id: str, servers: list[str], subscriptions: str, publications: str = "") -> str:
    """A `bridge run` config for the memory driver with the nats block at its defaults (reconnect,
    ping interval) except for a fixed server order, so figures describe what a user gets."""
    from bridge.testing.bridgeproc import memory_config

    return memory_config(servers, device_id, subscriptions, publications, reconnect=None)


@contextlib.contextmanager
def running_bridge(config_text: str, device_id: str, outside) -> Iterator:
    """`bridge run` as a subprocess (bridge/testing/bridgeproc.py), yielded once it answers bridge.ID.info."""
    from bridge.testing.bridgeproc import BridgeProcess

    with tempfile.TemporaryDirectory(prefix="bench-bridge-") as folder:
        process = BridgeProcess(config_text, Path(folder), device_id).start()
        try:
            process.wait_ready(outside)
            yield process
        finally:
            try:
                process.stop()
            finally:
                process.kill()


def outside_client(servers: list[str] | str, **options):
    """nats-py on a background loop (bridge/testing/outside.py): the world that talks to a bridge."""
    from bridge.testing.outside import OutsideClient

    return OutsideClient(servers, **options)


def failover_seconds(interrupt: Callable, rounds: int, request_timeout: float, give_up: float = 90.0) -> list[float]:
    """Seconds from `interrupt(node)` on the node a bridge is connected to until a `get_pixels`
    request sent through another node of a 3-node cluster is answered, once per round.

    After each round the interrupted node is thawed and killed (if it is not gone already), and
    started again when another round follows; the bridge stays where it failed over to.
    """
    import time

    import nats.errors

    from bridge.testing.nats_server import NatsCluster

    async def expected_error(_error) -> None:
        """nats-py prints every error by default; losing a node is the point here."""

    device_id = "bench-failover"
    subject = "bench.failover.get"
    subscriptions = f"  - {{subject: {subject}, action: get_pixels}}\n"
    seconds = []
    with NatsCluster(3, name="bench") as cluster, outside_client(cluster.urls, error_cb=expected_error) as watcher:
        config = bridge_config(device_id, cluster.urls, subscriptions)
        with running_bridge(config, device_id, watcher) as bridge:
            for round_number in range(1, rounds + 1):
                url = bridge.info(watcher)["server"]
                node = next(server for server in cluster.servers if server.url == url)
                other = next(server for server in cluster.servers if server is not node)
                with outside_client(other.url, error_cb=expected_error) as asker:
                    asker.request(subject, timeout=5)  # the bridge is reachable from there now
                    started = time.perf_counter()
                    interrupt(node)
                    while True:
                        try:
                            asker.request(subject, timeout=request_timeout)
                            break
                        except nats.errors.NoRespondersError:
                            time.sleep(0.005)
                        except nats.errors.TimeoutError:
                            pass
                        if time.perf_counter() - started > give_up:
                            raise RuntimeError(f"no answer through {other.url} within {give_up}s:\n{bridge.logs()}")
                    seconds.append(time.perf_counter() - started)
                    node.thaw()
                    node.kill()
                if round_number < rounds:
                    node.start()
                    cluster.wait_routed()
    return seconds
