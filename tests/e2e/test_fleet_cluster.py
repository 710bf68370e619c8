"""A 3-node JetStream cluster where a node dies (kill -9) in the middle of a fleet rollout.

Three real `bridge run` processes with `fleet:` bootstraps, one per node (every bootstrap lists all
three servers, `randomize: false`, a different one first). Revision A is deployed and running; then
the node holding the bucket's stream leader is killed and revision B deployed at once through a
surviving node (until the cluster elects a new stream leader, about 5 s here, JetStream requests
time out: `bridge deploy` asks again for up to 15 s, and the test re-runs it should that not be
enough). Every bridge must end up running B — the one whose server died reconnects to
another node and its KV watcher creates a new consumer there — and answer on a subject only B has.
"""

from __future__ import annotations

import json
import os
import time

import nats.errors
import pytest

from bridge.testing.bridgeproc import BridgeProcess
from bridge.testing.nats_server import NatsCluster
from bridge.testing.outside import OutsideClient
from tests.harness.fleet import BUCKET, KEY, deploy, stored_revision
from bridge.testing.polling import wait_for

ROLLOUT_BOUND = 20.0  # seconds from the kill to all three bridges answering on B's subject


def bootstrap(urls: list[str], device_id: str) -> str:
    servers = ", ".join(f'"{url}"' for url in urls)
    return f"""\
version: 1
fleet:
  key: {KEY}
  bucket: {BUCKET}
device:
  id: {device_id}
  driver: memory
nats:
  servers: [{servers}]
  randomize: false
  reconnect: {{initial_delay: 50ms, max_delay: 500ms}}
"""


REVISION_A = """\
version: 1
subscriptions:
  - subject: fleet.${device.id}.pixels
    action: get_pixels
"""

REVISION_B = REVISION_A + """\
  - subject: fleet.${device.id}.only_b
    action: get_pixels
"""


def quietly(call):
    """`call()`, or None while the cluster (or a bridge's connection) is failing over."""
    try:
        return call()
    except (nats.errors.TimeoutError, nats.errors.NoRespondersError, nats.errors.ConnectionReconnectingError):
        return None


def running_revision(bridge: BridgeProcess, nats_py) -> int | None:
    info = quietly(lambda: bridge.info(nats_py, timeout=1.0))
    return info["config"]["revision"] if info else None


def answers_only_b(bridge: BridgeProcess, nats_py) -> bool:
    reply = quietly(lambda: nats_py.request(f"fleet.{bridge.device_id}.only_b", b"", timeout=1.0))
    return reply is not None and len(json.loads(reply.data)) == 64


def stream_leader(nats_py) -> str | None:
    reply = quietly(lambda: nats_py.request(f"$JS.API.STREAM.INFO.KV_{BUCKET}", b"", timeout=2.0))
    return json.loads(reply.data).get("cluster", {}).get("leader") if reply else None


@pytest.fixture
def cluster():
    nodes = NatsCluster(3, "fleet", jetstream=True)
    try:
        nodes.start()
        nodes.wait_routed()
        nodes.wait_jetstream()
        yield nodes
    finally:
        nodes.cleanup()


def test_a_rollout_reaches_every_bridge_when_the_stream_leaders_node_is_killed(cluster, tmp_path, monkeypatch):
    urls = cluster.urls
    created = deploy(urls[0], text=REVISION_A, folder=tmp_path)
    assert created.returncode == 0, created.stderr
    assert "3 replica(s)" in created.stderr
    revision_a = stored_revision(created.stdout)

    bridges = []
    try:
        for i in range(3):
            monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path / f"state-pi{i}"))
            bridges.append(BridgeProcess(bootstrap(urls[i:] + urls[:i], f"pi{i}"), tmp_path, f"pi{i}").start())
        monkeypatch.delenv("STATE_DIRECTORY")
        with OutsideClient(urls) as nats_py:
            for bridge in bridges:
                bridge.wait_ready(nats_py)
                wait_for(lambda: running_revision(bridge, nats_py) == revision_a, 15,
                         f"{bridge.device_id} to run revision A:\n{bridge.logs()}")
                assert not answers_only_b(bridge, nats_py)
            for i, bridge in enumerate(bridges):  # spread: each bridge on the node listed first
                assert f"127.0.0.1:{cluster.servers[i].port}" in bridge.logs(), bridge.logs()

            leader = wait_for(lambda: stream_leader(nats_py), 10, "the stream leader")
            victim = next((s for s in cluster.servers if s.name == leader), cluster.servers[0])
            survivor = next(s for s in cluster.servers if s is not victim)
            orphan = bridges[cluster.servers.index(victim)]  # the bridge connected to the dead node

            victim.kill()
            killed_at = time.monotonic()
            attempts = []  # the stream has no leader for a moment: a deploy may have to be repeated

            def deploy_b():
                result = deploy(survivor.url, text=REVISION_B, folder=tmp_path)
                attempts.append(result)
                return stored_revision(result.stdout) if result.returncode == 0 else None

            try:
                revision_b = wait_for(deploy_b, ROLLOUT_BOUND, f"a deploy through {survivor.url}")
            except AssertionError as error:
                raise AssertionError(f"{error}: {[a.stderr for a in attempts]}") from None
            assert revision_b > revision_a
            for bridge in bridges:
                remaining = ROLLOUT_BOUND - (time.monotonic() - killed_at)
                wait_for(lambda: answers_only_b(bridge, nats_py), max(remaining, 0.1),
                         f"{bridge.device_id} to answer on revision B's subject within {ROLLOUT_BOUND}s of the "
                         f"kill ({len(attempts)} deploy attempt(s)):\n{bridge.logs()}")
                assert (running_revision(bridge, nats_py) or 0) >= revision_b
            # How it got there: its watcher made a new consumer when its client reconnected. Without
            # that, B still arrives when the old consumer lived on a surviving node, or once the
            # watcher's heartbeat check notices 10 s of silence, both within ROLLOUT_BOUND.
            assert f"KV watcher on {BUCKET}/{KEY}: new consumer (the client reconnected)" in orphan.logs(), \
                orphan.logs()
            for bridge in bridges:
                assert bridge.process.poll() is None, bridge.logs()
    finally:
        for bridge in bridges:
            bridge.stop()
        os.environ.pop("STATE_DIRECTORY", None)
