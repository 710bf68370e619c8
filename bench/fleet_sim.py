"""A simulated fleet: N bridges (memory driver) in one process, for benches and tests.

`start_bridges(count, servers, reactor)` starts `count` full `Bridge`s in the running reactor, each
with its own client (connection), device and instance id, device ids `sim-0000`, `sim-0001`, ...
(from `first` on). `python -m bench.fleet_sim URL[,URL...] COUNT [FIRST]` runs that as a helper
process (bench/common.py `helper()`): it prints "ready" once every bridge runs, stops them all
gracefully on SIGTERM (each says "offline"). On 2 cores a few such processes of N/processes bridges
each reach a fleet of 200 (`simulated_fleet`).
"""

from __future__ import annotations

import contextlib
import sys
from typing import Iterator, Sequence

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


def sim_configs(devices: Sequence[str], servers: Sequence[str]) -> list:
    """The typed, validated configs of simulated bridges: memory driver, one `clear` subscription."""
    import json
    import os
    import tempfile

    from bridge.config import load_config

    with tempfile.TemporaryDirectory(prefix="fleet-sim-") as folder:
        path = os.path.join(folder, "sim.yml")
        with open(path, "w") as file:
            file.write(SIM_CONFIG.format(device=devices[0] if devices else "sim", servers=json.dumps(list(servers))))
        return [load_config(path, [f"device.id={device}"]) for device in devices]


def start_bridges(count: int, servers: Sequence[str], reactor=None, first: int = 0, prefix: str = PREFIX):
    """Start `count` bridges at once; fires with the list of running `Bridge`s."""
    from twisted.internet import defer

    from bridge.devices import open_device
    from bridge.runtime import Bridge

    configs = sim_configs([device_id(number, prefix) for number in range(first, first + count)], servers)
    bridges = [Bridge(config, reactor, device=open_device(config.device)) for config in configs]
    started = defer.gatherResults([bridge.start() for bridge in bridges], consumeErrors=True)
    return started.addCallback(lambda _: bridges)


def stop_bridges(bridges) -> "Deferred":  # noqa: F821
    from twisted.internet import defer

    return defer.gatherResults([bridge.stop() for bridge in bridges], consumeErrors=True)


@contextlib.contextmanager
def simulated_fleet(count: int, servers: Sequence[str], processes: int = 4) -> Iterator[list]:
    """`count` bridges in `processes` helper processes (`python -m bench.fleet_sim`), yielded once
    all run; stopped gracefully (SIGTERM) at exit. Yields the Popen objects. Process i lists the
    servers rotated by i, so with a cluster the bridges connect to every node."""
    from bench.common import helper

    with contextlib.ExitStack() as stack:
        popens, first = [], 0
        for index in range(processes):
            share = count // processes + (1 if index < count % processes else 0)
            if share:
                popens.append(stack.enter_context(helper("fleet_sim", ",".join(_rotated(servers, index)), share, first, timeout=120)))
            first += share
        yield popens


def _rotated(servers: Sequence[str], index: int) -> list[str]:
    servers = list(servers)
    shift = index % len(servers)
    return servers[shift:] + servers[:shift]


def main(argv: Sequence[str]) -> int:
    import signal

    from twisted.internet import reactor

    from bench.common import announce_ready
    from bridge.logs import start_logging

    servers, count = argv[0].split(","), int(argv[1])
    first = int(argv[2]) if len(argv) > 2 else 0
    from twisted.logger import LogLevel

    start_logging("text", level=LogLevel.warn)
    state = {"bridges": [], "exit": 0}

    def ready(bridges):
        state["bridges"] = bridges
        announce_ready()

    def failed(failure):
        print(f"fleet_sim: {failure.getErrorMessage()}", file=sys.stderr)
        state["exit"] = 1
        reactor.stop()

    def terminate(*_):
        reactor.callFromThread(lambda: stop_bridges(state["bridges"]).addBoth(lambda _: reactor.stop()))

    signal.signal(signal.SIGTERM, terminate)
    reactor.callWhenRunning(lambda: start_bridges(count, servers, reactor, first).addCallbacks(ready, failed))
    reactor.run(installSignalHandlers=False)
    return state["exit"]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
