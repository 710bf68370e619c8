"""When discovery goes out: jittered bursts on connect and HA's birth, at most one per 5 s, states
after them, reloads as changes, on the reactor clock (task.Clock here)."""

from __future__ import annotations

import json

from twisted.internet import defer, task

from bridge.config.model import PublicationConfig
from bridge.homeassistant.announcer import (
    JITTER,
    MIN_BURST_INTERVAL,
    STATE_DELAY,
    Announcer,
    send_current_readings,
)
from bridge.nats import NatsError
from bridge.runtime.publications import SensorPublication


class FakeClient:
    def __init__(self):
        self.published: list[tuple[str, bytes]] = []
        self.subscribed: dict[str, object] = {}
        self.is_connected = True
        self.refuse = False

    def publish(self, subject: str, payload: bytes = b"") -> None:
        if self.refuse:
            raise NatsError("the buffer is full")
        self.published.append((subject, payload))

    def subscribe(self, subject: str, callback):
        self.subscribed[subject] = callback
        return subject

    def unsubscribe(self, subscription) -> None:
        del self.subscribed[subscription]

    def deliver(self, subject: str, data: bytes) -> None:
        self.subscribed[subject](type("Msg", (), {"data": data})())

    def take(self) -> list[tuple[str, bytes]]:
        published, self.published = self.published, []
        return published


class Setup:
    def __init__(self, random: float = 0.5):
        self.clock = task.Clock()
        self.client = FakeClient()
        self.documents = {"ha.sensor.pi.t.config": {"name": "T"}, "ha.text.pi.m.config": {"name": "M"}}
        self.birth = "ha.status"
        self.states = 0
        self.announcer = Announcer(self.client, self.clock, documents=lambda: dict(self.documents),
                                   birth_subject=lambda: self.birth, send_states=self.count_states,
                                   random=lambda: random)

    def count_states(self) -> None:
        self.states += 1


def payloads(published) -> dict[str, object]:
    return {subject: json.loads(payload) if payload else None for subject, payload in published}


def test_a_start_announces_after_its_jitter_and_the_states_follow():
    setup = Setup(random=0.25)
    setup.announcer.apply()
    assert list(setup.client.subscribed) == ["ha.status"]
    setup.clock.advance(0.25 * JITTER - 0.01)
    assert setup.client.published == []
    setup.clock.advance(0.01)
    assert payloads(setup.client.take()) == {"ha.sensor.pi.t.config": {"name": "T"}, "ha.text.pi.m.config": {"name": "M"}}
    setup.clock.advance(STATE_DELAY - 0.01)
    assert setup.states == 0
    setup.clock.advance(0.01)
    assert setup.states == 1


def test_home_assistants_birth_brings_a_burst_but_not_within_the_interval_of_the_last():
    setup = Setup(random=0.0)
    setup.announcer.apply()
    setup.clock.advance(0)
    assert len(setup.client.take()) == 2
    setup.clock.advance(1)
    setup.client.deliver("ha.status", b"online")
    setup.client.deliver("ha.status", b"online")  # one burst for both
    setup.clock.advance(MIN_BURST_INTERVAL - 1 - 0.01)
    assert setup.client.published == []
    setup.clock.advance(0.01)
    assert len(setup.client.take()) == 2
    assert setup.announcer.bursts == 2
    setup.clock.advance(STATE_DELAY)
    assert setup.states == 2


def test_only_online_is_a_birth():
    setup = Setup(random=0.0)
    setup.announcer.apply()
    setup.clock.pump([0, 10])
    setup.client.take()
    setup.client.deliver("ha.status", b"offline")
    setup.clock.advance(10)
    assert setup.client.published == [] and setup.announcer.bursts == 1


def test_a_reconnect_announces_again():
    setup = Setup(random=0.0)
    setup.announcer.apply()
    setup.clock.pump([0, 10])
    setup.client.take()
    setup.announcer.connected()
    setup.clock.advance(0)
    assert len(setup.client.take()) == 2


