"""The web view's limits and the Host names it answers to: a frozen value that checks itself,
and `host_allowed`, the pure rule every request's Host header goes through."""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
WILDCARD_ADDRESSES = ("", "0.0.0.0", "::")


@dataclass(frozen=True)
class WebOptions:
    """max_streams: open /events streams at most; one more is answered 503.
    stall_timeout: seconds a stream may stay unable to send (its client not reading) before it is dropped.
    hosts: names besides the bound address (and localhost, 127.0.0.1, [::1]) that the Host header may carry.
    """

    max_streams: int = 16
    stall_timeout: float = 30.0
    hosts: tuple[str, ...] = ()

    def __post_init__(self):
        if isinstance(self.max_streams, bool) or not isinstance(self.max_streams, int) or self.max_streams < 1:
            raise ValueError(f"max_streams must be a whole number of at least 1, not {self.max_streams!r}")
        timeout = self.stall_timeout
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout < math.inf:
            raise ValueError(f"stall_timeout must be a number of seconds above 0, not {self.stall_timeout!r}")
        if isinstance(self.hosts, str):
            raise ValueError(f"hosts must be a list of names, not the single string {self.hosts!r}")
        for name in self.hosts:
            if not isinstance(name, str) or split_host(name) != (name.lower(), None):
                raise ValueError(f"hosts: {name!r} is not a host name (no port; an IPv6 address in [brackets])")
        object.__setattr__(self, "hosts", tuple(name.lower() for name in self.hosts))


def split_host(header: str) -> tuple[str, int | None] | None:
    """("name", port or None) from a Host header value; None when it is malformed."""
    if header.startswith("["):
        end = header.find("]")
        if end < 0:
            return None
        name, rest = header[: end + 1], header[end + 1 :]
    else:
        name, colon, port = header.partition(":")
        rest = colon + port
    if not name:
        return None
    if not rest:
        return name.lower(), None
    if not rest.startswith(":") or not rest[1:].isdigit() or not rest[1:].isascii():
        return None
    return name.lower(), int(rest[1:])


def _is_ip_literal(name: str) -> bool:
    try:
        ipaddress.ip_address(name[1:-1] if name.startswith("[") and name.endswith("]") else name)
    except ValueError:
        return False
    return name.startswith("[") or ":" not in name  # an IPv6 address in a Host header needs its brackets


def host_allowed(header: str | None, bound_host: str, bound_port: int, names: tuple[str, ...] = ()) -> bool:
    """Whether a request whose Host header is `header` may be answered (DNS-rebinding protection).

    The port must be the bound one (80 when the header names none) and the name one of: localhost,
    127.0.0.1, [::1], the bound address, `names`; when bound to every address (0.0.0.0 or ::), any
    IP address too, since a page can only get a rebound name, never an address, into the header.
    """
    if header is None:
        return False
    parts = split_host(header)
    if parts is None:
        return False
    name, port = parts
    if (80 if port is None else port) != bound_port:
        return False
    bound = f"[{bound_host}]" if ":" in bound_host else bound_host
    if name in LOOPBACK_NAMES or name == bound.lower() or name in names:
        return True
    return bound_host in WILDCARD_ADDRESSES and _is_ip_literal(name)
