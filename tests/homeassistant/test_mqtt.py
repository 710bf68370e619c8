"""Home Assistant over MQTT, end to end: a real nats-server with its MQTT listener (and JetStream),
the bridge on the memory device in this process, and paho-mqtt playing HA. HA's side speaks only
MQTT: it discovers, checks each config against its platform, reads states, sends commands."""

from __future__ import annotations

import dataclasses
import json

import pytest
import pytest_twisted
from twisted.internet.threads import deferToThread

from bridge.config.model import (
    BridgeConfig,
    DeviceConfig,
    HomeAssistantConfig,
    NatsConfig,
    PublicationConfig,
    ReconnectConfig,
    SubscriptionConfig,
)
from bridge.homeassistant.announcer import MIN_BURST_INTERVAL, STATE_DELAY
from bridge.homeassistant.discovery import discovery, topic
from bridge.runtime.bridge import Bridge
from bridge.testing.homeassistant import PlaysHomeAssistant
from bridge.testing.nats_server import NatsServer
from tests.harness.reactor import running_reactor, wait_until, within
from tests.harness.homeassistant import problems, render

DEVICE = "ha-pi"
RED = (255, 0, 0)
WAIT = 20.0


def config(url: str) -> BridgeConfig:
    return BridgeConfig(
        device=DeviceConfig(id=DEVICE, driver="memory"),
        nats=NatsConfig(servers=(url,), randomize=False, reconnect=ReconnectConfig(initial_delay=0.05, max_delay=0.5)),
        subscriptions=(
            SubscriptionConfig(subject=f"pi.{DEVICE}.message", action="show_message"),
            SubscriptionConfig(subject=f"pi.{DEVICE}.clear", action="clear"),
            SubscriptionConfig(subject=f"pi.{DEVICE}.rotation", action="set_rotation"),
            SubscriptionConfig(subject=f"pi.{DEVICE}.dim", action="low_light"),
            SubscriptionConfig(subject=f"pi.{DEVICE}.flip", action="flip_h"),
            SubscriptionConfig(subject="all.*.message", action="show_message"),  # a wildcard: not announced
        ),
        publications=(
            # Far apart and with a deadband: the states HA gets come from the announcement.
            PublicationConfig(subject=f"sensors.{DEVICE}.temperature", sensor="temperature", interval=600.0,
                              change=5.0, heartbeat=3600.0),
            PublicationConfig(subject=f"sensors.{DEVICE}.orientation", sensor="orientation", interval=600.0),
            PublicationConfig(subject=f"sensors.{DEVICE}.joystick", sensor="joystick"),
        ),
        homeassistant=HomeAssistantConfig(name="Test Sense HAT"),
    )


@pytest.fixture
def mqtt_server():
    with NatsServer(mqtt=True) as server:
        yield server


@pytest.fixture
def home_assistant(mqtt_server):
    ha = PlaysHomeAssistant(mqtt_server.mqtt_port).start()
    yield ha
    ha.stop()


def in_thread(function, *args):
    return deferToThread(function, *args)


def by_platform(configs: dict) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for name, document in configs.items():
        if document is not None:
            found.setdefault(name.split("/")[1], []).append(document)
    return found


