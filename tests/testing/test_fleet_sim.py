"""bridge/testing/fleet_sim.py, the simulated fleet the fleet_discovery bench runs: N bridges per process,
device ids sim-0000..., all found by `bridge fleet`; stopped gracefully, all "offline" in last seen."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest_twisted

from bridge.fleet.status import ensure_status_stream
from bridge.nats import JetStream
from bridge.testing.fleet_sim import device_id, simulated_fleet
from bridge.testing.nats_server import NatsServer
from tests.harness.nats_client import connected


def fleet_json(url: str) -> list[dict]:
    done = subprocess.run([sys.executable, "-m", "bridge", "fleet", "--server", url, "--json"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    return json.loads(done.stdout)


def test_device_ids():
    assert [device_id(0), device_id(42), device_id(1234)] == ["sim-0000", "sim-0042", "sim-1234"]


@pytest_twisted.ensureDeferred
async def test_a_simulated_fleet_in_two_processes_is_listed_then_seen_offline(make_client):
    with NatsServer(jetstream=True) as server:
        await ensure_status_stream(JetStream(await connected(make_client([server.url])), timeout=5.0))
        wanted = [device_id(n) for n in range(7)]
        with simulated_fleet(7, [server.url], processes=2) as popens:
            assert len(popens) == 2
            running = fleet_json(server.url)
        assert all(p.returncode == 0 for p in popens)  # SIGTERM: every bridge stopped gracefully
        assert [(e["device"], e["answering"], e["last_status"], e["duplicate"]) for e in running] == [
            (d, True, "online", False) for d in wanted]
        assert len({e["id"] for e in running}) == 7
        gone = fleet_json(server.url)
        assert [(e["device"], e["answering"], e["last_status"]) for e in gone] == [(d, False, "offline") for d in wanted]
