"""The discovery documents, built from the typed config: valid for each HA platform, commands the
actions accept, topics MQTT can carry, ids that stay put."""

from __future__ import annotations

import dataclasses

import pytest

from bridge.config import load_config
from bridge.homeassistant.discovery import (
    birth_subject,
    discovery,
    entities,
    expire_after,
    longest_message,
    skipped,
    slug,
    topic,
)
from bridge.config.filters import Delta, MovingAverage, Throttle
from bridge.config.model import HomeAssistantConfig, PublicationConfig
from tests.harness.homeassistant import commands, problems, refused

CONFIG = """\
version: 1
device: {id: kitchen, driver: memory}
nats: {servers: [nats://127.0.0.1:4222]}
homeassistant: {}
subscriptions:
  - {subject: pi.kitchen.text, action: show_message}
  - {subject: pi.kitchen.letter, action: show_letter}
  - {subject: pi.kitchen.clear, action: clear}
  - {subject: pi.kitchen.flip, action: flip_h}
  - {subject: pi.kitchen.rotation, action: set_rotation}
  - {subject: pi.kitchen.dim, action: low_light}
  - {subject: pi.kitchen.pixel, action: set_pixel}
publications:
  - {subject: sensors.kitchen.temperature, sensor: temperature, interval: 10s}
  - {subject: sensors.kitchen.humidity, sensor: humidity, interval: 10s}
  - {subject: sensors.kitchen.pressure, sensor: pressure, interval: 10s}
  - {subject: sensors.kitchen.orientation, sensor: orientation, interval: 1s, change: 2, heartbeat: 30s}
  - {subject: sensors.kitchen.compass, sensor: compass, interval: 1s, change: 2}
  - {subject: sensors.kitchen.joystick, sensor: joystick}
"""


def load(tmp_path, text: str = CONFIG, **replace):
    path = tmp_path / "bridge.yml"
    path.write_text(text)
    config = load_config(path)
    return dataclasses.replace(config, **replace) if replace else config


def by_component(documents: dict) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for subject, document in documents.items():
        found.setdefault(subject.split(".")[1], []).append(document)
    return found


def test_every_document_is_valid_for_its_platform(tmp_path):
    documents = discovery(load(tmp_path), "1.2.3", "http://kitchen:8080/")
    assert {component: len(found) for component, found in by_component(documents).items()} == {
        "sensor": 9, "event": 1, "text": 2, "button": 2, "light": 1, "select": 1, "switch": 1}
    assert [problem for subject, document in documents.items() for problem in problems(topic(subject), document)] == []


def test_every_command_home_assistant_can_send_is_a_payload_the_action_accepts(tmp_path):
    config = load(tmp_path)
    by_topic = {topic(subscription.subject): subscription for subscription in config.subscriptions}
    sent = 0
    for subject, document in discovery(config, "1.2.3").items():
        if "command_topic" not in document:
            continue
        subscription = by_topic[document["command_topic"]]
        payloads = commands(subject.split(".")[1], document)
        assert payloads, subject
        for payload in payloads:
            assert refused(subscription, payload) is None, (subject, payload)
            sent += 1
    assert sent >= 15


def test_the_light_sends_the_colour_home_assistant_chose_and_black_for_off(tmp_path):
    light = by_component(discovery(load(tmp_path), "1.2.3"))["light"][0]
    light_commands = commands("light", light)
    assert [payload.decode() for payload in light_commands] == [
        '{"color": [255, 255, 255]}', '{"color": [128, 128, 128]}', '{"color": [255, 128, 0]}',
        '{"color": [10, 5, 0]}', '{"color": [0, 0, 0]}']


def test_sensors_read_the_published_reading_with_units_home_assistant_knows(tmp_path):
    sensors = {document["name"]: document for document in by_component(discovery(load(tmp_path), "1.2.3"))["sensor"]}
    assert sensors["Temperature"]["value_template"] == "{{ value_json.value }}"
    assert (sensors["Humidity"]["device_class"], sensors["Humidity"]["unit_of_measurement"]) == ("humidity", "%")
    assert sensors["Pressure"]["device_class"] == "atmospheric_pressure"
    assert sensors["Orientation yaw"]["value_template"] == "{{ value_json.value.yaw }}"
    assert sensors["Compass x"]["unit_of_measurement"] == "µT"
    assert {document["state_class"] for document in sensors.values()} == {"measurement"}
    assert sensors["Temperature"]["state_topic"] == "sensors/kitchen/temperature"


