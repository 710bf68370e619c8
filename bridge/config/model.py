"""The typed, validated configuration: what the runtime consumes.

Produced only by `bridge.config.load_config` after substitution, schema and semantic checks, so
every value here is already normalised (durations in seconds, sizes in bytes, colours as RGB
tuples inside action args).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

from bridge.config.filters import CompensateConfig, FilterConfig
from bridge.names import ACTIONS, DRIVERS, OVERFLOW_POLICIES, POLLED_SENSORS, SENSORS  # noqa: F401 (re-exported)
from bridge.nats.options import ClientOptions, KeepAlive, Reconnect
from bridge.nats.tls import TlsOptions


@dataclass(frozen=True)
class DeviceConfig:
    id: str
    driver: str = "sense-hat"
    rotation: int = 0
    low_light: bool = False


@dataclass(frozen=True)
class TlsConfig:
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    verify: bool = TlsOptions.verify
    handshake_first: bool = TlsOptions.handshake_first


@dataclass(frozen=True)
class ReconnectConfig:
    """The client's `Reconnect`, with its defaults."""

    initial_delay: float = Reconnect.initial_delay
    max_delay: float = Reconnect.max_delay
    jitter: float = Reconnect.jitter
    max_attempts: int = Reconnect.max_attempts  # 0 = forever


@dataclass(frozen=True)
class NatsConfig:
    """The client's `ClientOptions` as the config file spells them (`ping_interval` and
    `max_outstanding_pings` are its `KeepAlive`), with the client's defaults."""

    servers: tuple[str, ...]
    name: str | None = None
    randomize: bool = ClientOptions.randomize
    user: str | None = None
    password: str | None = None
    token: str | None = None
    nkey_seed_file: str | None = None
    creds_file: str | None = None
    tls: TlsConfig | None = None
    reconnect: ReconnectConfig = field(default_factory=ReconnectConfig)
    ping_interval: float = KeepAlive.ping_interval
    max_outstanding_pings: int = KeepAlive.max_outstanding_pings
    buffer_size: int = ClientOptions.buffer_size
    status_interval: float = 30.0  # the bridge's status heartbeat, not a client option


@dataclass(frozen=True)
class SubscriptionConfig:
    subject: str
    action: str
    queue: str | None = None
    args: Mapping[str, Any] = field(default_factory=dict)
    pending_limit: int = 1000
    overflow: str = "queue"
    pending_bytes: int = 1024 * 1024  # payload bytes of the messages waiting, at most
    max_payload: int = 64 * 1024  # a larger payload is rejected unread
    max_scroll: float = 30.0  # seconds one show_message may take, at most
    locked: tuple[str, ...] = ()  # args a payload may not set
    rate: float | None = None  # messages per second, on average; None: no rate limit
    burst: int | None = None  # messages at once above the rate; None: the rate per second, at least 1

    @property
    def burst_size(self) -> int:
        if self.burst is not None:
            return self.burst
        return max(1, math.ceil(self.rate or 0))


@dataclass(frozen=True)
class PublicationConfig:
    subject: str
    sensor: str
    interval: float | None = None  # None only for joystick
    change: float | None = None
    heartbeat: float | None = None
    filters: tuple[FilterConfig, ...] = ()
    compensate: CompensateConfig | None = None


@dataclass(frozen=True)
class WebConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    hosts: tuple[str, ...] = ()
    max_clients: int = 16
    stall_timeout: float = 30.0


@dataclass(frozen=True)
class HomeAssistantConfig:
    """`homeassistant:`: announce this Pi to Home Assistant (MQTT discovery through nats-server's MQTT listener)."""

    prefix: str = "homeassistant"  # as an MQTT topic: levels separated by '/'
    name: str | None = None  # None: the device id
    # Seconds without a reading before HA shows a sensor unavailable; "auto": from each publication's
    # timing; "off": never.
    expire_after: float | str = "auto"


@dataclass(frozen=True)
class FleetConfig:
    """A bootstrap file's `fleet:`: where the stored config (vars, subscriptions, publications, homeassistant) lives,
    and the vars this Pi exports to it."""

    key: str
    bucket: str = "bridge_config"
    vars: Mapping[str, str] = field(default_factory=dict)  # resolved here; they override the stored config's
    public: tuple[str, ...] = ()  # vars that may be shown although read from a file or the environment
    secret_vars: frozenset[str] = frozenset()  # vars read (even partly) from a file or the environment, not public


@dataclass(frozen=True)
class BridgeConfig:
    device: DeviceConfig
    nats: NatsConfig
    subscriptions: tuple[SubscriptionConfig, ...] = ()
    publications: tuple[PublicationConfig, ...] = ()
    web: WebConfig | None = None
    version: int = 1
    source: str = "<config>"  # the file it came from (or kv:BUCKET/KEY@REV), for log lines and reloads
    fleet: FleetConfig | None = None  # set: a bootstrap file; the rest comes from the stored config
    # The host name ${HOSTNAME} resolved to (a stored config resolves it to this, not to the machine
    # checking it); None: the device id stands for it.
    hostname: str | None = None
    # Every text read from a file or the environment (the device id aside: it is public by nature);
    # log lines and replies quoting one mask it with `bridge.config.redact.mask_secrets`.
    secrets: frozenset[str] = frozenset()
    homeassistant: HomeAssistantConfig | None = None
