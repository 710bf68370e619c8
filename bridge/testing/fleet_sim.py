"""A simulated fleet: N bridges (memory driver) in one process, for benches and tests.

`start_bridges(count, servers, reactor)` starts `count` full `Bridge`s in the running reactor, each
with its own client (connection), device and instance id, device ids `sim-0000`, `sim-0001`, ...
(from `first` on). `python -m bridge.testing.fleet_sim URL[,URL...] COUNT [FIRST] [--fleet KEY]` runs that as
a helper process (bench/common.py `helper()`): it prints "ready" once every bridge runs, stops them
all gracefully on SIGTERM (each says "offline"). On 2 cores a few such processes of N/processes
bridges each reach a fleet of 200 (`simulated_fleet`).

With `--fleet KEY` each bridge boots from a `fleet: {key: KEY}` bootstrap (no subscriptions of its
own) and runs a `ConfigFollower` on it, as `bridge run` does, each with its own cache directory in a
temporary folder. The helper then also prints `applied REVISION MONOTONIC` once *all* its bridges
applied that revision, MONOTONIC being `time.monotonic()` (system-wide on Linux) when the last one
did: the benches' cheap signal, the bridge code itself is unchanged.

With `--homeassistant` each bridge announces itself to Home Assistant (`HA_CONFIG`: two sensors,
a text, a button and a light), for the ha_discovery bench.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator, Sequence

from twisted.internet import defer, threads
from twisted.logger import LogLevel

from bridge.cli.exit import ExitStatus
from bridge.cli.logs import start_logging
from bridge.config import load_config
from bridge.devices import open_device
from bridge.fleet.follow import ConfigCache, ConfigFollower, boot_config
from bridge.runtime.bridge import Bridge
from bridge.testing.helpers import announce_ready, helper_process

PREFIX = "sim"


def device_id(number: int, prefix: str = PREFIX) -> str:
    return f"{prefix}-{number:04d}"


SIM_CONFIG = """\
version: 1
device: {{id: {device}, driver: memory}}
nats: {{servers: {servers}, randomize: false}}
subscriptions:
  - {{subject: sim.all.clear, action: clear}}
"""


HA_CONFIG = """\
version: 1
device: {{id: {device}, driver: memory}}
nats: {{servers: {servers}, randomize: false}}
homeassistant: {{}}
subscriptions:
  - {{subject: 'sim.${{device.id}}.text', action: show_message}}
  - {{subject: 'sim.${{device.id}}.clear', action: clear}}
publications:
  - {{subject: 'sensors.${{device.id}}.temperature', sensor: temperature, interval: 60s}}
  - {{subject: 'sensors.${{device.id}}.humidity', sensor: humidity, interval: 60s}}