def test_expiry_follows_each_publications_timing_unless_set(tmp_path):
    sensors = {document["name"]: document for document in by_component(discovery(load(tmp_path), "1.2.3"))["sensor"]}
    assert sensors["Temperature"]["expire_after"] == 30
    assert sensors["Orientation pitch"]["expire_after"] == 90  # 3 x the heartbeat
    assert "expire_after" not in sensors["Compass x"]  # a change without heartbeat may be silent for ever
    polled = PublicationConfig(subject="s", sensor="temperature", interval=0.2)
    assert expire_after("off", polled) is None
    assert expire_after(90.5, polled) == 91
    assert expire_after("auto", polled) == 1


def test_expiry_allows_for_filters_that_send_less_often_or_hold_readings_back():
    every_third = (MovingAverage(window=3, send_every=3),)
    assert expire_after("auto", PublicationConfig(subject="s", sensor="humidity", interval=10.0,
                                                  filters=every_third)) == 90
    throttled = PublicationConfig(subject="s", sensor="humidity", interval=10.0, filters=(Throttle(60.0),))
    assert expire_after("auto", throttled) == 210  # 3 x (60 s + the poll that ends the wait)
    held = PublicationConfig(subject="s", sensor="humidity", interval=10.0, filters=(Delta(1.0),))
    assert expire_after("auto", held) is None


def test_the_new_temperature_sensors_are_temperatures_with_readable_names(tmp_path):
    cpu = PublicationConfig(subject="s.cpu", sensor="cpu_temperature", interval=5.0)
    [entity] = entities(load(tmp_path, publications=(cpu,), subscriptions=()))
    assert (entity.keys["name"], entity.keys["device_class"], entity.keys["unit_of_measurement"]) == (
        "Cpu temperature", "temperature", "°C")


def test_the_joystick_is_an_event_with_every_direction_and_action(tmp_path):
    event = by_component(discovery(load(tmp_path), "1.2.3"))["event"][0]
    assert "middle_held" in event["event_types"] and len(event["event_types"]) == 15
    assert event["value_template"] == ('{"event_type": "{{ value_json.value.direction }}_'
                                       '{{ value_json.value.action }}"}')


def test_one_device_with_availability_from_the_bridge_status(tmp_path):
    config = load(tmp_path, homeassistant=HomeAssistantConfig(prefix="ha/discovery", name="Kitchen Sense HAT"))
    documents = discovery(config, "1.2.3", "http://kitchen:8080/")
    assert all(subject.startswith("ha.discovery.") and subject.endswith(".config") for subject in documents)
    devices = {repr(document["device"]) for document in documents.values()}
    assert len(devices) == 1
    document = next(iter(documents.values()))
    assert document["device"] == {"identifiers": ["nats-sense-bridge_kitchen"], "name": "Kitchen Sense HAT",
                                  "manufacturer": "Raspberry Pi", "model": "Sense HAT", "sw_version": "1.2.3",
                                  "configuration_url": "http://kitchen:8080/"}
    assert document["availability_topic"] == "bridge/kitchen/status"
    assert document["availability_template"] == "{{ value_json.status }}"
    assert birth_subject(config) == "ha.discovery.status"
    assert "configuration_url" not in next(iter(discovery(config, "1.2.3").values()))["device"]


def test_the_device_name_defaults_to_the_device_id(tmp_path):
    document = next(iter(discovery(load(tmp_path), "1.2.3").values()))
    assert document["device"]["name"] == "kitchen"


def test_without_the_block_nothing_is_announced(tmp_path):
    assert discovery(load(tmp_path, homeassistant=None), "1.2.3") == {}


def test_unique_ids_are_unique_and_survive_a_reload_that_changes_other_entries(tmp_path):
    config = load(tmp_path)
    ids = [document["unique_id"] for document in discovery(config, "1.2.3").values()]
    assert len(set(ids)) == len(ids)
    fewer = dataclasses.replace(config, subscriptions=config.subscriptions[2:], publications=config.publications[1:])
    kept = [document["unique_id"] for document in discovery(fewer, "1.2.3").values()]
    assert set(kept) < set(ids)


