"""What the process-level benchmarks share: one side per fresh interpreter, alternating rounds.

Our client runs on the Twisted reactor (which cannot restart) and nats-py on asyncio, so every
measured side runs in its own `python -m bench.<module> <role> ...` process. A *measurement*
process prints one JSON object as its last stdout line and exits; a *helper* process (a nats-py
responder, a bridge) prints "ready" once it is subscribed and runs until it is stopped by PID.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator

from bridge.testing.helpers import announce_ready, helper_process

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


def alternate(rounds: int, ours: Callable[[], float], baseline: Callable[[], float]) -> tuple[list, list]:
    """ours, baseline, ours, ... so that drift on a shared machine hits both sides alike."""
    our_values, baseline_values = [], []
    for _ in range(rounds):
        our_values.append(ours())
        baseline_values.append(baseline())
    return our_values, baseline_values


def our_pubsub_rate(url: str, subject: str, count: int, send: Callable, **client_options) -> float:
    """Messages/s from the first publish to the `count`th delivery back on the same connection,
    with our client: it subscribes to `subject`, flushes, then `send(client.publish)` publishes
    everything in a plain loop (what a user writes)."""
    from twisted.internet import defer, reactor

    from bridge.nats import Client, ClientOptions

    client = Client(ClientOptions.from_keywords([url], randomize=False, **client_options))
    outcome = {}

    @defer.inlineCallbacks
    def race():
        yield client.connect()
        finished = defer.Deferred()
        received = 0

        def on_message(_msg):
            nonlocal received
            received += 1
            if received == count:
                finished.callback(time.perf_counter())

        client.subscribe(subject, on_message)
        yield client.flush()
        started = time.perf_counter()
        send(client.publish)
        ended = yield finished
        outcome["rate"] = count / (ended - started)
        yield client.close()

    def done(result):
        outcome.setdefault("failure", result)
        reactor.stop()

    reactor.callWhenRunning(lambda: race().addBoth(done))
    reactor.run()
    if "rate" not in outcome:
        raise RuntimeError(f"our client did not finish: {outcome.get('failure')}")
    return outcome["rate"]


def nats_py_pubsub_rate(url: str, subject: str, count: int, send: Callable) -> float:
    """The same with nats-py; `send(nc.publish)` is a coroutine awaiting each publish."""
    import asyncio

    import nats

    async def race() -> float:
        nc = await nats.connect(url)
        finished = asyncio.get_running_loop().create_future()
        received = 0

        async def on_message(_msg):
            nonlocal received
            received += 1
            if received == count:
                finished.set_result(time.perf_counter())

        await nc.subscribe(subject, cb=on_message)
        await nc.flush()
        started = time.perf_counter()
        await send(nc.publish)
        await nc.flush()
        ended = await finished
        await nc.close()
        return count / (ended - started)

    return asyncio.run(race())


def rates_through_one_server(module: str, rounds: int, target: float) -> dict:
    """A row from `python -m bench.<module> ours|baseline URL` (each prints {"rate": msgs/s}) run
    in alternating rounds against one nats-server: the medians of both sides."""
    import statistics

    from bridge.testing.nats_server import NatsServer

    with NatsServer() as server:
        our_rates, their_rates = alternate(
            rounds,
            lambda: measure(module, "ours", server.url)["rate"],
            lambda: measure(module, "baseline", server.url)["rate"],
        )
    return {
        "ours": round(statistics.median(our_rates)),
        "baseline": round(statistics.median(their_rates)),
        "unit": "msgs/s",
        "target": target,
    }


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


def bridge_against_baseline(module: str, device_id: str, subscriptions: str, ours: tuple, baseline: tuple):
    """Alternate rounds of `python -m bench.<module> *args(url)` against a `bridge run` with these
    subscriptions and against the module's nats-py `baseline` helper, both running throughout.

    `ours` and `baseline` are the measurement's arguments after the URL; returns both lists of results.
    """
    from bridge.testing.nats_server import NatsServer

    with NatsServer() as server, outside_client(server.url) as outside:
        config = bridge_config(device_id, [server.url], subscriptions)
        with running_bridge(config, device_id, outside), helper(module, "baseline", server.url):
            return alternate(
                ROUNDS,
                lambda: measure(module, ours[0], server.url, *ours[1:]),
                lambda: measure(module, baseline[0], server.url, *baseline[1:]),
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
