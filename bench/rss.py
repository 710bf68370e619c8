"""Idle resident memory: `bridge run` vs a minimal nats-py client, VmRSS from /proc/PID/status.

- ours: `bridge run`, memory driver, 10 subscriptions and 5 publications (four polled sensors
  and the joystick), after it answered `bridge.ID.info` once and then sat idle.
- baseline: a nats-py client holding 10 subscriptions with a callback each, nothing else.

Three of each run side by side on one nats-server; after all are up and a few seconds idle, each
one's VmRSS is read; the figures are the medians, in MiB. Lower is better. The bridge's package is
byte-compiled first, as `pip install` leaves it: compiling modules from source at import leaves
freed heap behind (≈ 1.5 MiB), which an installed bridge never pays.

    python -m bench.rss baseline URL   # the baseline client (stdlib and nats-py only)
"""

from __future__ import annotations

import sys

PROCESSES = 3
IDLE_SECONDS = 3.0
ACTIONS = ("show_message", "show_letter", "set_pixel", "set_pixels", "clear", "set_rotation", "flip_h", "flip_v",
           "low_light", "get_pixels")  # one subscription each: 10
SENSORS = ("temperature", "humidity", "pressure", "orientation", "joystick")


def baseline_client(url: str) -> None:
    import asyncio

    import nats

    async def on_message(msg):
        pass

    async def serve():
        nc = await nats.connect(url)
        for index in range(len(ACTIONS)):
            await nc.subscribe(f"bench.rss.{index}", cb=on_message)
        await nc.flush()
        print("ready", flush=True)  # bridge.testing.helpers.READY, without importing more than the client needs
        await asyncio.Event().wait()  # until SIGTERM

    asyncio.run(serve())


def bridge_config_for(device_id: str, url: str) -> str:
    from bench.common import bridge_config

    subscriptions = "".join(f"  - {{subject: bench.{device_id}.{action}, action: {action}}}\n" for action in ACTIONS)
    publications = "".join(
        f"  - {{subject: bench.{device_id}.{sensor}, sensor: {sensor}"
        + ("}\n" if sensor == "joystick" else ", interval: 1s}\n")
        for sensor in SENSORS
    )
    return bridge_config(device_id, [url], subscriptions, publications)


def compile_bridge_package() -> None:
    """Write the .pyc files an installed bridge has (an editable install, or PYTHONDONTWRITEBYTECODE,
    leaves them out)."""
    import compileall
    from pathlib import Path

    import bridge

    if not compileall.compile_dir(Path(bridge.__file__).parent, quiet=1):
        raise RuntimeError("byte-compiling the bridge package failed")


def run() -> dict:
    import contextlib
    import statistics
    import time

    from bench.common import helper, outside_client, running_bridge
    from bridge.testing.nats_server import NatsServer
    from bridge.testing.procfs import vm_rss_mib

    compile_bridge_package()
    with NatsServer() as server, contextlib.ExitStack() as running:
        outside = running.enter_context(outside_client(server.url))
        bridges = [
            running.enter_context(running_bridge(bridge_config_for(f"rss{index}", server.url), f"rss{index}", outside))
            for index in range(PROCESSES)
        ]
        baselines = [running.enter_context(helper("rss", "baseline", server.url)) for _ in range(PROCESSES)]
        time.sleep(IDLE_SECONDS)
        ours = [vm_rss_mib(bridge.process.pid) for bridge in bridges]
        theirs = [vm_rss_mib(process.pid) for process in baselines]
    return {
        "ours": round(statistics.median(ours), 1),
        "baseline": round(statistics.median(theirs), 1),
        "unit": "MiB",
    }


if __name__ == "__main__":
    role, *arguments = sys.argv[1:]
    if role != "baseline":
        sys.exit(f"unknown role {role!r}")
    baseline_client(*arguments)
