"""Home Assistant's MQTT discovery documents, as pure functions of the typed config.

nats-server's MQTT listener maps topic `a/b` to subject `a.b` both ways: the bridge publishes each
document on NATS (`discovery(...)` keys are subjects) and HA reads it over MQTT; the topics inside
the documents are the bridge's own subjects spelled with '/'.

    BridgeConfig -> entities() -> Entity(component, object_id, platform keys) -> discovery() -> {subject: document}

Every command topic is a subscription's subject, and every payload HA can send there is one the
subscription's action accepts (`bridge.actions.parse_command` is the judge; tests/homeassistant
renders each template and asks it).
"""

from __future__ import annotations

import hashlib
import math
import re
import socket
from dataclasses import dataclass
from typing import Iterator

from bridge.actions import parse_command
from bridge.config.filters import longest_gap, may_hold_back
from bridge.config.model import BridgeConfig, HomeAssistantConfig, PublicationConfig, SubscriptionConfig
from bridge.devices.memory import JOYSTICK_ACTIONS, JOYSTICK_DIRECTIONS

ORIGIN_NAME = "nats-sense-bridge"
MODEL = "Sense HAT"
TEXT_MAX = 255  # the most a Home Assistant text entity holds
ROTATION_OPTIONS = ("0", "90", "180", "270")
# One line of text that `show_message` reads as text, not as a JSON object.
MESSAGE_PATTERN = r"^(?!\s*\{.*\}\s*$)[^\r\n]+$"
SINGLE_CHARACTER_PATTERN = r"^[^\r\n]$"

# sensor -> (device_class, unit HA expects for it); the rest carry the bridge's unit and no class.
SENSOR_CLASSES = {
    "temperature": ("temperature", "°C"),
    "humidity": ("humidity", "%"),  # the bridge says %RH; HA's humidity class takes only %
    "pressure": ("atmospheric_pressure", "hPa"),
    "cpu_temperature": ("temperature", "°C"),
    "temperature_from_humidity": ("temperature", "°C"),
    "temperature_from_pressure": ("temperature", "°C"),
}
# Sensors whose reading is an object: one HA sensor per component.
SENSOR_AXES = {
    "orientation": (("pitch", "roll", "yaw"), "°"),
    "accelerometer": (("x", "y", "z"), "g"),
    "gyroscope": (("x", "y", "z"), "rad/s"),
    "compass": (("x", "y", "z"), "µT"),
}
READING_VALUE = "{{ value_json.value }}"
JOYSTICK_EVENT = '{"event_type": "{{ value_json.value.direction }}_{{ value_json.value.action }}"}'
# HA's template light passes red/green/blue (already scaled by brightness) when a colour is set,
# brightness alone when only that changes, neither for a plain "on" (white).
LIGHT_ON = ('{"color": [{{ red | default(brightness | default(255)) }}, '
            '{{ green | default(brightness | default(255)) }}, '
            '{{ blue | default(brightness | default(255)) }}]}')
LIGHT_OFF = '{"color": [0, 0, 0]}'


@dataclass(frozen=True)
class Entity:
    component: str  # the HA platform: sensor, event, text, button, light, select, switch
    object_id: str  # unique within the device; part of the discovery topic and the unique id
    keys: dict  # the platform's own keys; `discovery` adds device, origin, availability, unique_id


def topic(subject: str) -> str:
    """The MQTT topic nats-server shows for a literal NATS subject."""
    return subject.replace(".", "/")


def topic_problem(subject: str) -> str | None:
    """Why HA cannot use `subject` as a topic, or None."""
    tokens = subject.split(".")
    if any(token in ("*", ">") for token in tokens):
        return "its subject has wildcards; Home Assistant needs one literal topic"
    if subject.startswith("$"):
        return "its subject starts with '$', which MQTT keeps for the server"
    odd = sorted(set("+#/").intersection(subject))
    if odd:
        return f"its subject holds {', '.join(repr(c) for c in odd)}, which an MQTT topic cannot"
    return None


def slug(subject: str) -> str:
    """An object id for a subject: the subject with '_' for '.', and a short hash when that is not
    reversible, so two subjects never share an id and an id never changes for a subject."""
    readable = re.sub(r"[^A-Za-z0-9-]", "_", subject)
    if readable.replace("_", ".") == subject:
        return readable
    return f"{readable}_{hashlib.sha256(subject.encode()).hexdigest()[:6]}"


