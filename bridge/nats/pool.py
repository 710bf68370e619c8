"""The servers a client may connect to: parsed URLs, the rotation, and what the cluster announces.

Everything here is plain data and pure decisions, testable without a reactor.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from typing import Iterable
from urllib.parse import unquote, urlsplit

from twisted.internet.abstract import isIPAddress, isIPv6Address
from twisted.logger import Logger

log = Logger()

DEFAULT_PORT = 4222


@dataclass
class Server:
    url: str  # without credentials: safe to log
    host: str
    port: int
    tls: bool
    tls_name: str  # host name to verify the certificate against
    user: str | None = None  # alone (no password) it is a token, as in nats://token@host
    password: str | None = None
    implicit: bool = False  # learned from INFO connect_urls, not configured


def is_ip_address(host: str) -> bool:
    return isIPAddress(host) or isIPv6Address(host)


def parse_server_url(url: str) -> Server:
    """`nats://[user[:pass]@]host[:port]`, `tls://...`, or a bare `host[:port]`."""
    text = url.strip()
    if "://" not in text:
        text = "nats://" + text
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme not in ("nats", "tls"):
        raise ValueError(f"server URL {url!r}: scheme must be nats:// or tls://")
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError:
        raise ValueError(f"server URL {url!r}: bad port") from None
    host = parts.hostname
    if not host:
        raise ValueError(f"server URL {url!r} has no host")
    shown_host = f"[{host}]" if ":" in host else host
    return Server(
        url=f"{scheme}://{shown_host}:{port}",
        host=host,
        port=port,
        tls=scheme == "tls",
        tls_name=host,
        user=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
    )


def discovered_server(address: str, announced_by: Server) -> Server:
    """A server from `connect_urls`, as nats.go treats it: it inherits the credentials and the
    scheme of the server that announced it; its certificate is checked against its own name,
    or, when it was announced as a bare IP address, against the announcing server's name."""
    server = parse_server_url(("tls://" if announced_by.tls else "nats://") + address)
    tls_name = announced_by.tls_name if is_ip_address(server.host) else server.host
    return replace(server, tls_name=tls_name, user=announced_by.user, password=announced_by.password,
                   implicit=True)


class ServerPool:
    """The servers to try, in rotation: each pick moves the server to the back of the line."""

    def __init__(self, urls: Iterable[str], *, randomize: bool, rng: random.Random):
        servers: list[Server] = []
        for url in urls:
            server = parse_server_url(url)
            if all(s.url != server.url for s in servers):
                servers.append(server)
        if not servers:
            raise ValueError("at least one server URL is needed")
        self._rng = rng
        self._randomize = randomize
        if randomize:
            rng.shuffle(servers)
        self._servers = servers

    def __len__(self) -> int:
        return len(self._servers)

    @property
    def urls(self) -> list[str]:
        return [s.url for s in self._servers]

    def next(self) -> Server:
        server = self._servers.pop(0)
        self._servers.append(server)
        return server

    def update_discovered(self, connect_urls: list[str], current: Server) -> list[str]:
        """Add servers the cluster announced, drop learned ones it no longer announces; return new URLs."""
        announced: list[Server] = []
        for address in connect_urls:
            try:
                announced.append(discovered_server(address, current))
            except ValueError:
                log.warn("ignoring unparsable connect_url {address!r}", address=address)
        announced_urls = {s.url for s in announced}
        self._servers = [
            s for s in self._servers if not s.implicit or s.url in announced_urls or s is current
        ]
        known = {s.url for s in self._servers}
        added = [s for s in announced if s.url not in known]
        if self._randomize:
            self._rng.shuffle(added)
        # Ahead of the current server, which sits at the back: a reconnect tries them first.
        position = self._servers.index(current) if current in self._servers else len(self._servers)
        self._servers[position:position] = added
        return [s.url for s in added]
