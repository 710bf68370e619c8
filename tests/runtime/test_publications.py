"""Sensor publications on a deterministic clock: deadband (`change`), `heartbeat`, failed publishes,
invalid reads, reads in flight when a reload removes the publication."""

from __future__ import annotations

import json

from twisted.internet import defer, task

from bridge.actions import is_valid_reading
from bridge.config.model import PublicationConfig
from bridge.nats import OutboundBufferFullError
from bridge.runtime.publications import SensorPublication, is_due, moved_enough


class Recorder:
    """The publish callable: records what went out; `refuse` makes the next publishes raise."""

    def __init__(self):
        self.sent = []
        self.refuse = 0

    def __call__(self, subject, payload):
        if self.refuse:
            self.refuse -= 1
            raise OutboundBufferFullError("buffer full")
        self.sent.append((subject, json.loads(payload)))

    def values(self):
        return [body["value"] for _, body in self.sent]


def make(values, sensor="temperature", clock=None, read=None, **options):
    reactor = task.Clock()
    readings = {}
    published = Recorder()
    values = list(values)
    config = PublicationConfig(subject="s.t", sensor=sensor, interval=1.0, **options)
    publication = SensorPublication(
        config,
        device_id="pi1",
        read=read or (lambda sensor: defer.succeed((values.pop(0), "C"))),
        publish=published,
        reactor=reactor,
        clock=clock or reactor.seconds,
        record=lambda sensor, value, unit: readings.__setitem__(sensor, value),
    )
    return publication, reactor, published, readings


def run(values, steps, **options):
    publication, reactor, published, readings = make(values, **options)
    publication.start()
    for _ in range(steps):
        reactor.advance(1.0)
    publication.stop()
    return published.values(), published, readings


def test_without_change_every_reading_is_published():
    values, published, _ = run([20.0, 20.0, 20.1], steps=2)
    assert values == [20.0, 20.0, 20.1]
    assert published.sent[0][1]["device"] == "pi1" and published.sent[0][1]["unit"] == "C"


def test_change_suppresses_small_moves_and_compares_against_last_published():
    values, _, _ = run([20.0, 20.1, 20.15, 20.25, 20.3], steps=4, change=0.2)
    # 20.25 moved 0.25 from the last *published* 20.0, though only 0.1 from the previous reading.
    assert values == [20.0, 20.25]


def test_heartbeat_publishes_an_unchanged_value_at_least_that_often():
    values, _, _ = run([20.0] * 7, steps=6, change=0.5, heartbeat=3.0)
    assert values == [20.0, 20.0, 20.0]


def test_latest_reading_is_kept_for_the_web_view():
    _, _, readings = run([21.5], steps=0)
    assert readings["temperature"] == 21.5


def test_a_failed_publish_does_not_move_the_deadband():
    publication, reactor, published, _ = make([20.0, 20.0, 20.0], change=0.5, heartbeat=3600.0)
    published.refuse = 1  # the first reading meets a full buffer
    publication.start()
    reactor.advance(1.0)
    publication.stop()
    # Nothing went out yet, so the next (unchanged) reading is still due: no waiting for the heartbeat.
    assert published.values() == [20.0]
    assert publication.info()["failed"] == 1 and publication.published == 1


def test_deadband_and_heartbeat_use_the_injected_monotonic_clock():
    # The reactor's clock moves 1 s per poll; the monotonic clock 10 s per reading (say the wall
    # clock was stepped back): the heartbeat follows the monotonic one.
    ticks = iter(range(0, 1000, 10))
    values, _, _ = run([20.0] * 4, steps=3, change=0.5, heartbeat=5.0, clock=lambda: next(ticks))
    assert values == [20.0] * 4


def test_a_failed_humidity_read_of_zero_is_skipped_and_counted():
    values, _, readings = run([0.0, 45.2, 0, 45.3], steps=3, sensor="humidity")
    assert values == [45.2, 45.3]
    assert readings["humidity"] == 45.3


def test_invalid_reads_are_counted_in_info():
    publication, reactor, published, _ = make([0.0, 0.0, 1013.2], sensor="pressure")
    publication.start()
    reactor.advance(1.0)
    reactor.advance(1.0)
    publication.stop()
    assert published.values() == [1013.2]
    assert publication.info()["invalid"] == 2


def test_is_valid_reading():
    assert not is_valid_reading("humidity", 0.0)
    assert not is_valid_reading("pressure", 0)
    assert is_valid_reading("temperature", 0.0)  # 0 °C is a real temperature
    assert not is_valid_reading("orientation", {"pitch": float("nan"), "roll": 0.0, "yaw": 0.0})
    assert is_valid_reading("orientation", {"pitch": 0.0, "roll": 0.0, "yaw": 0.0})


def test_a_read_in_flight_when_the_publication_is_removed_is_not_published():
    pending = defer.Deferred()
    publication, reactor, published, readings = make([], read=lambda sensor: pending)
    publication.start()  # the first read is now in flight
    publication.stop()  # a reload removed the publication
    pending.callback((21.0, "C"))
    assert published.sent == [] and readings == {}


def test_is_due_is_a_pure_function_of_config_value_and_history():
    config = PublicationConfig(subject="s", sensor="temperature", interval=1.0, change=0.5, heartbeat=10.0)
    assert is_due(config, 20.0, now=0.0, last_value=None, last_published_at=None)
    assert not is_due(config, 20.2, now=5.0, last_value=20.0, last_published_at=0.0)
    assert is_due(config, 20.5, now=5.0, last_value=20.0, last_published_at=0.0)
    assert is_due(config, 20.0, now=10.0, last_value=20.0, last_published_at=0.0)
    plain = PublicationConfig(subject="s", sensor="temperature", interval=1.0)
    assert is_due(plain, 20.0, now=0.1, last_value=20.0, last_published_at=0.0)


def test_moved_enough_compares_components_of_vector_readings():
    assert not moved_enough({"pitch": 1.0, "roll": 2.0}, {"pitch": 1.1, "roll": 2.0}, 0.5)
    assert moved_enough({"pitch": 1.0, "roll": 2.0}, {"pitch": 1.0, "roll": 2.6}, 0.5)
    assert moved_enough(None, 3.0, 0.5)


def test_orientation_moves_across_north_by_the_short_way():
    assert not moved_enough({"yaw": 359.5}, {"yaw": 0.5}, 2, angles=True)
    assert moved_enough({"yaw": 359.5}, {"yaw": 2.0}, 2, angles=True)
    assert moved_enough({"yaw": 359.5}, {"yaw": 0.5}, 2)  # not angles: plain difference
