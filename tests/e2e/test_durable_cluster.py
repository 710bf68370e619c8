"""Durable readings from outside: on a 3-node JetStream cluster, a real `bridge run` (memory driver,
a reading every 50 ms, `durable: {stream: SENSORS}`) and the stream read back with nats-py; on one
server, who creates the stream (`bridge deploy`, or a bridge allowed to) and a bridge that may not.

After a graceful stop the stream must hold the `floor` readings the spool says were acked (and at
most the one that was in flight), in time order, none twice; the spool holds the rest
(bridge/testing/durable.py).
"""

from __future__ import annotations

import json
import signal
import time
import urllib.request

import pytest

from bridge.testing.bridgeproc import BridgeProcess, memory_config
from bridge.testing.durable import acked, kill_cycle, quietly, spool_info, spool_state, stream_messages
from bridge.testing.nats_server import NatsCluster, NatsServer, free_port
from bridge.testing.outside import OutsideClient
from bridge.timestamps import parse
from tests.harness.fleet import deployed
from bridge.testing.polling import wait_for

SUBJECT = "sensors.pi1.temperature"
PUBLICATION = f"  - {{subject: {SUBJECT}, sensor: temperature, interval: 50ms, durable: {{stream: SENSORS}}}}\n"
KILLS = 8
OUTAGE = 20.0  # seconds every server is down in the restart test


def publication_info(bridge, outside) -> dict | None:
    info = quietly(lambda: bridge.info(outside, timeout=1.0))
    return info["publications"][0] if info else None


def assert_none_lost_or_doubled(readings: list[dict], floor: int, leftover: list) -> None:
    times = [reading["time"] for reading in readings]
    assert len({reading["msg_id"] for reading in readings}) == len(readings), "a reading is in the stream twice"
    assert times == sorted(times) and len(set(times)) == len(times), "readings out of order"
    assert not leftover or leftover[0].sequence == floor, "a gap between the acked readings and the spool"
    # The one record in flight at the stop may be stored without its ack seen: it waits in the
    # spool, and its next attempt will be a repeat the stream drops.
    stored_unacked = readings[floor:]
    assert len(stored_unacked) <= 1 and len(readings) >= floor, f"{floor} readings acked, {len(readings)} in the stream"
    assert [reading["msg_id"] for reading in stored_unacked] == [record.msg_id for record in leftover[:1]][
        :len(stored_unacked)]


@pytest.fixture
def state_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path / "state"))
    return tmp_path / "state"


def test_killing_the_bridges_server_again_and_again_loses_no_reading(tmp_path, state_dir):
    with NatsCluster(3, jetstream=True) as cluster:
        bridge = BridgeProcess(memory_config(cluster.urls, "pi1", publications=PUBLICATION), tmp_path, "pi1")
        with OutsideClient(cluster.urls) as outside:
            bridge.start()
            try:
                bridge.wait_ready(outside)
                wait_for(lambda: acked(bridge, outside) >= 5, what="the first readings acked")
                kill_cycle(cluster, bridge, outside, KILLS)
                published = wait_for(lambda: publication_info(bridge, outside), what="the bridge's info")["published"]
            finally:
                assert bridge.stop() == 0
            floor, leftover = spool_state(state_dir, SUBJECT)
            readings = wait_for(lambda: quietly(lambda: stream_messages(outside)), timeout=30.0,
                                what="the stream's readings")
    assert published > 0 and floor + len(leftover) >= published
    assert_none_lost_or_doubled(readings, floor, leftover)
    assert all(reading["device"] == "pi1" for reading in readings)