def device_name(config: BridgeConfig) -> str:
    ha = config.homeassistant or HomeAssistantConfig()
    return ha.name or config.device.id


def status_subject(config: BridgeConfig) -> str:
    return f"bridge.{config.device.id}.status"


def birth_subject(config: BridgeConfig) -> str:
    """Where HA says `online` when it (re)starts: `<prefix>/status`."""
    return f"{_prefix_subject(config)}.status"


def _prefix_subject(config: BridgeConfig) -> str:
    ha = config.homeassistant or HomeAssistantConfig()
    return ha.prefix.replace("/", ".")


def expire_after(setting: float | str, publication: PublicationConfig) -> int | None:
    """Seconds HA waits for a reading before it shows the sensor unavailable; None: never."""
    if setting == "off":
        return None
    if setting == "auto":
        if may_hold_back(publication.filters):
            return None  # a filter may hold a steady value back for good
        gap = longest_gap(publication.interval, publication.filters)
        if publication.change is None:
            setting = 3 * gap
        elif publication.heartbeat is not None:
            setting = 3 * max(publication.heartbeat, gap)
        else:
            return None  # readings stop whenever the value stays put
    return max(1, math.ceil(setting))


def _sensor_entities(publication: PublicationConfig, setting: float | str) -> Iterator[Entity]:
    state_topic = topic(publication.subject)
    sensor = publication.sensor
    object_id = f"{sensor}_{slug(publication.subject)}"
    if sensor == "joystick":
        yield Entity("event", object_id, {
            "name": "Joystick",
            "state_topic": state_topic,
            "event_types": [f"{direction}_{action}" for direction in JOYSTICK_DIRECTIONS for action in JOYSTICK_ACTIONS],
            "value_template": JOYSTICK_EVENT,
        })
        return
    common = {"state_topic": state_topic, "state_class": "measurement"}
    expiry = expire_after(setting, publication)
    if expiry is not None:
        common["expire_after"] = expiry
    if sensor in SENSOR_AXES:
        axes, unit = SENSOR_AXES[sensor]
        for axis in axes:
            yield Entity("sensor", f"{sensor}_{axis}_{slug(publication.subject)}", {
                "name": f"{sensor.capitalize()} {axis}",
                "unit_of_measurement": unit,
                "value_template": f"{{{{ value_json.value.{axis} }}}}",
                **common,
            })
        return
    device_class, unit = SENSOR_CLASSES[sensor]
    yield Entity("sensor", object_id, {
        "name": sensor.replace("_", " ").capitalize(),
        "device_class": device_class,
        "unit_of_measurement": unit,
        "value_template": READING_VALUE,
        **common,
    })


