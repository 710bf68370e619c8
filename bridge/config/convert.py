"""Validated plain data -> the typed model, and the model back to plain data / YAML for `--print`."""

from __future__ import annotations

import dataclasses
from pathlib import Path as FilePath
from typing import Any

import yaml

from bridge.actions import normalise_defaults
from bridge.config.checks import resolve_file
from bridge.config.document import Path
from bridge.config.filters import filter_to_plain, to_compensate, to_filter
from bridge.config.model import (
    BridgeConfig,
    DeviceConfig,
    FleetConfig,
    HomeAssistantConfig,
    NatsConfig,
    PublicationConfig,
    ReconnectConfig,
    SubscriptionConfig,
    TlsConfig,
    WebConfig,
)
from bridge.config.redact import MASK, redact_url
from bridge.config.schema import SECRET_KEYS
from bridge.config.units import (
    format_duration,
    format_rate,
    format_size,
    parse_duration,
    parse_listen,
    parse_rate,
    parse_size,
)

_DURATIONS = {"initial_delay", "max_delay", "ping_interval", "status_interval", "interval", "heartbeat", "stall_timeout",
              "expire_after"}


def _optional_duration(value: Any) -> float | None:
    return None if value is None else parse_duration(value)


def _expiry(value: Any) -> float | str:
    """`off` unquoted is YAML's false."""
    if value is False:
        return "off"
    return value if value in ("auto", "off") else parse_duration(value)


def to_model(data: dict, config_dir: FilePath, source: str) -> BridgeConfig:
    """Only for data that passed every check: nothing here reports errors."""
    device_data = data.get("device", {})
    device = DeviceConfig(
        id=device_data["id"],
        driver=device_data.get("driver", DeviceConfig.driver),
        rotation=device_data.get("rotation", DeviceConfig.rotation),
        low_light=device_data.get("low_light", DeviceConfig.low_light),
    )
    nats_data = data["nats"]

    def file(value: str | None) -> str | None:
        return None if value is None else resolve_file(config_dir, value)

    tls_data = nats_data.get("tls")
    tls = None
    if tls_data is not None:
        tls = TlsConfig(
            ca_file=file(tls_data.get("ca_file")),
            cert_file=file(tls_data.get("cert_file")),
            key_file=file(tls_data.get("key_file")),
            verify=tls_data.get("verify", TlsConfig.verify),
            handshake_first=tls_data.get("handshake_first", TlsConfig.handshake_first),
        )
    reconnect_data = nats_data.get("reconnect", {})
    reconnect = ReconnectConfig(
        initial_delay=parse_duration(reconnect_data.get("initial_delay", ReconnectConfig.initial_delay)),
        max_delay=parse_duration(reconnect_data.get("max_delay", ReconnectConfig.max_delay)),
        jitter=float(reconnect_data.get("jitter", ReconnectConfig.jitter)),
        max_attempts=reconnect_data.get("max_attempts", ReconnectConfig.max_attempts),
    )
    nats = NatsConfig(
        servers=tuple(nats_data["servers"]),
        name=nats_data.get("name", f"bridge-{device.id}"),
        randomize=nats_data.get("randomize", NatsConfig.randomize),
        user=nats_data.get("user"),
        password=nats_data.get("password"),
        token=nats_data.get("token"),
        nkey_seed_file=file(nats_data.get("nkey_seed_file")),
        creds_file=file(nats_data.get("creds_file")),
        tls=tls,
        reconnect=reconnect,
        ping_interval=parse_duration(nats_data.get("ping_interval", NatsConfig.ping_interval)),
        max_outstanding_pings=nats_data.get("max_outstanding_pings", NatsConfig.max_outstanding_pings),
        buffer_size=parse_size(nats_data.get("buffer_size", NatsConfig.buffer_size)),
        status_interval=parse_duration(nats_data.get("status_interval", NatsConfig.status_interval)),
    )
    subscriptions = tuple(
        SubscriptionConfig(
            subject=entry["subject"],
            action=entry["action"],
            queue=entry.get("queue", SubscriptionConfig.queue),
            args=normalise_defaults(entry["action"], entry.get("args", {})),
            pending_limit=entry.get("pending_limit", SubscriptionConfig.pending_limit),
            overflow=entry.get("overflow", SubscriptionConfig.overflow),
            pending_bytes=parse_size(entry.get("pending_bytes", SubscriptionConfig.pending_bytes)),
            max_payload=parse_size(entry.get("max_payload", SubscriptionConfig.max_payload)),
            max_scroll=parse_duration(entry.get("max_scroll", SubscriptionConfig.max_scroll)),
            locked=tuple(entry.get("locked", ())),
            rate=None if entry.get("rate") is None else parse_rate(entry["rate"]),
            burst=entry.get("burst"),
        )
        for entry in data.get("subscriptions", [])
    )
    publications = tuple(
        PublicationConfig(
            subject=entry["subject"],
            sensor=entry["sensor"],
            interval=_optional_duration(entry.get("interval")),
            change=None if entry.get("change") is None else float(entry["change"]),
            heartbeat=_optional_duration(entry.get("heartbeat")),
            filters=tuple(to_filter(item, parse_duration) for item in entry.get("filters", [])),
            compensate=None if entry.get("compensate") is None else to_compensate(entry["compensate"]),
        )
        for entry in data.get("publications", [])
    )
    web = None
    if "web" in data:
        default = WebConfig()
        host, port = parse_listen(data["web"].get("listen", f"{default.host}:{default.port}"))
        web = WebConfig(host=host, port=port, hosts=tuple(data["web"].get("hosts", ())),
                        max_clients=data["web"].get("max_clients", default.max_clients),
                        stall_timeout=parse_duration(data["web"].get("stall_timeout", default.stall_timeout)))
    fleet = None
    if "fleet" in data:
        fleet_data = data["fleet"]
        fleet = FleetConfig(key=fleet_data["key"], bucket=fleet_data.get("bucket", FleetConfig.bucket),
                            vars={name: str(value) for name, value in fleet_data.get("vars", {}).items()},
                            public=tuple(fleet_data.get("public", ())))
    homeassistant = None
    if "homeassistant" in data:
        ha_data = data["homeassistant"]
        expire_after = ha_data.get("expire_after", HomeAssistantConfig.expire_after)
        homeassistant = HomeAssistantConfig(
            prefix=ha_data.get("prefix", HomeAssistantConfig.prefix),
            name=ha_data.get("name"),
            expire_after=_expiry(expire_after),
        )
    return BridgeConfig(
        device=device,
        nats=nats,
        subscriptions=subscriptions,
        publications=publications,
        web=web,
        version=data["version"],
        source=source,
        fleet=fleet,
        homeassistant=homeassistant,
    )


