"""`bridge fleet` over a simulated fleet: 200 bridges (memory driver, bridge/testing/fleet_sim.py, 4 helper
processes of 50) on a 3-node JetStream cluster, spread over the nodes, with the `BRIDGE_STATUS`
stream (R3) in place so the last-seen read is part of what is timed.

The figure is the seconds `run_fleet` (the CLI's function) takes, in a fresh interpreter with its
modules already imported, from the call until it printed the JSON listing all 200; the median of 3
rounds. `cli_seconds` is the same for the whole `bridge fleet --json` command (interpreter start and
imports included). `sim_rss_mib` / `sim_cpu_s` are the helper processes' summed resident memory and
CPU seconds (start included) once all 200 run. No baseline.

    python -m bench.fleet_discovery measure URL[,URL...] COUNT   # one timed run_fleet
    python -m bench.fleet_discovery ensure URL[,URL...] REPLICAS # create BRIDGE_STATUS
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time

COUNT = 200
PROCESSES = 4
ROUNDS = 3


def _proc_figures(pid: int) -> tuple[float, float]:
    import os

    with open(f"/proc/{pid}/status") as status:
        rss = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return rss, cpu


def run() -> dict:
    from bench.common import REPO, measure
    from bridge.testing.fleet_sim import simulated_fleet
    from bridge.testing.nats_server import NatsCluster

    with NatsCluster(3, name="fleet", jetstream=True) as cluster:
        urls = ",".join(cluster.urls)
        measure("fleet_discovery", "ensure", urls, 3)
        started = time.perf_counter()
        with simulated_fleet(COUNT, cluster.urls, processes=PROCESSES) as popens:
            start_seconds = time.perf_counter() - started
            figures = [_proc_figures(p.pid) for p in popens]
            seconds, cli = [], []
            for _ in range(ROUNDS):
                result = measure("fleet_discovery", "measure", urls, COUNT)
                seconds.append(result["seconds"])
                began = time.perf_counter()
                done = subprocess.run([sys.executable, "-m", "bridge", "fleet", "--server", cluster.urls[0], "--json"],
                                      cwd=REPO, capture_output=True, text=True, timeout=60)
                cli.append(time.perf_counter() - began)
                found = sum(1 for e in json.loads(done.stdout) if e.get("answering"))
                if found != COUNT:
                    raise RuntimeError(f"bridge fleet listed {found} of {COUNT} bridges:\n{done.stderr}")
    return {"ours": round(statistics.median(seconds), 3), "baseline": None, "unit": "s",
            "bridges": COUNT, "servers": "3-node JetStream cluster", "cli_seconds": round(statistics.median(cli), 3),
            "fleet_start_seconds": round(start_seconds, 2),
            "sim_rss_mib": round(sum(rss for rss, _ in figures), 1), "sim_cpu_s": round(sum(c for _, c in figures), 2),
            "sim_processes": PROCESSES}


def _measure(servers: list[str], count: int) -> dict:
    import contextlib
    import io

    import twisted.internet.task  # noqa: F401  the imports are not what is timed

    import bridge.nats  # noqa: F401
    import bridge.nats.jetstream.streams  # noqa: F401
    import bridge.runtime.srv  # noqa: F401
    from bridge.cli.fleet import run_fleet

    out = io.StringIO()
    started = time.perf_counter()
    with contextlib.redirect_stdout(out):
        code = run_fleet(servers, as_json=True)
    seconds = time.perf_counter() - started
    entries = json.loads(out.getvalue())
    found = sum(1 for e in entries if e.get("answering"))
    if code != 0 or found != count:
        raise SystemExit(f"run_fleet exited {code} and listed {found} of {count}")
    return {"seconds": seconds, "found": found}


def _ensure(servers: list[str], replicas: int) -> dict:
    from twisted.internet import defer, task

    from bridge.fleet.status import ensure_status_stream
    from bridge.nats import Client, ClientOptions, JetStream

    @defer.inlineCallbacks
    def main(reactor):
        client = Client(ClientOptions(servers=tuple(servers)), reactor=reactor)
        yield client.connect()
        try:
            yield ensure_status_stream(JetStream(client, timeout=10), replicas=replicas)
        finally:
            yield client.close()

    try:
        task.react(main)
    except SystemExit as done:
        if done.code:
            raise
    return {"ok": True}


if __name__ == "__main__":
    role, servers = sys.argv[1], sys.argv[2].split(",")
    result = _measure(servers, int(sys.argv[3])) if role == "measure" else _ensure(servers, int(sys.argv[3]))
    print(json.dumps(result), flush=True)