def longest_message(subscription: SubscriptionConfig) -> int:
    """The most characters HA may send to a `show_message` subscription: what a text entity holds,
    what max_payload takes in the widest UTF-8, and what scrolls within max_scroll."""
    speed = parse_command("show_message", b"x", subscription.args).args[3]
    scrolls = int((subscription.max_scroll / speed - 8) // 6)
    return min(TEXT_MAX, subscription.max_payload // 4, scrolls)


def _command_entities(subscription: SubscriptionConfig) -> Iterator[Entity]:
    command_topic = topic(subscription.subject)
    action = subscription.action
    locked = set(subscription.locked)
    object_id = f"{action}_{slug(subscription.subject)}"
    if action == "show_message" and "text" not in locked and longest_message(subscription) >= 1:
        yield Entity("text", object_id, {"name": "Message", "command_topic": command_topic, "mode": "text",
                                         "min": 1, "max": longest_message(subscription),
                                         "pattern": MESSAGE_PATTERN})
    elif action == "show_letter" and "letter" not in locked:
        yield Entity("text", object_id, {"name": "Letter", "command_topic": command_topic, "mode": "text",
                                         "min": 1, "max": 1, "pattern": SINGLE_CHARACTER_PATTERN})
    elif action == "clear":
        yield Entity("button", object_id, {"name": "Clear", "command_topic": command_topic, "payload_press": "{}"})
        if "color" not in locked:
            yield Entity("light", f"matrix_{slug(subscription.subject)}", {
                "name": "Matrix",
                "schema": "template",
                "command_topic": command_topic,
                "command_on_template": LIGHT_ON,
                "command_off_template": LIGHT_OFF,
                "red_template": "{{ value_json.color[0] }}",
                "green_template": "{{ value_json.color[1] }}",
                "blue_template": "{{ value_json.color[2] }}",
            })
    elif action in ("flip_h", "flip_v"):
        name = "Flip horizontally" if action == "flip_h" else "Flip vertically"
        yield Entity("button", object_id, {"name": name, "command_topic": command_topic, "payload_press": "{}"})
    elif action == "set_rotation" and "rotation" not in locked:
        yield Entity("select", object_id, {"name": "Rotation", "command_topic": command_topic,
                                           "options": list(ROTATION_OPTIONS)})
    elif action == "low_light" and "enabled" not in locked:
        yield Entity("switch", object_id, {"name": "Low light", "command_topic": command_topic,
                                           "payload_on": "true", "payload_off": "false"})


def entities(config: BridgeConfig) -> list[Entity]:
    """Every entity the config gives HA: publications first, then subscriptions, in config order."""
    setting = (config.homeassistant or HomeAssistantConfig()).expire_after
    found: list[Entity] = []
    for publication in config.publications:
        if topic_problem(publication.subject) is None:
            found.extend(_sensor_entities(publication, setting))
    for subscription in config.subscriptions:
        if topic_problem(subscription.subject) is None:
            found.extend(_command_entities(subscription))
    return found


def skipped(config: BridgeConfig) -> list[str]:
    """One line for each entry that would be an entity but is not, saying why (for `bridge validate`)."""
    notes = []
    for index, publication in enumerate(config.publications):
        problem = topic_problem(publication.subject)
        if problem is not None:
            notes.append(_note("publications", index, publication.sensor, publication.subject, problem))
    for index, subscription in enumerate(config.subscriptions):
        if subscription.action not in ANNOUNCED_ACTIONS:
            continue
        problem = topic_problem(subscription.subject) or _unannounced(subscription)
        if problem is not None:
            notes.append(_note("subscriptions", index, subscription.action, subscription.subject, problem))
    return notes


ANNOUNCED_ACTIONS = ("show_message", "show_letter", "clear", "flip_h", "flip_v", "set_rotation", "low_light")


def _unannounced(subscription: SubscriptionConfig) -> str | None:
    if any(_command_entities(subscription)):
        return None
    if subscription.action == "show_message" and "text" not in subscription.locked:
        return "its max_scroll leaves no time for one character"
    return "its locked args leave Home Assistant nothing to send"


def _note(key: str, index: int, what: str, subject: str, problem: str) -> str:
    return f"homeassistant: {key}[{index}] ({what} on {subject}) is not announced: {problem}"


def configuration_url(host: str, port: int) -> str:
    """The web view's address as HA's device page links it; a wildcard listen is this machine's name."""
    if host in ("", "0.0.0.0", "::"):
        host = socket.gethostname()
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/"


def device_document(config: BridgeConfig, version: str, configuration_url: str | None) -> dict:
    device = {
        "identifiers": [f"{ORIGIN_NAME}_{config.device.id}"],
        "name": device_name(config),
        "manufacturer": "Raspberry Pi",
        "model": MODEL,
        "sw_version": version,
    }
    if configuration_url is not None:
        device["configuration_url"] = configuration_url
    return device


def discovery(config: BridgeConfig, version: str, configuration_url: str | None = None) -> dict[str, dict]:
    """{discovery subject: config document} for every entity of a config with a `homeassistant:` block."""
    if config.homeassistant is None:
        return {}
    shared = {
        "device": device_document(config, version, configuration_url),
        "origin": {"name": ORIGIN_NAME, "sw_version": version},
        "availability_topic": topic(status_subject(config)),
        "availability_template": "{{ value_json.status }}",
        "payload_available": "online",
        "payload_not_available": "offline",
    }
    prefix = _prefix_subject(config)
    node_id = config.device.id
    documents = {}
    for entity in entities(config):
        subject = f"{prefix}.{entity.component}.{node_id}.{entity.object_id}.config"
        documents[subject] = {**entity.keys, "unique_id": f"{ORIGIN_NAME}_{node_id}_{entity.object_id}", **shared}
    return documents