def to_plain(config: BridgeConfig, secret_paths: set[Path]) -> dict:
    """The fully resolved config as plain data, defaults filled in, units spelled out, secrets masked."""
    data = _plain(dataclasses.asdict(config), (), secret_paths)
    data.pop("source")
    fleet = data.get("fleet")
    if fleet is not None:
        for name in fleet.pop("secret_vars"):
            fleet["vars"][name] = MASK
        data["fleet"] = {key: value for key, value in fleet.items() if value or key not in ("vars", "public")}
    for publication, plain in zip(config.publications, data.get("publications", [])):
        if publication.filters:
            plain["filters"] = [filter_to_plain(item, format_duration) for item in publication.filters]
        else:
            plain.pop("filters")
    web = data.pop("web", None)
    if web is not None:
        host = f"[{web['host']}]" if ":" in web["host"] else web["host"]
        data["web"] = {"listen": f"{host}:{web['port']}", "hosts": web["hosts"], "max_clients": web["max_clients"],
                       "stall_timeout": web["stall_timeout"]}
    return {key: data[key] for key in ("version", "fleet", "device", "nats", "subscriptions", "publications", "web",
                                        "homeassistant") if key in data}


def to_yaml(config: BridgeConfig, secret_paths: set[Path]) -> str:
    """`to_plain` as YAML, for `bridge validate --print`."""
    return yaml.safe_dump(to_plain(config, secret_paths), sort_keys=False, default_flow_style=None,
                          allow_unicode=True, width=100)


def _plain(value: Any, path: Path, secret_paths: set[Path]) -> Any:
    if path in secret_paths or (path and path[-1] in SECRET_KEYS and value is not None):
        return MASK
    if path[:2] == ("nats", "servers") and isinstance(value, str):
        return redact_url(value)
    if isinstance(value, dict):
        return {
            key: _plain(item, path + (key,), secret_paths)
            for key, item in value.items()
            if item is not None or key in ("queue",)
        }
    if isinstance(value, (list, tuple)):
        return [_plain(item, path + (index,), secret_paths) for index, item in enumerate(value)]
    if path and path[0] != "subscriptions" and path[-1] in _DURATIONS and isinstance(value, float):
        return format_duration(value)
    if path and path[-1] == "buffer_size":
        return format_size(value)
    if len(path) == 3 and path[0] == "subscriptions":  # the subscription's own keys, not its args
        if path[-1] in ("pending_bytes", "max_payload"):
            return format_size(value)
        if path[-1] == "max_scroll":
            return format_duration(value)
        if path[-1] == "rate" and value is not None:
            return format_rate(value)
    return value