"""


FLEET_BOOTSTRAP = """\
version: 1
fleet: {{key: {key}}}
device: {{id: {device}, driver: memory}}
nats: {{servers: {servers}, randomize: false}}
"""


def sim_configs(devices: Sequence[str], servers: Sequence[str], fleet_key: str | None = None,
                homeassistant: bool = False) -> list:
    """The typed, validated configs of simulated bridges: memory driver, one `clear` subscription
    (with `fleet_key`: a fleet bootstrap for that key instead, no subscriptions; with `homeassistant`:
    `HA_CONFIG`)."""
    with tempfile.TemporaryDirectory(prefix="fleet-sim-") as folder:
        path = os.path.join(folder, "sim.yml")
        with open(path, "w") as file:
            template = HA_CONFIG if homeassistant else SIM_CONFIG if fleet_key is None else FLEET_BOOTSTRAP
            file.write(template.format(device=devices[0] if devices else "sim", servers=json.dumps(list(servers)),
                                       key=fleet_key))
        return [load_config(path, [f"device.id={device}"]) for device in devices]


def start_bridges(count: int, servers: Sequence[str], reactor=None, first: int = 0, prefix: str = PREFIX,
                  fleet_key: str | None = None, cache_root: str | None = None, on_applied=None,
                  homeassistant: bool = False):
    """Start `count` bridges at once; fires with the list of running `Bridge`s.

    With `fleet_key`, each bridge gets a `ConfigFollower` (cache in `cache_root`/DEVICE-ID), started
    once all bridges run; `on_applied(bridge, revision)` is called after each revision it applied."""
    configs = sim_configs([device_id(number, prefix) for number in range(first, first + count)], servers, fleet_key,
                          homeassistant)
    bridges = [Bridge(config, reactor, device=open_device(config.device)) for config in configs]
    followers = [_follower(bridge, config, cache_root, on_applied) for bridge, config in zip(bridges, configs)] \
        if fleet_key is not None else []
    started = defer.gatherResults([bridge.start() for bridge in bridges], consumeErrors=True)
    if followers:
        started.addCallback(lambda _: [follower.start() for follower in followers])
    return started.addCallback(lambda _: bridges)


def _follower(bridge, bootstrap, cache_root: str, on_applied):
    """What `bridge run` wires to a fleet bridge (bridge/cli/run.py `fleet_start`), with a hook that
    tells the harness each revision applied."""
    cache = ConfigCache(Path(cache_root) / bridge.device_id, bootstrap.fleet.bucket, bootstrap.fleet.key)
    config, cached = boot_config(bootstrap, cache)  # an empty cache: the bootstrap alone
    if config is not bootstrap:
        raise RuntimeError("the simulated bridges start with empty caches")
    report = None if on_applied is None else (lambda revision: on_applied(bridge, revision))
    return ConfigFollower(bridge, bootstrap, cache, cached, on_applied=report, check=check_on_a_thread)


def check_on_a_thread(text, bootstrap, source) -> defer.Deferred:
    """A revision checked in this process: a real Pi checks it in a child process of its own
    (bridge/config/isolated.py), which 200 bridges in a few processes would turn into a
    benchmark of process start-up."""
    from bridge.config import load_stored

    return threads.deferToThread(load_stored, text, bootstrap, source)


def stop_bridges(bridges) -> defer.Deferred:

    for bridge in bridges:
        if bridge.config_origin is not None:
            bridge.config_origin.stop()
    return defer.gatherResults([bridge.stop() for bridge in bridges], consumeErrors=True)


@contextlib.contextmanager
def simulated_fleet(count: int, servers: Sequence[str], processes: int = 4,
                    fleet_key: str | None = None, homeassistant: bool = False) -> Iterator[list]:
    """`count` bridges in `processes` helper processes (`python -m bridge.testing.fleet_sim`), yielded once
    all run; stopped gracefully (SIGTERM) at exit. Yields the Popen objects. Process i lists the
    servers rotated by i, so with a cluster the bridges connect to every node. `fleet_key`: the
    bridges follow that key (`--fleet`); read their `applied` lines from each Popen's stdout."""
    with contextlib.ExitStack() as stack:
        popens, first = [], 0
        for index in range(processes):
            share = count // processes + (1 if index < count % processes else 0)
            if share:
                extra = ("--fleet", fleet_key) if fleet_key is not None else ()
                extra += ("--homeassistant",) if homeassistant else ()
                popens.append(stack.enter_context(helper_process(
                    "bridge.testing.fleet_sim", ",".join(_rotated(servers, index)), share, first, *extra, timeout=120)))
            first += share
        yield popens


def _rotated(servers: Sequence[str], index: int) -> list[str]:
    servers = list(servers)
    shift = index % len(servers)
    return servers[shift:] + servers[:shift]


def main(argv: Sequence[str]) -> int:

    from twisted.internet import reactor


    argv = list(argv)
    homeassistant = "--homeassistant" in argv
    if homeassistant:
        argv.remove("--homeassistant")
    fleet_key = None
    if "--fleet" in argv:
        at = argv.index("--fleet")
        fleet_key = argv[at + 1]
        del argv[at:at + 2]
    servers, count = argv[0].split(","), int(argv[1])
    first = int(argv[2]) if len(argv) > 2 else 0

    start_logging("text", level=LogLevel.warn)
    state = {"bridges": [], "exit": ExitStatus.OK}
    applied: dict[int, int] = {}  # revision -> how many of this process's bridges applied it

    def on_applied(_bridge, revision: int) -> None:
        applied[revision] = applied.get(revision, 0) + 1
        if applied[revision] == count:
            print(f"applied {revision} {time.monotonic():.6f}", flush=True)

    cache_root = tempfile.TemporaryDirectory(prefix="fleet-sim-cache-") if fleet_key is not None else None

    def ready(bridges):
        state["bridges"] = bridges
        announce_ready()

    def failed(failure):
        print(f"fleet_sim: {failure.getErrorMessage()}", file=sys.stderr)
        state["exit"] = ExitStatus.FAILED
        reactor.stop()

    def terminate(*_):
        reactor.callFromThread(lambda: stop_bridges(state["bridges"]).addBoth(lambda _: reactor.stop()))

    signal.signal(signal.SIGTERM, terminate)
    reactor.callWhenRunning(lambda: start_bridges(
        count, servers, reactor, first, fleet_key=fleet_key, cache_root=cache_root and cache_root.name,
        on_applied=on_applied, homeassistant=homeassistant).addCallbacks(ready, failed))
    try:
        reactor.run(installSignalHandlers=False)
    finally:
        if cache_root is not None:
            cache_root.cleanup()
    return state["exit"]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
