"""Shared fixtures: real nats-server processes on loopback, stopped by PID after each test, and
small helpers for Twisted tests of the NATS client."""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import HealthCheck, settings
import pytest_twisted
from twisted.internet import defer, protocol, task
from twisted.internet.endpoints import TCP4ClientEndpoint

from bridge.nats import Client
from bridge.nats.server import NatsCluster, NatsServer

pytest_plugins = ["tests.natsauth", "tests.emulation"]

# Hypothesis' per-example deadline and too-slow health check measure time; this box is shared and
# CI is a 2-core machine, so property tests run untimed everywhere.
settings.register_profile("untimed", deadline=None, suppress_health_check=[HealthCheck.too_slow])
# `make mutate` (tests/mutate.py) sets HYPOTHESIS_PROFILE=mutate: the same examples for every mutant and
# no example database, so a mutant's verdict does not depend on which mutants ran before it.
settings.register_profile("mutate", settings.get_profile("untimed"), derandomize=True, database=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "untimed"))


@pytest.fixture
def nats_server():
    """One plain nats-server; `nats_server.url` to connect."""
    server = NatsServer()
    try:
        yield server.start()
    finally:
        server.cleanup()


@pytest.fixture
def nats_cluster():
    """Three nats-servers joined by routes, fully meshed before the test starts."""
    cluster = NatsCluster(3)
    try:
        cluster.start()
        cluster.wait_routed()
        yield cluster
    finally:
        cluster.cleanup()


@pytest.fixture
def make_client():
    """`make_client(servers, **options)` builds a `Client` that is closed after the test."""
    clients: list[Client] = []

    def make(servers, **options) -> Client:
        client = Client(servers, **options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        pytest_twisted.blockon(client.close())


def _reactor():
    # Imported late: pytest-twisted installs the reactor after conftest modules are imported.
    from twisted.internet import reactor

    return reactor


async def wait_until(predicate, timeout: float = 10.0, what: str = "condition") -> None:
    """Poll `predicate` on the reactor; the timeout only stops a broken test from hanging."""
    for _ in range(int(timeout / 0.01)):
        if predicate():
            return
        await task.deferLater(_reactor(), 0.01)
    raise AssertionError(f"{what} not reached within {timeout}s")


def next_event(client: Client, event: str, timeout: float = 10.0) -> defer.Deferred:
    """Fires with the arguments of the next `event` the client reports."""
    fired: defer.Deferred = defer.Deferred()

    def listener(*args):
        client.remove_listener(event, listener)
        fired.callback(args)

    client.add_listener(event, listener)
    return fired.addTimeout(timeout, _reactor())


class Collector:
    """A subscription callback that keeps every message and lets a test await a count."""

    def __init__(self):
        self.messages: list = []
        self._waiters: list[tuple[int, defer.Deferred]] = []

    def __call__(self, msg) -> None:
        self.messages.append(msg)
        ready = [(n, d) for n, d in self._waiters if len(self.messages) >= n]
        self._waiters = [(n, d) for n, d in self._waiters if len(self.messages) < n]
        for _, waiter in ready:
            waiter.callback(self.messages)

    @property
    def data(self) -> list[bytes]:
        return [m.data for m in self.messages]

    def wait_for(self, count: int, timeout: float = 10.0) -> defer.Deferred:
        if len(self.messages) >= count:
            return defer.succeed(self.messages)
        waiter: defer.Deferred = defer.Deferred()
        self._waiters.append((count, waiter))
        return waiter.addTimeout(timeout, _reactor())


class RecordingProxy:
    """A TCP relay in front of a real nats-server, to see and shape what crosses the wire.

    `sent` holds every byte clients sent; `transcript` both directions in order, as
    (from_client, bytes); `hold()` keeps the server's bytes after its first INFO until
    `release()`; `info_extra` is merged into every INFO the server sends.
    """

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.sent = bytearray()
        self.transcript: list[tuple[bool, bytes]] = []
        self.info_extra: dict = {}
        self.holding = False
        self._held: list[tuple[protocol.Protocol, bytes]] = []
        self._port = None
        self._sides: list[protocol.Protocol] = []

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self._port.getHost().port}"

    def start(self) -> "RecordingProxy":
        self._port = _reactor().listenTCP(0, protocol.Factory.forProtocol(lambda: _ClientSide(self)), interface="127.0.0.1")
        return self

    def hold(self) -> None:
        self.holding = True

    def release(self) -> None:
        self.holding = False
        held, self._held = self._held, []
        for side, data in held:
            self.transcript.append((False, data))
            side.transport.write(data)

    def stop(self) -> defer.Deferred:
        for side in self._sides:
            if side.transport is not None:
                side.transport.abortConnection()
        return defer.maybeDeferred(self._port.stopListening)

    def _to_client(self, side: protocol.Protocol, data: bytes, after_info: bool) -> None:
        if self.info_extra and data.startswith(b"INFO "):
            line, _, rest = data.partition(b"\r\n")
            options = json.loads(line[5:])
            options.update(self.info_extra)
            data = b"INFO " + json.dumps(options).encode() + b"\r\n" + rest
        if self.holding and after_info:
            self._held.append((side, data))
        else:
            self.transcript.append((False, data))
            side.transport.write(data)


class _ClientSide(protocol.Protocol):
    def __init__(self, proxy: RecordingProxy):
        self.proxy = proxy
        self.upstream: _ServerSide | None = None

    def connectionMade(self):
        self.proxy._sides.append(self)
        self.transport.pauseProducing()
        endpoint = TCP4ClientEndpoint(_reactor(), "127.0.0.1", self.proxy.target_port)
        endpoint.connect(protocol.Factory.forProtocol(lambda: _ServerSide(self))).addCallbacks(
            self._connected, lambda _: self.transport.abortConnection()
        )

    def _connected(self, upstream):
        self.upstream = upstream
        self.proxy._sides.append(upstream)
        self.transport.resumeProducing()

    def dataReceived(self, data):
        self.proxy.sent += data
        self.proxy.transcript.append((True, data))
        self.upstream.transport.write(data)

    def connectionLost(self, reason=protocol.connectionDone):
        if self.upstream is not None:
            self.upstream.transport.loseConnection()


class _ServerSide(protocol.Protocol):
    def __init__(self, downstream: _ClientSide):
        self.downstream = downstream
        self.saw_info = False

    def dataReceived(self, data):
        self.downstream.proxy._to_client(self.downstream, data, self.saw_info)
        self.saw_info = True

    def connectionLost(self, reason=protocol.connectionDone):
        self.downstream.transport.loseConnection()


@pytest.fixture
def proxy_to():
    """`proxy_to(server)` puts a `RecordingProxy` in front of `server`; stopped after the test."""
    proxies: list[RecordingProxy] = []

    def make(server: NatsServer) -> RecordingProxy:
        proxy = RecordingProxy(server.port).start()
        proxies.append(proxy)
        return proxy

    yield make
    for proxy in proxies:
        pytest_twisted.blockon(proxy.stop())
