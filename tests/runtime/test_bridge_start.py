"""A stop that comes while the bridge is still starting: it stops, and the exit status says so."""

from __future__ import annotations

import pytest_twisted

from bridge.config.model import BridgeConfig, DeviceConfig, NatsConfig
from bridge.devices.memory import MemoryDevice
from bridge.runtime.bridge import Bridge, BridgeState
from tests.harness.nats_client import connected
from tests.harness.reactor import running_reactor, within


@pytest_twisted.ensureDeferred
async def test_a_stop_during_the_duplicate_id_check_stops_the_bridge_without_reading_as_a_lost_server(
        nats_server, make_client):
    """Another bridge listens on `$SRV.PING` (so the check waits for answers); the stop comes as the
    check asks. The start must not go on to RUNNING, or the client closed by the stop would read as
    nats.reconnect.max_attempts used up (exit status 3)."""
    other = await connected(make_client([nats_server.url]))
    config = BridgeConfig(device=DeviceConfig(id="starting", driver="memory"),
                          nats=NatsConfig(servers=(nats_server.url,)), source="starting.yml")
    bridge = Bridge(config, running_reactor(), MemoryDevice())
    stopping = []
    other.subscribe("$SRV.PING.bridge", lambda msg: stopping.append(bridge.stop()))
    await other.flush()

    await within(bridge.start(), 10.0, "bridge.start()")
    assert len(stopping) == 1
    await within(stopping[0], 10.0, "bridge.stop()")
    assert bridge.state is BridgeState.STOPPED and not bridge.gave_up
    assert not bridge.client.is_connected
