"""Fixtures and hooks: real nats-server processes on loopback, stopped by PID after each test; our
NATS client and a recording proxy closed after it; the tests CI must never skip. The helpers tests
share live in tests/harness.

The NATS client's own tests (tests/harness/flavours.py: FLAVOURED_MODULES) run once per server
flavour, with ids like `[current]` / `[debian-2.9]`; every other test runs against the current
server only. A test (or a fixture) gets the flavour's servers through the `nats_flavour` fixture, so
a fixture that starts servers must build them with `nats_flavour.server(...)` / `nats_flavour.cluster(...)`.
"""
from __future__ import annotations

import os
import tempfile

import pytest
import pytest_twisted
from hypothesis import HealthCheck, settings

from bridge.nats import Client, ClientOptions
from bridge.testing.nats_server import NatsServer, server_version
from tests.harness.flavours import FLAVOURED_MODULES, FLAVOURS, ServerFlavour, available_flavours, in_ci
from tests.harness.proxy import RecordingProxy
from tests.harness.skips import skip_reason, skip_summary

pytest_plugins = ["tests.harness.natsauth", "tests.harness.emulation"]

# Hypothesis' per-example deadline and too-slow health check measure time; this box is shared and
# CI is a 2-core machine, so property tests run untimed everywhere.
settings.register_profile("untimed", deadline=None, suppress_health_check=[HealthCheck.too_slow])
# `make mutate` (tests/mutate.py) sets HYPOTHESIS_PROFILE=mutate: the same examples for every mutant and
# no example database, so a mutant's verdict does not depend on which mutants ran before it.
settings.register_profile("mutate", settings.get_profile("untimed"), derandomize=True, database=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "untimed"))


_TEST_STATE = tempfile.TemporaryDirectory(prefix="bridge-tests-state-")

# --- server flavours ---------------------------------------------------------------------------


def pytest_configure(config):
    # Bridges keep runtime apps and spools in the state directory: the tests' (and the bridge
    # processes they start) go to a folder of this run, never to the user's ~/.local/state/bridge.
    if "STATE_DIRECTORY" not in os.environ:
        os.environ["STATE_DIRECTORY"] = _TEST_STATE.name
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
    binary = available_flavours().get(name)
    if binary is None:
        reason = f"nats-server flavour {name!r} is not installed; it comes from {FLAVOURS[name]}"
        others = [f"{other} ({path})" for other, path in available_flavours().items() if other not in FLAVOURS]
        if others:
            reason += f"; found only {', '.join(others)}"
        if in_ci():
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
    if report.skipped and in_ci() and report.nodeid.startswith(MUST_RUN_IN_CI):
        _skipped_in_ci.append(f"{report.nodeid}: {skip_reason(report)}")


def pytest_collectreport(report):
    _note_skip(report)


def pytest_runtest_logreport(report):
    _note_skip(report)


def pytest_terminal_summary(terminalreporter):
    skipped = terminalreporter.stats.get("skipped", [])
    if skipped:  # pyproject's -r leaves skips out: pytest would print one line per test location
        terminalreporter.section("skips, by reason", sep="-")
        for line in skip_summary(skipped):
            terminalreporter.line(line)


def pytest_sessionfinish(session, exitstatus):
    if _skipped_in_ci:
        print("\nCI must run these tests, but they skipped:\n  " + "\n  ".join(_skipped_in_ci))
        session.exitstatus = 1


# --- end-to-end: a module's bridges and the nats-py client that talks to them ----------------------


@pytest.fixture(scope="module")
def module_nats_server():
    """One plain nats-server for a module's `bridge run` subprocesses (a module may override it,
    e.g. with JetStream)."""
    with NatsServer() as running:
        yield running


@pytest.fixture(scope="module")
def nats_py(module_nats_server):
    """nats-py (`OutsideClient`: the official asyncio client on a loop of its own) on
    `module_nats_server`: how the end-to-end tests talk to bridges from outside."""
    from bridge.testing.outside import OutsideClient

    with OutsideClient(module_nats_server.url) as client:
        yield client
