"""What Home Assistant's MQTT platforms (2024.3) require of a discovery document, written down,
and the payloads HA sends on each command topic, rendered from the document as HA renders them.

Used by the pure builder's tests and by the MQTT end-to-end test, which plays HA with paho-mqtt.
"""

from __future__ import annotations

import re

import jinja2

from bridge.actions import Limits, PayloadError, parse_command
from bridge.config.model import SubscriptionConfig

# Keys each platform cannot do without (homeassistant/components/mqtt/<platform>.py PLATFORM_SCHEMA).
REQUIRED = {
    "sensor": {"state_topic"},
    "event": {"state_topic", "event_types"},
    "text": {"command_topic"},
    "button": {"command_topic"},
    "light": {"schema", "command_topic", "command_on_template", "command_off_template"},
    "select": {"command_topic", "options"},
    "switch": {"command_topic"},
}
# What every document of this bridge carries, for one device in HA with availability.
SHARED = {"unique_id", "device", "origin", "availability_topic", "availability_template",
          "payload_available", "payload_not_available"}
DEVICE_REQUIRED = {"identifiers", "name", "model", "sw_version"}
# Units HA's sensor device classes accept (homeassistant/components/sensor/const.py DEVICE_CLASS_UNITS).
CLASS_UNITS = {"temperature": {"°C", "°F", "K"}, "humidity": {"%"}, "atmospheric_pressure": {"hPa", "Pa", "kPa",
               "bar", "cbar", "mbar", "mmHg", "inHg", "psi"}}
TOPIC_KEYS = ("state_topic", "command_topic", "availability_topic")
TEMPLATE_KEYS = ("value_template", "availability_template", "command_on_template", "command_off_template",
                 "red_template", "green_template", "blue_template")
DISCOVERY_TOPIC = re.compile(r"^(?P<prefix>[^+#]+)/(?P<component>\w+)/(?P<node_id>[a-zA-Z0-9_-]+)/"
                             r"(?P<object_id>[a-zA-Z0-9_-]+)/config$")

_templates = jinja2.Environment()


def render(template: str, **variables) -> str:
    return _templates.from_string(template).render(**variables)


def problems(topic: str, document: dict) -> list[str]:
    """Why HA would refuse (or half-use) this discovery message; [] when it takes it."""
    found = []
    match = DISCOVERY_TOPIC.match(topic)
    if match is None:
        return [f"{topic}: not a discovery topic"]
    component = match["component"]
    if component not in REQUIRED:
        return [f"{topic}: no such platform here"]
    for key in sorted((REQUIRED[component] | SHARED) - document.keys()):
        found.append(f"{topic}: missing {key}")
    for key in sorted(DEVICE_REQUIRED - document.get("device", {}).keys()):
        found.append(f"{topic}: device misses {key}")
    for key in TOPIC_KEYS:
        value = document.get(key)
        if value is not None and (not value or set("+#").intersection(value) or "" in value.split("/")):
            found.append(f"{topic}: {key} {value!r} is not a topic one may publish on")
    for key in TEMPLATE_KEYS:
        if key in document:
            try:
                _templates.parse(document[key])
            except jinja2.TemplateSyntaxError as error:
                found.append(f"{topic}: {key} is no template: {error}")
    if component == "sensor" and "device_class" in document:
        allowed = CLASS_UNITS.get(document["device_class"], set())
        if document.get("unit_of_measurement") not in allowed:
            found.append(f"{topic}: unit {document.get('unit_of_measurement')!r} is not one of {sorted(allowed)}")
    if component == "light" and not all(f"{colour}_template" in document for colour in ("red", "green", "blue")):
        found.append(f"{topic}: without red/green/blue templates HA treats the light as on/off and sends white")
    if component == "text" and not 0 < document.get("min", 0) <= document.get("max", 255) <= 255:
        found.append(f"{topic}: min/max outside what a text entity holds")
    return found


def commands(component: str, document: dict) -> list[bytes]:
    """Every kind of payload HA sends on the entity's command topic."""
    if component == "text":
        longest = document["max"]
        texts = ["x", "W" * longest, "\N{GRINNING FACE}" * longest, "{ not json", "hello } world"]
        pattern = re.compile(document["pattern"])
        assert not pattern.match('{"text": "hi"}') and not pattern.match(" {} ")
        return [text.encode() for text in texts if pattern.match(text) and len(text) <= longest]
    if component == "button":
        return [document["payload_press"].encode()]
    if component == "select":
        return [option.encode() for option in document["options"]]
    if component == "switch":
        return [document["payload_on"].encode(), document["payload_off"].encode()]
    if component == "light":
        on = document["command_on_template"]
        return [render(on, state="on").encode(),
                render(on, state="on", brightness=128).encode(),
                render(on, state="on", red=255, green=128, blue=0, hue=30.1, sat=100.0).encode(),
                render(on, state="on", brightness=10, red=10, green=5, blue=0).encode(),
                render(document["command_off_template"], state="off").encode()]
    return []


def refused(subscription: SubscriptionConfig, payload: bytes) -> str | None:
    """What the subscription's action says to HA's payload, or None when it takes it."""
    limits = Limits(subscription.max_payload,
                    subscription.max_scroll if subscription.action == "show_message" else None,
                    frozenset(subscription.locked))
    try:
        parse_command(subscription.action, payload, subscription.args, limits)
    except PayloadError as error:
        return str(error)
    return None
