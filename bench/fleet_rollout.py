"""`bridge deploy` rolled out to a simulated fleet: 200 bridges (memory driver, bridge/testing/fleet_sim.py
`--fleet`, 4 helper processes of 50) that each follow the key `pis` with a `ConfigFollower` (as
`bridge run` does with a `fleet:` bootstrap), on a 3-node JetStream cluster (the bucket R3, as
`bridge deploy` creates it there), the bridges spread over the nodes.

Revision A is deployed (`bridge deploy --no-wait`, the CLI, as a subprocess) and the fleet started;
once all 200 run A, each of 3 rollouts deploys a new revision (the same subscriptions, another `args` colour)
and the figure is the seconds from that `bridge deploy` process exiting until the last of the 200
bridges applied the new revision (the median of the 3). Each helper process prints
`applied REVISION MONOTONIC` when the last of its bridges applied it; the bench takes the latest
stamp over the 4 helpers (CLOCK_MONOTONIC is system-wide, so the stamps compare with the bench's
own). A negative round (in `rounds_s`) means the whole fleet ran the new revision before the deploy
process had exited (it still closes its connection and its interpreter); the figure is then 0.
`from_stored_seconds` is the same measured from the moment `bridge deploy` printed
`stored revision N` (the put acknowledged by the cluster): the propagation itself. `from_deploy_start_seconds` is the
same measured from the deploy's start (interpreter start, imports, validation, connect, put).
After A and after every rollout `bridge fleet --json` (untimed) must list all 200 at the new
revision: the outside view agrees with the signal. No baseline.
"""

from __future__ import annotations

import json
import queue
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

COUNT = 200
PROCESSES = 4
ROUNDS = 3
KEY = "pis"
WAIT = 120.0  # seconds to give a rollout before calling it failed

STORED = """\
version: 1
subscriptions:
  - subject: sim.${{device.id}}.clear
    action: clear
    args: {{color: [{red}, {green}, 0]}}
  - {{subject: sim.all.clear, action: clear}}
"""


STORED_LINE = re.compile(r"stored revision (\d+) ")


def _deploy(folder: Path, servers: list[str], number: int, *options: str) -> tuple[int, float, float, float, list]:
    """`bridge deploy --no-wait` (or with `options` instead) of a new revision: (revision, monotonic
    start, stored, exit, stdout lines). *stored* is when its line `stored revision N (...)`, printed
    once the put was acknowledged, arrived: the command runs unbuffered so the line comes as it is
    printed, not at exit."""
    import os

    from bench.common import REPO

    path = folder / f"rollout-{number}.yml"
    path.write_text(STORED.format(red=(number * 37) % 256, green=(number * 91) % 256))
    argv = [sys.executable, "-m", "bridge", "deploy", str(path), "--key", KEY, *(options or ("--no-wait",))]
    for url in servers:
        argv += ["--server", url]
    environ = dict(os.environ, PYTHONUNBUFFERED="1")
    began = time.monotonic()
    process = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environ)
    output, stored, revision = [], None, None
    for line in process.stdout:
        output.append(line)
        found = STORED_LINE.match(line)
        if found:
            stored, revision = time.monotonic(), int(found.group(1))
    errors = process.stderr.read()
    code = process.wait(60)
    exited = time.monotonic()
    process.stdout.close()
    process.stderr.close()
    if code != 0 or stored is None:
        raise RuntimeError(f"bridge deploy exited {code}:\n{errors}{''.join(output)}")
    return revision, began, stored, exited, output


def _read_lines(popens) -> "queue.Queue":
    """Every helper's stdout lines, as (index, line), on one queue (a thread per helper)."""
    lines: queue.Queue = queue.Queue()

    def pump(index, stream):
        for line in stream:
            lines.put((index, line.strip()))

    for index, popen in enumerate(popens):
        threading.Thread(target=pump, args=(index, popen.stdout), daemon=True).start()
    return lines


def _all_applied(lines: "queue.Queue", helpers: int, revision: int) -> float:
    """The monotonic stamp at which the last helper's last bridge applied `revision`."""
    stamps: dict[int, float] = {}
    deadline = time.monotonic() + WAIT
    while len(stamps) < helpers:
        try:
            index, line = lines.get(timeout=max(0.01, deadline - time.monotonic()))
        except queue.Empty:
            raise RuntimeError(f"revision {revision}: only {len(stamps)} of {helpers} helpers applied it "
                               f"within {WAIT}s") from None
        word, *rest = line.split()
        if word == "applied" and int(rest[0]) == revision:
            stamps[index] = float(rest[1])
        elif word == "applied" and int(rest[0]) > revision:
            raise RuntimeError(f"a helper applied {rest[0]} while waiting for {revision}")
    return max(stamps.values())


def _check_outside(servers: list[str], revision: int) -> None:
    """`bridge fleet --json` lists every bridge answering, at `revision`."""
    from bench.common import REPO

    done = subprocess.run([sys.executable, "-m", "bridge", "fleet", "--server", servers[0], "--json"],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    entries = json.loads(done.stdout)
    at = sum(1 for e in entries if e.get("answering") and (e.get("config") or {}).get("revision") == revision)
    if at != COUNT:
        raise RuntimeError(f"bridge fleet lists {at} of {COUNT} bridges at revision {revision}:\n{done.stderr}")


def run() -> dict:
    from bridge.testing.fleet_sim import simulated_fleet
    from bridge.testing.nats_server import NatsCluster

    seconds, from_start, from_stored, deploy_seconds = [], [], [], []
    with NatsCluster(3, name="rollout", jetstream=True) as cluster, \
            tempfile.TemporaryDirectory(prefix="bench-rollout-") as folder:
        servers = list(cluster.urls)
        first, *_ = _deploy(Path(folder), servers, 0)  # creates the bucket (R3) and BRIDGE_STATUS
        started = time.perf_counter()
        with simulated_fleet(COUNT, servers, processes=PROCESSES, fleet_key=KEY) as popens:
            lines = _read_lines(popens)
            _all_applied(lines, len(popens), first)
            start_seconds = time.perf_counter() - started
            _check_outside(servers, first)
            for number in range(1, ROUNDS + 1):
                revision, began, stored, exited, _ = _deploy(Path(folder), servers, number)
                last = _all_applied(lines, len(popens), revision)
                seconds.append(last - exited)
                from_start.append(last - began)
                from_stored.append(last - stored)
                deploy_seconds.append(exited - began)
                _check_outside(servers, revision)
    return {"ours": round(max(0.0, statistics.median(seconds)), 3), "baseline": None, "unit": "s",
            "bridges": COUNT, "servers": "3-node JetStream cluster",
            "rounds_s": [round(value, 3) for value in seconds],
            "from_stored_seconds": round(statistics.median(from_stored), 3),
            "from_deploy_start_seconds": round(statistics.median(from_start), 3),
            "deploy_cli_seconds": round(statistics.median(deploy_seconds), 3),
            "fleet_start_seconds": round(start_seconds, 2), "sim_processes": PROCESSES}


if __name__ == "__main__":
    print(json.dumps(run()), flush=True)
