"""`bridge fleet` and the duplicate device id check, end to end: a real nats-server, `bridge run`
subprocesses, `bridge fleet` as a subprocess the way a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timezone

import pytest

from bridge import __version__
from bridge.cli.exit import ExitStatus
from bridge.fleet.status import status_stream_config
from bridge.fleet.listing import build_entries, config_of, format_table, shown_source
from bridge.testing.bridgeproc import BridgeProcess, memory_config
from bridge.testing.nats_server import NatsServer
from bridge.testing.outside import OutsideClient
from tests.harness.srv_responder import FakeBridge

SENTENCE = "is already used by a running bridge on"


def subscriptions(device: str) -> str:
    return f"  - {{subject: fl.{device}.clear, action: clear}}\n  - {{subject: fl.{device}.pixel, action: set_pixel}}\n"


@pytest.fixture(scope="module")
def two_bridges(module_nats_server, nats_py, tmp_path_factory):
    processes = []
    try:
        for device in ("alpha", "beta"):
            process = BridgeProcess(memory_config(module_nats_server.url, device, subscriptions(device)),
                                    tmp_path_factory.mktemp(device), device)
            processes.append(process.start())
        for process in processes:
            process.wait_ready(nats_py)
        yield processes
    finally:
        for process in processes:
            process.stop()


def fleet(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bridge", "fleet", *args], capture_output=True, text=True,
                          timeout=timeout)


def test_fleet_json_lists_both_bridges_with_their_fields(two_bridges, module_nats_server, nats_py):
    assert nats_py.request_json("fl.alpha.pixel", {"x": 1, "y": 1, "color": [1, 1, 1]}) == {"ok": True}
    assert nats_py.request_json("fl.alpha.pixel", {"x": 8, "y": 1, "color": [1, 1, 1]})["ok"] is False
    done = fleet("--server", module_nats_server.url, "--json")
    assert done.returncode == 0, done.stderr
    entries = json.loads(done.stdout)
    assert [e["device"] for e in entries] == ["alpha", "beta"]
    by_device = {e["device"]: e for e in entries}
    for process in two_bridges:
        entry = by_device[process.device_id]
        assert entry["version"] == __version__
        assert entry["server"] == module_nats_server.url
        assert len(entry["id"]) == 22
        assert entry["config"] == {"source": f"file:{process.config_path.resolve()}",
                                   "file": str(process.config_path.resolve()),
                                   "key": None, "revision": None, "error": None, "refused_revision": None,
                                   "stale": False}
        assert entry["duplicate"] is False
        assert entry["uptime"] >= 0
        assert [e["subject"] for e in entry["endpoints"]] == [f"fl.{process.device_id}.clear",
                                                               f"fl.{process.device_id}.pixel"]
    assert entries[0]["id"] != entries[1]["id"]
    assert by_device["alpha"]["received"] >= 2 and by_device["alpha"]["errors"] >= 1
    assert by_device["beta"]["errors"] == 0
    pixel = by_device["alpha"]["endpoints"][1]
    assert pixel["action"] == "set_pixel" and "0..7, got 8" in pixel["last_error"]


def test_fleet_table_has_a_row_per_bridge(two_bridges, module_nats_server):
    done = fleet("--server", module_nats_server.url)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["DEVICE", "HOST", "VERSION", "CONFIG", "SERVER", "UPTIME", "RECEIVED", "ERRORS", "LATENCY"]
    assert [line.split()[0] for line in lines[1:3]] == ["alpha", "beta"]
    assert lines[3] == "2 bridge(s)"
    assert "DUPLICATE" not in done.stdout


def test_a_second_bridge_with_the_same_device_id_refuses_to_start(two_bridges, module_nats_server, nats_py, tmp_path):
    status = nats_py.subscribe("bridge.alpha.status")
    second = BridgeProcess(memory_config(module_nats_server.url, "alpha", subscriptions("alpha")), tmp_path, "alpha").start()
    try:
        assert second.process.wait(30) == 1, second.logs()
    finally:
        second.stop()
    errors = [r for r in second.log_records() if SENTENCE in str(r)]
    assert len(errors) == 1, second.logs()
    assert "'alpha'" in errors[0]["message"] and "Traceback" not in second.logs()
    # the refused one neither said "online" nor "offline" for the bridge that really runs as alpha
    nats_py.flush()
    assert status.drain() == []
    assert two_bridges[0].process.poll() is None
    assert nats_py.request_json("fl.alpha.clear") == {"ok": True}


def test_fleet_flags_duplicate_device_ids(two_bridges, module_nats_server, nats_py):
    # Two live bridges with one id can still happen (both started within the check's window, or a
    # bridge from before this check): here a second "bridge" instance comes from nats-py's micro.
    from nats.micro import add_service

    service = nats_py._run(add_service(nats_py.nc, name="bridge", version="0.0.9", metadata={"device": "beta"}))
    try:
        entries = json.loads(fleet("--server", module_nats_server.url, "--json").stdout)
        table = fleet("--server", module_nats_server.url).stdout
    finally:
        nats_py._run(service.stop())
    assert sorted((e["device"], e["duplicate"]) for e in entries) == [
        ("alpha", False), ("beta", True), ("beta", True)]
    assert "beta (DUPLICATE)" in table
    assert "duplicate device id 'beta': 2 bridges answer to it" in table


def test_a_bridge_answering_half_a_second_late_is_listed_as_answering_with_its_latency(two_bridges, module_nats_server,
                                                                                       nats_py):
    with FakeBridge(nats_py, "slow", {"config": "file:/slow.yml"}, delay=0.5):
        done = fleet("--server", module_nats_server.url, "--json", "--timeout", "5")
    assert done.returncode == 0, done.stderr
    entries = {entry["device"]: entry for entry in json.loads(done.stdout)}
    assert set(entries) == {"alpha", "beta", "slow"}
    assert entries["slow"]["answering"] is True and entries["slow"]["latency_ms"] >= 500
    assert entries["alpha"]["latency_ms"] < entries["slow"]["latency_ms"]


def test_with_the_status_stream_a_late_bridge_it_knows_is_waited_for(tmp_path):
    with NatsServer(jetstream=True) as server, OutsideClient(server.url) as nats_py:
        async def status_stream():
            await nats_py.nc.jetstream().add_stream(**{k: v for k, v in status_stream_config().items()
                                                       if k in ("name", "subjects", "max_msgs_per_subject")})
            for device in ("fast", "slow"):
                await nats_py.nc.jetstream().publish(f"bridge.{device}.status", json.dumps(
                    {"device": device, "status": "online"}).encode())

        nats_py._run(status_stream())
        with FakeBridge(nats_py, "fast", {"config": "file:/f.yml"}), \
                FakeBridge(nats_py, "slow", {"config": "file:/s.yml"}, delay=1.5):
            done = fleet("--server", server.url, "--json", "--timeout", "5")
    assert done.returncode == 0, done.stderr
    entries = {entry["device"]: entry for entry in json.loads(done.stdout)}
    assert [entries[device]["answering"] for device in ("fast", "slow")] == [True, True]


def test_fleet_with_no_bridges_exits_0():
    with NatsServer() as empty:
        # With a 10-minute --timeout only an early end (no one answers) finishes within fleet()'s 60 s bound.
        done = fleet("--server", empty.url, "--json", "--timeout", "600")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == []


def test_fleet_exits_unreachable_when_no_server_is_reachable_and_usage_for_bad_options(tmp_path):
    with NatsServer() as gone:
        url = gone.url
    done = fleet("--server", url)
    assert done.returncode == ExitStatus.UNREACHABLE
    assert "cannot connect" in done.stderr
    assert fleet("--server", "http://nope").returncode == ExitStatus.USAGE
    assert fleet("--timeout", "0").returncode == ExitStatus.USAGE


# -- in memory ----------------------------------------------------------------------------------------

def test_config_of_reads_the_metadata_contract():
    assert config_of({"config": "kv:bridges/pi1@42"}) == {
        "source": "kv:bridges/pi1@42", "file": None, "key": "bridges/pi1", "revision": 42, "error": None,
        "refused_revision": None, "stale": False}
    refused = config_of({"config": "kv:b/k@7", "config_error": "kv:b/k@8:1:1: error: no", "config_refused": "kv:b/k@8",
                         "config_stale": "true"})
    assert (refused["revision"], refused["refused_revision"], refused["error"], refused["stale"]) == (
        7, 8, "kv:b/k@8:1:1: error: no", True)
    assert config_of({"config": "file:/etc/b.yml"})["file"] == "/etc/b.yml"
    assert config_of({})["source"] is None


@pytest.mark.parametrize("source", ["kv:b/k", "kv:b/k@0"])
def test_nothing_applied_yet_is_revision_null_and_a_dash_never_0(source):
    config = config_of({"config": source})
    assert (config["key"], config["revision"]) == ("b/k", None)
    assert shown_source(config) == "kv:b/k@-"


def test_the_table_shows_stale_refusals_and_latency():
    infos = [{"type": "io.nats.micro.v1.info_response", "id": "a", "version": "1",
              "metadata": {"device": "pi", "config": "kv:b/k@7", "config_stale": "true", "config_refused": "kv:b/k@8",
                           "config_error": "kv:b/k@8:1:1: error: bad"}}]
    table = format_table(build_entries(infos, [], latencies={"a": 0.5123}))
    assert "kv:b/k@7 (stale)" in table.splitlines()[1] and table.splitlines()[1].endswith("512ms")
    assert "pi: runs kv:b/k@7 (stale); refused revision 8: kv:b/k@8:1:1: error: bad" in table


def test_build_entries_joins_info_and_stats_by_id_and_flags_duplicates():
    def doc(kind, instance, device, **extra):
        return {"type": f"io.nats.micro.v1.{kind}_response", "id": instance, "version": "0.1.0",
                "metadata": {"device": device, "host": "h", "config": "file:/c.yml", "server": "nats://s"}, **extra}

    infos = [doc("info", "a", "pi", endpoints=[{"name": "x", "subject": "x", "metadata": {"action": "clear"}}]),
             doc("info", "b", "pi", endpoints=[]), doc("info", "c", "other", endpoints=[])]
    stats = [doc("stats", "a", "pi", started="2024-01-01T00:00:00.000Z",
                 endpoints=[{"name": "x", "num_requests": 5, "num_errors": 2, "last_error": "bad"}])]
    entries = build_entries(infos, stats, now=datetime(2024, 1, 1, 0, 1, tzinfo=timezone.utc))
    assert [(e["id"], e["device"], e["duplicate"]) for e in entries] == [
        ("c", "other", False), ("a", "pi", True), ("b", "pi", True)]
    a = entries[1]
    assert (a["uptime"], a["received"], a["errors"]) == (60.0, 5, 2)
    assert a["endpoints"][0]["last_error"] == "bad"
    assert entries[2]["received"] is None  # answered INFO, not STATS
    assert "duplicate device id 'pi'" in format_table(entries)
