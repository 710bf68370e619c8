"""The status heartbeat on a fake clock: how often a bridge says it is alive."""

from __future__ import annotations

import pytest
from twisted.internet import task

from bridge.fleet.status import HEARTBEAT_INTERVAL, StatusHeartbeat


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
    assert HEARTBEAT_INTERVAL == 30.0
    with pytest.raises(ValueError, match="more than 0"):
        StatusHeartbeat(lambda: None, task.Clock(), 0)
