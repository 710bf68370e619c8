"""Deadband (`change`) and `heartbeat` of sensor publications, on a deterministic clock."""

from __future__ import annotations

import json

from twisted.internet import defer, task

from bridge.config.model import PublicationConfig
from bridge.runtime import SensorPublication, moved_enough


class ScriptedSensors:
    """Stands in for the device worker: hands out a scripted series of readings immediately."""

    def __init__(self, values):
        self.values = list(values)

    def call(self, fn, *args):
        return defer.succeed(fn(*args))

    def read(self, sensor):
        return self.values.pop(0), "C"


class RecordingClient:
    def __init__(self):
        self.sent = []

    def publish(self, subject, payload):
        self.sent.append((subject, json.loads(payload)))


class StandInBridge:
    def __init__(self, values):
        self.reactor = task.Clock()
        self.sensor_worker = ScriptedSensors(values)
        self.device = self.sensor_worker
        self.client = RecordingClient()
        self.readings = {}
        self.device_id = "pi1"
        self.joystick_publications = []


def run(values, steps, **options):
    bridge = StandInBridge(values)
    config = PublicationConfig(subject="s.t", sensor="temperature", interval=1.0, **options)
    publication = SensorPublication(bridge, config)
    publication.start()
    for _ in range(steps):
        bridge.reactor.advance(1.0)
    publication.stop()
    return [body["value"] for _, body in bridge.client.sent], bridge


def test_without_change_every_reading_is_published():
    published, bridge = run([20.0, 20.0, 20.1], steps=2)
    assert published == [20.0, 20.0, 20.1]
    assert bridge.client.sent[0][1]["device"] == "pi1" and bridge.client.sent[0][1]["unit"] == "C"


def test_change_suppresses_small_moves_and_compares_against_last_published():
    published, _ = run([20.0, 20.1, 20.15, 20.25, 20.3], steps=4, change=0.2)
    # 20.25 moved 0.25 from the last *published* 20.0, though only 0.1 from the previous reading.
    assert published == [20.0, 20.25]


def test_heartbeat_publishes_an_unchanged_value_at_least_that_often():
    published, _ = run([20.0] * 7, steps=6, change=0.5, heartbeat=3.0)
    assert published == [20.0, 20.0, 20.0]


def test_latest_reading_is_kept_for_the_web_view():
    _, bridge = run([21.5], steps=0)
    assert bridge.readings["temperature"]["value"] == 21.5


def test_moved_enough_compares_components_of_vector_readings():
    assert not moved_enough({"pitch": 1.0, "roll": 2.0}, {"pitch": 1.1, "roll": 2.0}, 0.5)
    assert moved_enough({"pitch": 1.0, "roll": 2.0}, {"pitch": 1.0, "roll": 2.6}, 0.5)
    assert moved_enough(None, 3.0, 0.5)


def test_orientation_moves_across_north_by_the_short_way():
    assert not moved_enough({"yaw": 359.5}, {"yaw": 0.5}, 2, angles=True)
    assert moved_enough({"yaw": 359.5}, {"yaw": 2.0}, 2, angles=True)
    assert moved_enough({"yaw": 359.5}, {"yaw": 0.5}, 2)  # not angles: plain difference
