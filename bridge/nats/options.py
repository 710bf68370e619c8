"""What a `Client` is told, as frozen values that check themselves, each field with its own message.

These are the one source of every client default: the bridge's config model takes its defaults
from here. Plain values only (no Twisted), so the config loader can import them cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Iterable, Mapping

from bridge.nats.auth import Credentials
from bridge.nats.tls import TlsOptions

__all__ = ["ClientOptions", "DEFAULT_URL", "KeepAlive", "Reconnect"]

DEFAULT_URL = "nats://127.0.0.1:4222"


def _not_negative(owner: object, *names: str) -> None:
    for name in names:
        if getattr(owner, name) < 0:
            raise ValueError(f"{name} must not be negative, not {getattr(owner, name)!r}")


def _positive(owner: object, *names: str) -> None:
    for name in names:
        if getattr(owner, name) <= 0:
            raise ValueError(f"{name} must be more than 0, not {getattr(owner, name)!r}")


@dataclass(frozen=True)
class Reconnect:
    """Every server of the pool is tried at once; then `initial_delay` s doubling up to
    `max_delay` s, each stretched by up to `jitter` (a fraction) so a fleet does not retry in
    step. `max_attempts` failed attempts in a row end the client; 0 never gives up."""

    initial_delay: float = 0.1
    max_delay: float = 5.0
    jitter: float = 0.2
    max_attempts: int = 0

    def __post_init__(self) -> None:
        _not_negative(self, "initial_delay", "max_delay", "jitter", "max_attempts")
        if self.max_delay < self.initial_delay:
            raise ValueError(f"max_delay ({self.max_delay}) must be at least initial_delay ({self.initial_delay})")


@dataclass(frozen=True)
class KeepAlive:
    """A PING every `ping_interval` s; a server that leaves `max_outstanding_pings` unanswered (the
    last one given half an interval) is treated as dead."""

    ping_interval: float = 10.0
    max_outstanding_pings: int = 2

    def __post_init__(self) -> None:
        _positive(self, "ping_interval")
        if self.max_outstanding_pings < 1:
            raise ValueError(f"max_outstanding_pings must be at least 1, not {self.max_outstanding_pings!r}")


@dataclass(frozen=True)
class ClientOptions:
    """Servers (randomized unless `randomize=False`), who we are, how to log in, and the limits.

    Authentication: `credentials`, at most one of user+password, token, nkey_seed/nkey_seed_file,
    creds_file (`Credentials.check()` checks the combination and the files when the client is made). `tls` is a `TlsOptions`, a dict of
    its fields, or any object with those attributes. Publishes wait in a queue of at most
    `buffer_size` bytes while there is no connection or the server is not taking data;
    `connect_timeout` s bounds each attempt from dialing to the handshake's PONG.
    """

    servers: tuple[str, ...] = (DEFAULT_URL,)
    name: str | None = None
    randomize: bool = True
    echo: bool = True
    credentials: Credentials = field(default_factory=Credentials)
    tls: Any = None
    reconnect: Reconnect = field(default_factory=Reconnect)
    keepalive: KeepAlive = field(default_factory=KeepAlive)
    buffer_size: int = 8 * 1024 * 1024
    connect_timeout: float = 2.0

    def __post_init__(self) -> None:
        servers = (self.servers,) if isinstance(self.servers, str) else tuple(self.servers)
        if not servers:
            raise ValueError("servers must name at least one server URL")
        object.__setattr__(self, "servers", servers)
        if isinstance(self.tls, Mapping):
            object.__setattr__(self, "tls", TlsOptions(**self.tls))
        if not isinstance(self.reconnect, Reconnect):
            raise TypeError(f"reconnect must be a Reconnect, not {type(self.reconnect).__name__}")
        if not isinstance(self.credentials, Credentials):
            raise TypeError(f"credentials must be Credentials, not {type(self.credentials).__name__}")
        if not isinstance(self.keepalive, KeepAlive):
            raise TypeError(f"keepalive must be a KeepAlive, not {type(self.keepalive).__name__}")
        _not_negative(self, "buffer_size")
        _positive(self, "connect_timeout")

    @classmethod
    def from_keywords(cls, servers: str | Iterable[str] = (DEFAULT_URL,), **keywords) -> "ClientOptions":
        """One flat set of keywords (`max_delay=1, ping_interval=5, name=...`), each sent to the
        value it belongs to; what is not given keeps that value's default."""
        parts: dict[type, dict] = {Reconnect: {}, KeepAlive: {}, Credentials: {}, cls: {}}
        owners = {item.name: part for part in (Reconnect, KeepAlive, Credentials) for item in fields(part)}
        own = {item.name for item in fields(cls)} - {"servers", "reconnect", "keepalive", "credentials"}
        for name, value in keywords.items():
            owner = owners.get(name) or (cls if name in own else None)
            if owner is None:
                raise TypeError(f"unknown client option {name!r}")
            parts[owner][name] = value
        return cls(servers, reconnect=Reconnect(**parts[Reconnect]), keepalive=KeepAlive(**parts[KeepAlive]),
                   credentials=Credentials(**parts[Credentials]), **parts[cls])
