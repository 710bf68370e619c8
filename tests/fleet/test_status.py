"""The status heartbeat on a fake clock: how often a bridge says it is alive."""

from __future__ import annotations

import pytest
from twisted.internet import task

from bridge.config import ConfigError, load_config
from bridge.config.model import NatsConfig
from bridge.fleet.status import StatusHeartbeat
from bridge.testing.bridgeproc import memory_config


def test_the_heartbeat_publishes_every_interval_from_start_to_stop():
    clock, published = task.Clock(), []
    heartbeat = StatusHeartbeat(lambda: published.append(clock.seconds()), clock, 30)
    heartbeat.start()
    heartbeat.start()  # a second start (a reconnect) keeps the one rhythm
    clock.advance(29.9)
    assert published == []  # the status was published on connect: none due yet
    clock.pump([0.1, 30, 30])
    assert published == [30, 60, 90]
    heartbeat.stop()
    heartbeat.stop()
    clock.advance(300)
    assert published == [30, 60, 90] and clock.getDelayedCalls() == []


def test_the_default_interval_is_30_seconds_and_it_must_be_positive():
    assert NatsConfig(servers=()).status_interval == 30.0
    with pytest.raises(ValueError, match="more than 0"):
        StatusHeartbeat(lambda: None, task.Clock(), 0)


def test_the_interval_is_the_config_files_nats_status_interval(tmp_path):
    path = tmp_path / "bridge.yml"
    path.write_text(memory_config("nats://127.0.0.1:4222", "pi1") + "  status_interval: 2m\n")
    assert load_config(path).nats.status_interval == 120.0
    path.write_text(memory_config("nats://127.0.0.1:4222", "pi1") + "  status_interval: 0s\n")
    with pytest.raises(ConfigError) as refused:
        load_config(path)
    assert [str(issue) for issue in refused.value.errors] == [
        f"{path}:9:20: error: nats.status_interval: status_interval must be more than 0"]
