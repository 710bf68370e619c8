"""Identity, not numbers, end to end: a real nats-server, `bridge run` as a subprocess following
its key, and nats-py deleting and creating the bucket again (its revisions count from 1 again).
A running bridge reports its revision `stale` until the new stream has a value, then applies it
although its number is lower; a bridge restarted on a cached revision 1 of an older stream applies
the new stream's revision 1 instead of taking it for the one it has."""

from __future__ import annotations

import json

import nats.errors
import nats.js.errors
import pytest

from bridge.testing.bridgeproc import BridgeProcess, memory_config
from bridge.testing.nats_server import NatsServer
from bridge.testing.outside import OutsideClient
from bridge.testing.polling import wait_for

BUCKET, KEY, DEVICE = "ident_configs", "pis", "pi-ident"


def stored(name: str) -> bytes:
    return f"version: 1\nsubscriptions:\n  - subject: fleet.${{device.id}}.{name}\n    action: get_pixels\n".encode()


def new_bucket(nats_py, *values: bytes) -> list[int]:
    """Delete the bucket (if any), create it again and put `values`; their revisions."""
    async def recreate():
        js = nats_py.nc.jetstream()
        try:
            await js.delete_key_value(BUCKET)
        except nats.js.errors.NotFoundError:
            pass
        kv = await js.create_key_value(bucket=BUCKET, history=5)
        return [await kv.put(KEY, value) for value in values]

    return nats_py._run(recreate())


def put(nats_py, value: bytes) -> int:
    async def store():
        return await (await nats_py.nc.jetstream().key_value(BUCKET)).put(KEY, value)

    return nats_py._run(store())


def config_of(bridge: BridgeProcess, nats_py) -> dict:
    return bridge.info(nats_py)["config"]


def answers(nats_py, name: str) -> bool:
    try:
        return len(json.loads(nats_py.request(f"fleet.{DEVICE}.{name}", b"", timeout=1).data)) == 64
    except (nats.errors.TimeoutError, nats.errors.NoRespondersError):
        return False


@pytest.fixture
def server():
    running = NatsServer(jetstream=True)
    try:
        yield running.start()
    finally:
        running.cleanup()


def test_a_bucket_created_again_is_followed_from_its_last_value_whatever_its_number(server, tmp_path, monkeypatch):
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path / "state"))
    bridge = BridgeProcess(memory_config(server.url, DEVICE, fleet=f"{{key: {KEY}, bucket: {BUCKET}}}"), tmp_path,
                           DEVICE)
    with OutsideClient(server.url) as nats_py:
        try:
            revisions = new_bucket(nats_py, stored("old1"), stored("old2"), stored("old3"))
            assert revisions == [1, 2, 3]
            bridge.start().wait_ready(nats_py)
            wait_for(lambda: config_of(bridge, nats_py)["revision"] == 3, 15, f"revision 3:\n{bridge.logs()}")
            assert config_of(bridge, nats_py)["stale"] is False
            assert new_bucket(nats_py) == []
            wait_for(lambda: config_of(bridge, nats_py)["stale"], 15, f"the old revision marked stale:\n{bridge.logs()}")
            assert config_of(bridge, nats_py)["revision"] == 3
            assert put(nats_py, stored("new1")) == 1
            wait_for(lambda: answers(nats_py, "new1"), 15, f"the new stream's revision 1 applied:\n{bridge.logs()}")
            assert config_of(bridge, nats_py) == {"key": KEY, "bucket": BUCKET, "revision": 1, "error": None,
                                                  "refused_revision": None, "stale": False}
            assert not answers(nats_py, "old3")
            assert bridge.stop() == 0

            # Restarted from its cache (revision 1 of that stream) while the bucket is made anew
            # with another revision 1: same number, another stream, another text.
            assert new_bucket(nats_py, stored("newer1")) == [1]
            bridge.start().wait_ready(nats_py)
            wait_for(lambda: answers(nats_py, "newer1"), 15, f"the newest revision 1 applied:\n{bridge.logs()}")
            assert config_of(bridge, nats_py)["stale"] is False
            assert "starting from the cached" in bridge.logs()
        finally:
            bridge.stop()
