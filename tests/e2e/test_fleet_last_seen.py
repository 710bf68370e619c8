"""`bridge fleet` last seen: the `BRIDGE_STATUS` stream keeps each device's last status;
bridges that stopped (graceful: "offline") or were killed (-9: last said "online") are listed as
not answering, with the server's time of that last status. A real JetStream nats-server, `bridge
run` subprocesses, `bridge fleet` as a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest
import pytest_twisted
from twisted.internet import task

from bridge.fleet.listing import add_last_seen, format_table
from bridge.config import load_config
from bridge.fleet.status import STATUS_STREAM, ensure_status_stream, read_last_statuses, status_from_message
from bridge.nats import JetStream
from bridge.runtime.bridge import Bridge
from bridge.testing.bridgeproc import BridgeProcess, memory_config
from bridge.testing.nats_server import NatsServer
from bridge.testing.outside import OutsideClient
from tests.harness.nats_client import connected
from tests.harness.reactor import running_reactor, within


@pytest.fixture(scope="module")
def js_server():
    with NatsServer(jetstream=True) as running:
        yield running


def fleet(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bridge", "fleet", *args], capture_output=True, text=True, timeout=60)


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@pytest_twisted.ensureDeferred
async def test_ensure_status_stream_creates_it_once_and_keeps_an_existing_one(make_client):
    with NatsServer(jetstream=True) as server:
        js = JetStream(await connected(make_client([server.url])), timeout=5.0)
        info = await ensure_status_stream(js)
        config = info["config"]
        assert (config["name"], config["subjects"], config["max_msgs_per_subject"]) == (
            STATUS_STREAM, ["bridge.*.status"], 1)
        again = await ensure_status_stream(js)
        assert again["created"] == info["created"]
        # one made by someone else with another config is kept as it is, not an error
        await js.delete_stream(STATUS_STREAM)
        await js.add_stream({"name": STATUS_STREAM, "subjects": ["bridge.*.status"], "max_msgs_per_subject": 5})
        kept = await ensure_status_stream(js)
        assert kept["config"]["max_msgs_per_subject"] == 5


@pytest_twisted.ensureDeferred
async def test_fleet_lists_stopped_and_killed_bridges_with_last_seen(js_server, make_client, tmp_path):
    js = JetStream(await connected(make_client([js_server.url])), timeout=5.0)
    await ensure_status_stream(js)
    before = datetime.now(timezone.utc) - timedelta(seconds=1)
    processes = {}
    with OutsideClient(js_server.url) as nats_py:
        try:
            for device in ("ls-alive", "ls-stopped", "ls-killed"):
                (tmp_path / device).mkdir()
                process = BridgeProcess(memory_config(js_server.url, device, f"  - {{subject: {device}.clear, action: clear}}\n"),
                                        tmp_path / device, device)
                processes[device] = process.start()
            for process in processes.values():
                process.wait_ready(nats_py)
            assert processes["ls-stopped"].stop() == 0
            processes["ls-killed"].kill()
            done = fleet("--server", js_server.url, "--json")
            table = fleet("--server", js_server.url)
        finally:
            for process in processes.values():
                process.kill()
    after = datetime.now(timezone.utc)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    entries = {e["device"]: e for e in json.loads(done.stdout)}
    assert sorted(entries) == ["ls-alive", "ls-killed", "ls-stopped"]
    alive, stopped, killed = entries["ls-alive"], entries["ls-stopped"], entries["ls-killed"]
    assert (alive["answering"], alive["last_status"]) == (True, "online")
    assert alive["id"] and alive["endpoints"]
    assert (stopped["answering"], stopped["last_status"]) == (False, "offline")
    assert (killed["answering"], killed["last_status"]) == (False, "online")
    for entry in (alive, stopped, killed):
        assert before <= parse(entry["last_seen"]) <= after
    assert stopped["id"] is None and stopped["endpoints"] == [] and stopped["uptime"] is None
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert [line.split()[0] for line in lines[1:2]] == ["ls-alive"]
    assert lines[2] == "1 bridge(s)"
    assert lines[3] == "2 bridge(s) not answering:"
    assert lines[4].split()[:5] == ["ls-killed", "not", "answering,", "last", "seen"]
    assert lines[4].endswith("last status online") and lines[5].endswith("last status offline")
    assert stopped["last_seen"] in lines[5] and " ago), " in lines[5]


@pytest_twisted.ensureDeferred
async def test_a_running_bridge_keeps_its_last_status_fresh_with_heartbeats(js_server, make_client, tmp_path):
    """A bridge connected once keeps publishing: BRIDGE_STATUS's last message for it is replaced
    without any reconnect (an in-process bridge with a short heartbeat, on the real reactor)."""
    js = JetStream(await connected(make_client([js_server.url])), timeout=5.0)
    await ensure_status_stream(js)
    config_path = tmp_path / "ls-heart.yml"
    config_path.write_text(memory_config(js_server.url, "ls-heart") + "  status_interval: 200ms\n")
    bridge = Bridge(load_config(config_path), running_reactor())
    await within(bridge.start(), 30.0, "bridge.start()")
    try:
        first = (await read_last_statuses(js))["ls-heart"]["document"]
        latest = first
        for _ in range(100):  # up to 10 s for the heartbeat to replace it
            await task.deferLater(running_reactor(), 0.1)
            latest = (await read_last_statuses(js))["ls-heart"]["document"]
            if latest["time"] > first["time"]:
                break
        assert latest["time"] > first["time"] and latest["status"] == "online"
        assert bridge.client.stats.reconnects == 0
    finally:
        await bridge.stop()


def test_fleet_with_jetstream_but_no_status_stream_works_as_before(tmp_path):
    with NatsServer(jetstream=True) as server, OutsideClient(server.url) as nats_py:
        process = BridgeProcess(memory_config(server.url, "ns-one", "  - {subject: ns.clear, action: clear}\n"),
                                tmp_path, "ns-one").start()
        try:
            process.wait_ready(nats_py)
            done = fleet("--server", server.url, "--json")
        finally:
            process.stop()
    assert done.returncode == 0 and done.stderr == "", done.stderr
    entries = json.loads(done.stdout)
    assert [(e["device"], e["answering"], e["last_seen"]) for e in entries] == [("ns-one", True, None)]


# -- in memory ----------------------------------------------------------------------------------------

def test_status_from_message_and_add_last_seen():
    import base64

    data = base64.b64encode(json.dumps({"device": "x", "status": "offline", "version": "1.2.3"}).encode()).decode()
    known = status_from_message({"subject": "bridge.x.status", "seq": 3, "data": data,
                                 "time": "2026-12-01T14:20:00.123456789Z"})
    assert known["last_seen"] == "2026-12-01T14:20:00.123Z" and known["last_status"] == "offline"
    assert status_from_message({"data": "not base64!", "time": None})["last_status"] is None
    entries = add_last_seen([{"device": "y"}], {"x": known, "y": {"last_seen": "t", "last_status": "online"}})
    assert [(e["device"], e["answering"], e["last_status"]) for e in entries] == [
        ("y", True, "online"), ("x", False, "offline")]
    assert entries[1]["version"] == "1.2.3"
    assert add_last_seen([{"device": "y"}], None) == [{"device": "y", "answering": True, "last_seen": None,
                                                       "last_status": None}]
    table = format_table(entries[1:], now=datetime(2026, 12, 1, 14, 23, 0, tzinfo=timezone.utc))
    assert table.splitlines()[-1] == "  x  not answering, last seen 2026-12-01T14:20:00.123Z (2m59s ago), last status offline"
