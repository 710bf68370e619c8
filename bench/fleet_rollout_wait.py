"""`bridge deploy --wait` to a simulated fleet: how long the command takes to return once every one
of 200 bridges has said (in its `$SRV` metadata) that it applied the new revision.

The same 3-node JetStream cluster and 200 followers in 4 helper processes as `fleet_rollout`
(bench/fleet_rollout.py). Revision A is deployed with `--no-wait` and the fleet started; once all 200
run A, each of 3 rounds runs `bridge deploy FILE --wait` (the CLI as a subprocess) and the figure
is the median of the seconds from launching it to its exit. Each round must exit 0 and print
`applied` for all 200 device ids, and the helpers must report that all their bridges applied it.
Extra keys: `rounds_s`, `after_stored_seconds` (from the `stored revision N` line to the exit: the
waiting itself). No baseline.
"""

from __future__ import annotations

import json
import statistics
import tempfile
from pathlib import Path

from bench.fleet_rollout import COUNT, KEY, PROCESSES, _all_applied, _deploy, _read_lines

ROUNDS = 3


def run() -> dict:
    from bridge.testing.fleet_sim import simulated_fleet
    from bridge.testing.nats_server import NatsCluster

    seconds, after_stored = [], []
    with NatsCluster(3, name="rolloutwait", jetstream=True) as cluster, \
            tempfile.TemporaryDirectory(prefix="bench-rollout-wait-") as folder:
        servers = list(cluster.urls)
        first, *_ = _deploy(Path(folder), servers, 0)
        with simulated_fleet(COUNT, servers, processes=PROCESSES, fleet_key=KEY) as popens:
            lines = _read_lines(popens)
            _all_applied(lines, len(popens), first)
            for number in range(1, ROUNDS + 1):
                revision, began, stored, exited, output = _deploy(Path(folder), servers, number, "--wait")
                applied = sum(1 for line in output if line.split()[1:] == ["applied"])
                if applied != COUNT:
                    raise RuntimeError(f"bridge deploy --wait reported {applied} of {COUNT} applied:\n{''.join(output)}")
                _all_applied(lines, len(popens), revision)
                seconds.append(exited - began)
                after_stored.append(exited - stored)
    return {"ours": round(statistics.median(seconds), 3), "baseline": None, "unit": "s",
            "bridges": COUNT, "servers": "3-node JetStream cluster", "rounds_s": [round(s, 3) for s in seconds],
            "after_stored_seconds": round(statistics.median(after_stored), 3), "sim_processes": PROCESSES}


if __name__ == "__main__":
    print(json.dumps(run()), flush=True)
