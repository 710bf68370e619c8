"""Sensor publications on a deterministic clock: deadband (`change`), `heartbeat`, failed publishes,
invalid reads, reads in flight when a reload removes the publication."""

from __future__ import annotations

import json

from twisted.internet import defer, task
from twisted.logger import Logger, formatEvent

from bridge.actions import is_valid_reading
from bridge.config.model import PublicationConfig
from bridge.nats import OutboundBufferFullError
from bridge.runtime import publications
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


def logged(monkeypatch):
    """The publication module's log lines, formatted, with their level; restored after the test."""
    events = []
    monkeypatch.setattr(publications, "log", Logger(namespace="bridge", observer=events.append))
    return events


def texts(events):
    return [(event["log_level"].name, formatEvent(event)) for event in events]


def test_is_due_when_nothing_was_published_yet_whatever_the_last_value():
    config = PublicationConfig(subject="s", sensor="temperature", interval=1.0, change=0.5, heartbeat=10.0)
    assert is_due(config, 20.0, now=3.0, last_value=20.0, last_published_at=None)


def test_is_due_compares_orientation_as_angles_and_other_sensors_plainly():
    orientation = PublicationConfig(subject="s", sensor="orientation", interval=1.0, change=2.0)
    assert not is_due(orientation, {"yaw": 0.5}, now=1.0, last_value={"yaw": 359.5}, last_published_at=0.0)
    temperature = PublicationConfig(subject="s", sensor="temperature", interval=1.0, change=2.0)
    assert is_due(temperature, 0.5, now=1.0, last_value=359.5, last_published_at=0.0)


def test_a_reading_that_changed_shape_has_moved():
    assert moved_enough(None, {"yaw": 1.0}, 0.5)
    assert moved_enough({"yaw": 1.0}, None, 0.5)


def test_angles_a_full_turn_apart_point_the_same_way():
    assert not moved_enough(10.0, 370.0, 0.5, angles=True)
    assert moved_enough(10.0, 371.0, 1.0, angles=True)


def test_each_reading_goes_to_the_configured_subject_as_a_reading_document():
    publication, reactor, published, _ = make([20.0, 20.5, 21.0])
    publication.start()
    reactor.advance(1.0)
    reactor.advance(1.0)
    publication.stop()
    assert [subject for subject, _ in published.sent] == ["s.t"] * 3
    assert {key: value for key, value in published.sent[0][1].items() if key != "time"} == {
        "device": "pi1", "sensor": "temperature", "value": 20.0, "unit": "C"}
    assert publication.info() == {"subject": "s.t", "sensor": "temperature", "published": 3, "failed": 0, "invalid": 0}


def test_the_sensor_is_read_by_name_and_recorded_with_its_unit():
    asked, recorded = [], []

    def read(sensor):
        asked.append(sensor)
        return defer.succeed((1013.2, "hPa"))

    publication = SensorPublication(
        PublicationConfig(subject="s.p", sensor="pressure", interval=1.0), device_id="pi1", read=read,
        publish=Recorder(), reactor=task.Clock(), record=lambda *reading: recorded.append(reading))
    publication.poll()
    assert asked == ["pressure"] and recorded == [("pressure", 1013.2, "hPa")]


def test_failed_publishes_are_counted_and_logged_once_then_summarised(monkeypatch):
    events = logged(monkeypatch)
    publication, reactor, published, _ = make([20.0] * 61)
    published.refuse = 61
    publication.start()
    reactor.advance(1.0)
    reactor.advance(1.0)
    assert publication.info()["failed"] == 3 and publication.published == 0
    assert texts(events) == [("warn", "could not publish temperature on s.t (1x): buffer full")]
    reactor.pump([1.0] * 58)  # to 60 s, the summary interval from the first failure
    assert publication.info()["failed"] == 61
    # the 59 failures after the first (at 1 s .. 59 s); the summary is due before the poll at 60 s
    assert texts(events)[1:] == [("warn", "could not publish temperature on s.t (59x): buffer full")]
    publication.stop()