def web_state(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/state", timeout=5) as response:
        return json.load(response)


def test_readings_of_a_bridge_killed_during_an_outage_reach_the_stream_after_its_restart(tmp_path, state_dir):
    port = free_port()
    with NatsCluster(3, jetstream=True) as cluster:
        config = memory_config(cluster.urls, "pi1", publications=PUBLICATION) + f"web:\n  listen: 127.0.0.1:{port}\n"
        bridge = BridgeProcess(config, tmp_path, "pi1")
        with OutsideClient(cluster.urls) as outside:
            bridge.start()
            try:
                bridge.wait_ready(outside)
                wait_for(lambda: acked(bridge, outside) >= 5, what="the first readings acked")
                outage_began = time.monotonic()
                for server in cluster.servers:
                    server.stop()
                wait_for(lambda: web_state(port)["publications"][0]["spool"]["unacked"] >= 20,
                         what="readings spooled during the outage")
                taken_before_kill = web_state(port)["publications"][0]["published"]
                bridge.signal(signal.SIGKILL)
                bridge.process.wait()
                killed_at = time.time()
                bridge.start()
                time.sleep(max(0.0, OUTAGE - (time.monotonic() - outage_began)))
                for server in cluster.servers:
                    server.start()
                cluster.wait_routed()
                cluster.wait_jetstream()
                bridge.wait_ready(outside)
                # The spool's backlog first, in order; then the readings keep up (one in flight at most).
                wait_for(lambda: drained(spool_info(bridge, outside)), timeout=30.0,
                         what="the readings spooled before the kill acked after the restart")
                taken_after_restart = publication_info(bridge, outside)["published"]
            finally:
                assert bridge.stop() == 0
            floor, leftover = spool_state(state_dir, SUBJECT)
            readings = wait_for(lambda: quietly(lambda: stream_messages(outside)), timeout=30.0,
                                what="the stream's readings")
    assert_none_lost_or_doubled(readings, floor, leftover)
    before_kill = [r for r in readings if _epoch(r["time"]) < killed_at]
    after_restart = [r for r in readings if _epoch(r["time"]) >= killed_at]
    assert len(before_kill) >= taken_before_kill, "readings taken before the kill are missing"
    assert len(after_restart) + len(leftover) >= taken_after_restart


def drained(spool: dict) -> bool:
    return spool.get("acked", 0) >= 5 and spool.get("unacked", 2) <= 1


def _epoch(text: str) -> float:
    return parse(text).timestamp()


STORED = """\
version: 1
publications:
  - subject: sensors.${device.id}.temperature
    sensor: temperature
    interval: 1s
    durable: {stream: FLEET}
"""


def test_deploy_creates_the_stream_a_stored_config_publishes_durably_to(tmp_path):
    with NatsServer(jetstream=True) as server:
        server.start()
        deployed(server.url, STORED, tmp_path)
        with OutsideClient(server.url) as outside:
            config = outside.request_json("$JS.API.STREAM.INFO.FLEET")["config"]
    assert config["subjects"] == ["sensors.>"]
    assert config["num_replicas"] == 1 and config["duplicate_window"] >= 120 * 10**9


LIMITED = """\
accounts {
  A {
    jetstream: enabled
    users = [
      {user: admin, password: admin}
      {user: pi, password: pi, permissions: {publish: {deny: ["$JS.API.STREAM.CREATE.>"]}}}
    ]
  }
}
"""


def test_a_bridge_that_may_not_create_the_stream_says_so_once_and_keeps_spooling(tmp_path, state_dir):
    with NatsServer(jetstream=True, config=LIMITED) as server:
        server.start()
        url = server.url.replace("nats://", "nats://pi:pi@")
        bridge = BridgeProcess(memory_config(url, "pi1", publications=PUBLICATION), tmp_path, "pi1")
        with OutsideClient(server.url.replace("nats://", "nats://admin:admin@")) as outside:
            with bridge.running(outside):
                wait_for(lambda: spool_info(bridge, outside).get("unacked", 0) >= 10, what="readings waiting in the spool")
                refusals = [line for line in bridge.logs().splitlines() if "could not create stream SENSORS" in line]
                assert len(refusals) == 1, bridge.logs()
                assert acked(bridge, outside) == 0
                outside.request_json("$JS.API.STREAM.CREATE.SENSORS", {"name": "SENSORS", "subjects": ["sensors.>"]})
                wait_for(lambda: spool_info(bridge, outside).get("unacked", 99) <= 1, timeout=30.0,
                         what="the spooled readings acked once the stream exists")


def test_a_reload_that_keeps_the_subject_keeps_its_spool_and_counts(tmp_path, state_dir):
    with NatsServer(jetstream=True) as server:
        server.start()
        bridge = BridgeProcess(memory_config(server.url, "pi1", publications=PUBLICATION), tmp_path, "pi1")
        with OutsideClient(server.url) as outside:
            with bridge.running(outside):
                wait_for(lambda: acked(bridge, outside) >= 5, what="the first readings acked")
                bridge.rewrite_config(memory_config(server.url, "pi1", publications=PUBLICATION.replace("50ms", "80ms")))
                before = acked(bridge, outside)
                bridge.signal(signal.SIGHUP)
                wait_for(lambda: "reloaded" in bridge.logs(), what="the reload")
                assert acked(bridge, outside) >= before  # the same publisher: its count goes on
                wait_for(lambda: acked(bridge, outside) >= before + 10, what="readings acked after the reload")
            floor, leftover = spool_state(state_dir, SUBJECT)
            readings = stream_messages(outside)
    assert_none_lost_or_doubled(readings, floor, leftover)