def test_object_ids_are_slugs_and_two_subjects_never_share_one():
    assert slug("pi.kitchen.text") == "pi_kitchen_text"
    assert slug("pi.kitchen_2.text") != slug("pi.kitchen.2.text")
    assert slug("pi.küche") == slug("pi.küche") and slug("pi.küche").startswith("pi_k_che_")
    assert all(character.isalnum() or character in "_-" for character in slug("a.b:c@d"))


SKIPPED = """\
version: 1
device: {id: kitchen, driver: memory}
nats: {servers: [nats://127.0.0.1:4222]}
homeassistant: {}
subscriptions:
  - {subject: pi.*.text, action: show_message}
  - {subject: pi.>, action: clear}
  - {subject: pi.a+b, action: flip_v}
  - {subject: $pi.rotation, action: set_rotation}
  - {subject: pi.kitchen.dim, action: low_light, locked: [enabled]}
  - {subject: pi.kitchen.long, action: show_message, max_scroll: 1s}
  - {subject: pi.*.pixel, action: set_pixel}
publications:
  - {subject: sensors.a#b, sensor: temperature, interval: 10s}
"""


def test_what_cannot_be_announced_is_skipped_with_one_line_each(tmp_path):
    config = load(tmp_path, SKIPPED)
    assert entities(config) == []
    assert skipped(config) == [
        "homeassistant: publications[0] (temperature on sensors.a#b) is not announced: its subject holds '#', "
        "which an MQTT topic cannot",
        "homeassistant: subscriptions[0] (show_message on pi.*.text) is not announced: its subject has wildcards; "
        "Home Assistant needs one literal topic",
        "homeassistant: subscriptions[1] (clear on pi.>) is not announced: its subject has wildcards; "
        "Home Assistant needs one literal topic",
        "homeassistant: subscriptions[2] (flip_v on pi.a+b) is not announced: its subject holds '+', "
        "which an MQTT topic cannot",
        "homeassistant: subscriptions[3] (set_rotation on $pi.rotation) is not announced: its subject starts "
        "with '$', which MQTT keeps for the server",
        "homeassistant: subscriptions[4] (low_light on pi.kitchen.dim) is not announced: its locked args leave "
        "Home Assistant nothing to send",
        "homeassistant: subscriptions[5] (show_message on pi.kitchen.long) is not announced: its max_scroll "
        "leaves no time for one character",
    ]


def test_bridge_validate_prints_the_notes(tmp_path, capsys):
    from bridge.cli.main import main

    path = tmp_path / "bridge.yml"
    path.write_text(SKIPPED)
    assert main(["validate", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 8
    assert lines[2] == (f"{path}: note: homeassistant: subscriptions[0] (show_message on pi.*.text) is not announced: "
                        "its subject has wildcards; Home Assistant needs one literal topic")


@pytest.mark.parametrize("max_scroll, max_payload, expected", [(30.0, 65536, 48), (600.0, 65536, 255), (600.0, 40, 10)])
def test_the_longest_message_fits_max_scroll_max_payload_and_a_text_entity(tmp_path, max_scroll, max_payload, expected):
    subscription = dataclasses.replace(load(tmp_path).subscriptions[0], max_scroll=max_scroll, max_payload=max_payload)
    assert longest_message(subscription) == expected


def test_a_locked_colour_keeps_the_button_and_drops_the_light(tmp_path):
    text = CONFIG.replace("{subject: pi.kitchen.clear, action: clear}",
                          "{subject: pi.kitchen.clear, action: clear, args: {color: [0, 0, 9]}, locked: [color]}")
    components = by_component(discovery(load(tmp_path, text), "1.2.3"))
    assert "light" not in components and len(components["button"]) == 2


def test_a_slow_scroll_speed_shortens_the_text(tmp_path):
    text = CONFIG.replace("{subject: pi.kitchen.text, action: show_message}",
                                           "{subject: pi.kitchen.text, action: show_message, args: {scroll_speed: 0.5}}")
    texts = {document["name"]: document for document in by_component(discovery(load(tmp_path, text), "1.2.3"))["text"]}
    assert texts["Message"]["max"] == 8