def test_invalid_readings_are_logged_once_then_summarised(monkeypatch):
    events = logged(monkeypatch)
    publication, reactor, published, _ = make([0.0] * 61, sensor="humidity")
    publication.start()
    reactor.advance(1.0)
    reactor.advance(1.0)
    assert texts(events) == [("warn", "humidity: 1 invalid reading(s) not published (latest 0.0)")]
    reactor.pump([1.0] * 58)
    assert publication.info()["invalid"] == 61
    assert texts(events)[1:] == [("warn", "humidity: 59 invalid reading(s) not published (latest 0.0)")]
    publication.stop()


def test_stopping_logs_what_was_counted_and_leaves_no_timer(monkeypatch):
    events = logged(monkeypatch)
    publication, reactor, published, _ = make([0.0, 0.0, 20.0, 20.0], sensor="humidity")
    published.refuse = 2
    publication.start()
    for _ in range(3):
        reactor.advance(1.0)
    publication.stop()
    assert [text for _, text in texts(events)] == [
        "humidity: 1 invalid reading(s) not published (latest 0.0)",
        "could not publish humidity on s.t (1x): buffer full",
        "humidity: 1 invalid reading(s) not published (latest 0.0)",
        "could not publish humidity on s.t (1x): buffer full",
    ]
    assert reactor.getDelayedCalls() == []


def test_a_stopped_publication_reads_no_more_and_stops_twice_harmlessly():
    reads = []
    publication, reactor, _, _ = make([], read=lambda sensor: reads.append(sensor) or defer.succeed((20.0, "C")))
    publication.start()
    publication.stop()
    reactor.advance(5.0)
    assert reads == ["temperature"]
    publication.stop()
    assert publication.loop is None


def test_the_joystick_is_not_polled():
    reads = []
    publication, reactor, _, _ = make([], sensor="joystick", read=lambda sensor: reads.append(sensor))
    publication.start()
    reactor.advance(5.0)
    publication.stop()
    assert reads == [] and publication.loop is None


def test_a_read_still_in_flight_is_not_asked_again():
    pending = []

    def read(sensor):
        pending.append(defer.Deferred())
        return pending[-1]

    publication, reactor, published, _ = make([], read=read)
    publication.start()
    reactor.advance(1.0)
    reactor.advance(1.0)
    assert len(pending) == 1
    pending[0].callback((20.0, "C"))
    reactor.advance(1.0)
    assert len(pending) == 2 and published.values() == [20.0]
    publication.stop()


def test_a_failed_read_is_a_warning_until_the_publication_stops(monkeypatch):
    events = logged(monkeypatch)
    failing = []

    def read(sensor):
        failing.append(defer.Deferred())
        return failing[-1]

    publication, reactor, _, _ = make([], read=read)
    publication.start()
    failing[0].errback(OSError("i2c timeout"))
    assert texts(events) == [("warn", "reading temperature failed: i2c timeout")]
    reactor.advance(1.0)  # the next read runs: the failure did not leave the publication busy
    publication.stop()
    failing[1].errback(OSError("i2c timeout"))
    assert len(events) == 1


def test_an_unexpected_error_while_publishing_is_logged_with_its_traceback(monkeypatch):
    events = logged(monkeypatch)

    def publish(subject, payload):
        raise TypeError("not bytes")

    publication = SensorPublication(
        PublicationConfig(subject="s.t", sensor="temperature", interval=1.0), device_id="pi1",
        read=lambda sensor: defer.succeed((20.0, "C")), publish=publish, reactor=task.Clock())
    publication.poll()
    assert texts(events) == [("critical", "publishing temperature failed")]
    assert events[0]["log_failure"].check(TypeError)
    publication.poll()  # not left busy
    assert len(events) == 2


def test_a_read_that_raises_stops_the_publication_with_one_logged_failure(monkeypatch):
    events = logged(monkeypatch)

    def read(sensor):
        raise RuntimeError("no device")

    publication, reactor, _, _ = make([], read=read)
    publication.start()
    assert texts(events) == [("critical", "publication s.t stopped")]
    assert events[0]["log_failure"].check(RuntimeError)
    assert not publication.loop.running