def test_nothing_goes_out_while_disconnected_and_the_reconnect_asks_again():
    setup = Setup(random=0.0)
    setup.client.is_connected = False
    setup.announcer.apply()
    setup.clock.advance(10)
    assert setup.client.published == [] and setup.states == 0
    setup.client.is_connected = True
    setup.announcer.connected()
    setup.clock.advance(0)
    assert len(setup.client.take()) == 2


def test_a_reload_publishes_what_changed_at_once_and_empties_what_it_removed():
    setup = Setup(random=0.0)
    setup.announcer.apply()
    setup.clock.pump([0, 10])
    setup.client.take()
    states = setup.states
    setup.documents = {"ha.sensor.pi.t.config": {"name": "T"}, "ha.switch.pi.l.config": {"name": "L"}}
    setup.announcer.apply()
    assert payloads(setup.client.take()) == {"ha.text.pi.m.config": None, "ha.switch.pi.l.config": {"name": "L"}}
    setup.clock.advance(STATE_DELAY)
    assert setup.states == states + 1
    setup.announcer.apply()  # nothing changed: nothing to say
    setup.clock.advance(10)
    assert setup.client.published == [] and setup.states == states + 1


def test_removing_the_block_deletes_every_entity_and_stops_listening_for_the_birth():
    setup = Setup(random=0.0)
    setup.announcer.apply()
    setup.clock.pump([0, 10])
    setup.client.take()
    setup.documents, setup.birth = {}, None
    setup.announcer.apply()
    assert payloads(setup.client.take()) == {"ha.sensor.pi.t.config": None, "ha.text.pi.m.config": None}
    assert setup.client.subscribed == {}
    setup.announcer.connected()
    setup.clock.advance(10)
    assert setup.client.published == []


def test_a_new_prefix_moves_the_birth_subscription():
    setup = Setup(random=0.0)
    setup.announcer.apply()
    setup.birth = "other.status"
    setup.announcer.apply()
    assert list(setup.client.subscribed) == ["other.status"]


def test_stop_cancels_what_was_pending_and_unsubscribes():
    setup = Setup(random=0.5)
    setup.announcer.apply()
    setup.announcer.stop()
    setup.clock.advance(10)
    assert setup.client.published == [] and setup.client.subscribed == {} and setup.states == 0
    setup.announcer.connected()
    setup.clock.advance(10)
    assert setup.client.published == []


def test_a_refused_publish_is_logged_not_raised():
    setup = Setup(random=0.0)
    setup.client.refuse = True
    setup.announcer.apply()
    setup.clock.advance(0)
    assert setup.announcer.bursts == 1


def publication(sensor: str, values: dict | None = None, **timing) -> SensorPublication:
    published = []
    config = PublicationConfig(subject=f"s.{sensor}", sensor=sensor, **timing)
    item = SensorPublication(config, device_id="pi", read=lambda sensor: defer.succeed(values[sensor]),
                             publish=lambda subject, payload: published.append((subject, json.loads(payload))),
                             reactor=task.Clock())
    item.sent = published
    return item


def test_current_readings_go_out_once_each_deadband_ignored_joystick_and_failed_reads_left_out():
    values = {"temperature": (21.5, "°C"), "humidity": (0, "%RH")}  # 0 %RH: a failed read
    temperature = publication("temperature", values, interval=10.0, change=5.0)
    temperature.last_value, temperature.last_published_at = 21.0, 0.0  # the deadband would hold 21.5 back
    humidity = publication("humidity", values, interval=10.0)
    joystick = publication("joystick", values)
    send_current_readings([temperature, humidity, joystick])
    assert [(subject, body["value"], body["unit"]) for subject, body in temperature.sent] == [
        ("s.temperature", 21.5, "°C")]
    assert humidity.sent == [] and joystick.sent == []
