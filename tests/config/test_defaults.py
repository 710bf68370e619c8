"""Every `default` the JSON schema shows an editor is what the bridge does when the key is left out.

For each key with a schema default, a config without the key and one with the key set to that
default must load to the same typed model: this holds the schema, the model's defaults (which come
from the NATS client's options where they are its settings) and the converter to one value.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path

import pytest

from bridge.config import load_config
from bridge.config.model import (
    DeviceConfig,
    FleetConfig,
    HomeAssistantConfig,
    NatsConfig,
    ReconnectConfig,
    SubscriptionConfig,
    TlsConfig,
    WebConfig,
)
from bridge.config.schema import SCHEMA_FILE
from bridge.config.units import parse_duration, parse_size
from bridge.display.model import DisplayConfig
from bridge.nats.options import ClientOptions, KeepAlive, Reconnect
from bridge.nats.tls import TlsOptions

PLAIN = {
    "version": 1,
    "device": {"id": "pi"},
    "nats": {"servers": ["nats://127.0.0.1:4222"], "tls": {}, "reconnect": {}},
    "subscriptions": [{"subject": "a.b", "action": "clear"}],
    "web": {},
    "homeassistant": {},
    "display": {},
}
BOOTSTRAP = {"version": 1, "device": {"id": "pi"}, "nats": {"servers": ["nats://127.0.0.1:4222"]},
             "fleet": {"key": "pi"}}


MODEL_OF = {("device",): DeviceConfig, ("nats",): NatsConfig, ("nats", "tls"): TlsConfig,
            ("nats", "reconnect"): ReconnectConfig, ("subscriptions", 0): SubscriptionConfig,
            ("web",): WebConfig, ("fleet",): FleetConfig, ("homeassistant",): HomeAssistantConfig,
            ("display",): DisplayConfig}
PARSE = {"#/$defs/duration": parse_duration, "#/$defs/size": parse_size}


def schema_defaults() -> list[tuple[tuple, object]]:
    """(config path, default as the model holds it) for every key of the schema with a default; a
    subscription's keys under ("subscriptions", 0)."""
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    found = []

    def walk(node: dict, path: tuple) -> None:
        for key, child in node.get("properties", {}).items():
            if "default" in child:
                found.append((path + (key,), child["default"]))
            walk(child, path + (key,))

    walk(schema, ())
    walk(schema["$defs"]["subscription"], ("subscriptions", 0))
    return found


DEFAULTS = schema_defaults()


def load(tmp_path: Path, name: str, document: dict):
    file = tmp_path / name
    file.write_text(json.dumps(document), encoding="utf-8")
    return dataclasses.replace(load_config(file), source="")


def without(document: dict, path: tuple) -> dict:
    document = copy.deepcopy(document)
    node = document
    for key in path[:-1]:
        node = node[key]
    node.pop(path[-1], None)
    return document


def setting(document: dict, path: tuple, value) -> dict:
    document = copy.deepcopy(document)
    node = document
    for key in path[:-1]:
        node = node.setdefault(key, {}) if isinstance(node, dict) else node[key]
    node[path[-1]] = value
    return document


def test_the_schema_has_the_defaults_this_test_is_about():
    paths = {path for path, _ in DEFAULTS}
    assert {("nats", "reconnect", "initial_delay"), ("nats", "ping_interval"), ("nats", "buffer_size"),
            ("subscriptions", 0, "pending_limit"), ("web", "listen"), ("fleet", "bucket")} <= paths


@pytest.mark.parametrize("path, default", DEFAULTS, ids=[".".join(map(str, path)) for path, _ in DEFAULTS])
def test_leaving_a_key_out_is_the_same_as_writing_its_schema_default(tmp_path, path, default):
    base = BOOTSTRAP if path[0] == "fleet" else PLAIN
    left_out = load(tmp_path, "left_out.yml", without(base, path))
    written = load(tmp_path, "written.yml", setting(base, path, default))
    assert left_out == written, f"{'.'.join(map(str, path))}: the schema says {default!r}"


def as_model_holds_it(node_ref: str | None, value):
    if isinstance(value, list):
        return tuple(value)
    if isinstance(value, dict):  # display.icons: (name, picture) pairs
        return tuple(value.items())
    return PARSE[node_ref](value) if node_ref in PARSE else value


def schema_node(path: tuple) -> dict:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    node = schema["$defs"]["subscription"] if path[0] == "subscriptions" else schema["properties"][path[0]]
    for key in path[2 if path[0] == "subscriptions" else 1:]:
        node = node["properties"][key]
    return node


def model_field(path: tuple) -> dataclasses.Field | None:
    """The model's field for `path`, if it has one with a default of its own."""
    for item in dataclasses.fields(MODEL_OF[path[:-1]]):
        if item.name == path[-1] and (item.default, item.default_factory) != (dataclasses.MISSING,) * 2:
            return item
    return None


MODEL_FIELDS = [(path, default) for path, default in DEFAULTS if model_field(path) is not None]


@pytest.mark.parametrize("path, default", MODEL_FIELDS, ids=[".".join(map(str, path)) for path, _ in MODEL_FIELDS])
def test_the_typed_model_has_the_schema_default(path, default):
    field = model_field(path)
    model_default = field.default_factory() if field.default is dataclasses.MISSING else field.default
    assert model_default == as_model_holds_it(schema_node(path).get("$ref"), default)


def test_the_keys_the_model_spells_differently_are_only_these():
    """device.id defaults to ${HOSTNAME} by substitution; web.listen is the model's host and port."""
    assert {path for path, _ in DEFAULTS} - {path for path, _ in MODEL_FIELDS} == {("device", "id"), ("web", "listen")}
    assert f"{WebConfig.host}:{WebConfig.port}" == dict(DEFAULTS)[("web", "listen")]


def test_the_nats_defaults_are_the_clients():
    options = ClientOptions()
    assert ReconnectConfig() == ReconnectConfig(**dataclasses.asdict(Reconnect()))
    nats = NatsConfig(servers=())
    assert (nats.randomize, nats.buffer_size) == (options.randomize, options.buffer_size)
    assert (nats.ping_interval, nats.max_outstanding_pings) == dataclasses.astuple(KeepAlive())
    assert (TlsConfig().verify, TlsConfig().handshake_first) == (TlsOptions().verify, TlsOptions().handshake_first)