@pytest_twisted.ensureDeferred
async def test_home_assistant_discovers_reads_and_drives_the_bridge_over_mqtt(mqtt_server, home_assistant):
    ha = home_assistant
    bridge = Bridge(config(mqtt_server.url), running_reactor())
    await within(bridge.start(), 30.0, "bridge.start()")
    try:
        expected = {topic(subject): document for subject, document in discovery(bridge.config, "x").items()}
        assert len(expected) == 11

        # The connect burst: every config, each valid for its platform.
        configs = await in_thread(ha.wait_for, lambda _: len(ha.configs()) == len(expected) and ha.configs(),
                                  WAIT, "every entity's config")
        assert configs.keys() == expected.keys()
        assert [problem for name, document in configs.items() for problem in problems(name, document)] == []
        platforms = by_platform(configs)
        assert {name: len(documents) for name, documents in platforms.items()} == {
            "sensor": 4, "event": 1, "text": 1, "button": 2, "light": 1, "select": 1, "switch": 1}

        # As HA does once it set the entities up: subscribe to their state and availability topics.
        state_topics = sorted({document["state_topic"] for document in configs.values() if "state_topic" in document})
        availability = f"bridge/{DEVICE}/status"
        await in_thread(ha.subscribe, state_topics + [availability])

        # HA's birth: discovery again (at most one burst per 5 s), then a status and a reading of every sensor.
        sent = await in_thread(ha.birth)
        await in_thread(ha.wait_for, lambda _: len(ha.configs(since=sent)) == len(expected),
                        WAIT + MIN_BURST_INTERVAL, "the configs again after the birth message")
        sensor_topics = sorted({document["state_topic"] for document in platforms["sensor"]})
        await in_thread(ha.wait_for, lambda _: all(ha.on(name, since=sent) for name in sensor_topics + [availability]),
                        WAIT + STATE_DELAY, "a state of every sensor and the status after the birth")
        status = ha.on(availability, since=sent)[-1].json()
        assert render(configs[next(iter(configs))]["availability_template"], value_json=status) == "online"
        for document in platforms["sensor"]:
            reading = ha.on(document["state_topic"], since=sent)[-1]
            value = float(render(document["value_template"], value_json=reading.json(), value=reading.payload.decode()))
            axis = document["value_template"].split("value_json.value")[1].strip(" .}")
            assert value == (reading.json()["value"][axis] if axis else reading.json()["value"])

        def command_topic(platform: str, name: str | None = None) -> str:
            return next(document["command_topic"] for document in platforms[platform]
                        if name is None or document["name"] == name)

        device = bridge.device
        # text: HA sends the plain text
        await in_thread(ha.publish, command_topic("text"), "Hello from HA")
        await wait_until(lambda: device.messages == ["Hello from HA"], WAIT, "the message scrolled")
        # light on with rgb_color: HA renders its command_on_template with red/green/blue
        light = platforms["light"][0]
        await in_thread(ha.publish, light["command_topic"],
                        render(light["command_on_template"], state="on", red=RED[0], green=RED[1], blue=RED[2]))
        await wait_until(lambda: set(device.snapshot()) == {RED}, WAIT, "the matrix filled red")
        # flip button, on a picture that shows it
        await bridge.worker.call(device.set_pixel, 0, 0, (0, 0, 255))
        await in_thread(ha.publish, command_topic("button", "Flip horizontally"),
                        next(d for d in platforms["button"] if d["name"] == "Flip horizontally")["payload_press"])
        await wait_until(lambda: device.snapshot()[7] == (0, 0, 255), WAIT, "the picture flipped")
        # clear button
        await in_thread(ha.publish, command_topic("button", "Clear"),
                        next(d for d in platforms["button"] if d["name"] == "Clear")["payload_press"])
        await wait_until(lambda: set(device.snapshot()) == {(0, 0, 0)}, WAIT, "the matrix cleared")
        # light off after on
        await in_thread(ha.publish, light["command_topic"], render(light["command_on_template"], state="on"))
        await wait_until(lambda: set(device.snapshot()) == {(255, 255, 255)}, WAIT, "the matrix white")
        await in_thread(ha.publish, light["command_topic"], render(light["command_off_template"], state="off"))
        await wait_until(lambda: set(device.snapshot()) == {(0, 0, 0)}, WAIT, "the matrix off")
        # select an option
        await in_thread(ha.publish, command_topic("select"), "90")
        await wait_until(lambda: device.rotation == 90, WAIT, "the rotation set")
        # switch on and off
        switch = platforms["switch"][0]
        await in_thread(ha.publish, switch["command_topic"], switch["payload_on"])
        await wait_until(lambda: device.low_light is True, WAIT, "low light on")
        await in_thread(ha.publish, switch["command_topic"], switch["payload_off"])
        await wait_until(lambda: device.low_light is False, WAIT, "low light off")

        # The joystick reaches HA as an event of one of its declared types.
        event = platforms["event"][0]
        device.push_joystick("left", "held")
        pushed = await in_thread(ha.wait_for, lambda _: ha.on(event["state_topic"]), WAIT, "the joystick event")
        rendered = json.loads(render(event["value_template"], value_json=pushed[-1].json()))
        assert rendered == {"event_type": "left_held"} and rendered["event_type"] in event["event_types"]

        # A reload without the select: HA is told to delete it.
        before = len(ha.received)
        select_topic = next(name for name in configs if name.split("/")[1] == "select")
        reduced = dataclasses.replace(bridge.config, subscriptions=tuple(
            subscription for subscription in bridge.config.subscriptions if subscription.action != "set_rotation"))
        bridge.reload(reduced)
        deleted = await in_thread(ha.wait_for, lambda received: [message for message in received[before:]
                                                                 if message.topic.endswith("/config")],
                                  WAIT, "the reload's discovery changes")
        assert [(message.topic, message.payload) for message in deleted] == [(select_topic, b"")]
    finally:
        await bridge.stop()

    # A clean stop: HA sees the bridge go offline.
    offline = await in_thread(ha.wait_for, lambda _: [message for message in ha.on(availability)
                                                      if message.json()["status"] == "offline"], WAIT, "offline")
    assert render(configs[select_topic]["availability_template"], value_json=offline[-1].json()) == "offline"
