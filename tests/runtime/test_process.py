"""The process's service tree in memory: start order, reverse stop order, and how a failed start ends the run.

A journal records what each part does, in order: the bridge's start and stop, the web view's port
(on a memory reactor that can refuse a port), systemd's notifications and the follower. SIGHUP's
reloader runs on a `load` that answers when the test says.
"""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import pytest
from twisted.internet import defer
from twisted.internet.address import IPv4Address
from twisted.internet.error import CannotListenError, ConnectionLost
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import capturedLogs

from bridge.cli.exit import ExitStatus
from bridge.cli.run import config_reloader, exit_status
from bridge.config.errors import ConfigError, ConfigIssue
from bridge.config.isolated import ConfigCheckFailed
from bridge.devices import DeviceUnavailable
from bridge.runtime.process import bridge_process

WATCHDOG = {"WATCHDOG_USEC": "4000000"}  # WATCHDOG=1 every 2 s
URL = "nats://127.0.0.1:4222"


class JournalPort:
    def __init__(self, journal: list, port: int):
        self.journal = journal
        self.port = port
        self.stopped = defer.Deferred()

    def getHost(self):
        return IPv4Address("TCP", "127.0.0.1", self.port)

    def stopListening(self) -> defer.Deferred:
        self.journal.append("view stops")
        return self.stopped


class Reactor(MemoryReactorClock):
    """A memory reactor whose ports in `taken` are in use; port 0 gets 8099."""

    def __init__(self, journal: list, taken=()):
        super().__init__()
        self.journal = journal
        self.taken = set(taken)
        self.ports: list[JournalPort] = []

    def listenTCP(self, port, factory, backlog=50, interface=""):
        if port in self.taken:
            raise CannotListenError(interface, port, OSError(98, "Address already in use"))
        self.journal.append(f"view listens on {port}")
        self.ports.append(JournalPort(self.journal, port or 8099))
        return self.ports[-1]

    def stop(self):
        self.journal.append("reactor stops")
        super().stop()


class FakeBridge:
    """start() and stop() return Deferreds the test fires."""

    def __init__(self, journal: list):
        self.journal = journal
        self.listeners = []
        self.gave_up = False
        self.config = SimpleNamespace(web=None)
        self.client = SimpleNamespace(connected_url=URL)
        self.starting = defer.Deferred()
        self.stopping = defer.Deferred()

    def start(self) -> defer.Deferred:
        self.journal.append("bridge starts")
        return self.starting

    def stop(self) -> defer.Deferred:
        self.journal.append("bridge stops")
        return self.stopping

    def tell(self, event: str) -> None:
        for listener in list(self.listeners):
            listener(event)


class FakeFollower:
    def __init__(self, journal: list):
        self.journal = journal

    def start(self) -> defer.Deferred:
        self.journal.append("follower starts")
        return defer.Deferred()  # follows until stopped

    def stop(self) -> None:
        self.journal.append("follower stops")


class JournalNotifier:
    enabled = True

    def __init__(self, journal: list):
        self.journal = journal

    def notify(self, **fields: str) -> None:
        self.journal.append("systemd " + " ".join(f"{key}={value}" for key, value in fields.items()))


def tree(taken=(), web_address=("127.0.0.1", 8080), any_free_web_port=False, follow=True):
    journal: list[str] = []
    reactor = Reactor(journal, taken)
    bridge = FakeBridge(journal)
    process = bridge_process(bridge, reactor, web_address=web_address, any_free_web_port=any_free_web_port,
                             follower=FakeFollower(journal) if follow else None,
                             notifier=JournalNotifier(journal), environ=WATCHDOG)
    return process, bridge, reactor, journal


def test_children_start_in_the_order_added_and_the_bridge_is_waited_for():
    process, bridge, reactor, journal = tree()
    process.start()
    assert journal == ["view listens on 8080", "systemd WATCHDOG=1", "bridge starts"]
    bridge.starting.callback(None)
    assert journal[3:] == ["follower starts", f"systemd READY=1 STATUS=running, connected to {URL}"]
    assert process.started.called and not reactor.hasStopped


def test_the_follower_and_ready_wait_until_the_bridge_runs():
    process, bridge, reactor, journal = tree()
    process.start()
    reactor.pump([2.0] * 5)  # the watchdog keeps going while the bridge connects
    assert "follower starts" not in journal
    assert not any("READY" in line for line in journal)
    assert journal.count("systemd WATCHDOG=1") == 6
    bridge.starting.callback(None)
    assert "follower starts" in journal
    assert any("READY=1" in line for line in journal)


def test_children_stop_in_reverse_each_once_the_one_after_it_has_stopped():
    process, bridge, reactor, journal = tree()
    process.start()
    bridge.starting.callback(None)
    del journal[:]
    stopped = process.stopService()
    assert journal == ["systemd STOPPING=1 STATUS=stopping", "follower stops", "view stops"]
    reactor.ports[0].stopped.callback(None)  # open pages got their end of stream: now the bridge
    assert journal[3:] == ["bridge stops"]
    watchdog = process.getServiceNamed("systemd watchdog").loop
    assert watchdog.running and not stopped.called  # pinging while the bridge drains
    bridge.stopping.callback(None)
    assert not watchdog.running and stopped.called


def test_connection_changes_set_the_systemd_status():
    process, bridge, reactor, journal = tree(web_address=None, follow=False)
    process.start()
    bridge.tell("connected")
    bridge.tell("disconnected")
    assert journal[-2:] == [f"systemd STATUS=connected to {URL}", "systemd STATUS=disconnected from NATS; reconnecting"]


@pytest.mark.parametrize("error, explained", [(DeviceUnavailable("driver memory is broken"), True),
                                              (RuntimeError("a bug"), False)])
def test_a_failed_bridge_start_stops_the_reactor_with_status_1(error, explained):
    process, bridge, reactor, journal = tree()
    with capturedLogs() as events:
        process.start()
        bridge.starting.errback(error)
    assert journal[-1] == "reactor stops"
    assert "follower starts" not in journal and not any("READY" in line for line in journal)
    assert exit_status(process) == 1
    errors = [event for event in events if event["log_level"].name in ("error", "critical")]
    assert len(errors) == 1
    if explained:  # one sentence, no traceback
        assert errors[0]["log_format"] == "{error}" and errors[0]["error"] == "driver memory is broken"
        assert "log_failure" not in errors[0]
    else:
        assert errors[0]["log_failure"].value is error


def test_a_stop_while_the_bridge_connects_is_graceful():
    process, bridge, reactor, journal = tree()
    process.start()
    process.stopService()
    reactor.ports[0].stopped.callback(None)
    bridge.starting.errback(ConnectionLost("closed while connecting"))
    bridge.stopping.callback(None)
    assert "reactor stops" not in journal and "follower starts" not in journal
    assert exit_status(process) == 0


def test_a_taken_web_port_ends_the_run_before_the_bridge_starts():
    process, bridge, reactor, journal = tree(taken={8080})
    with capturedLogs() as events:
        process.start()
    assert journal == ["reactor stops"]
    assert exit_status(process) == 1
    assert [event["error"] for event in events if "error" in event] == [
        "cannot serve the web view on 127.0.0.1:8080: [Errno 98] Address already in use"]


def test_the_demo_takes_a_free_web_port_when_its_own_is_taken():
    process, bridge, reactor, journal = tree(taken={8080}, any_free_web_port=True)
    process.start()
    assert journal[:3] == ["view listens on 0", "systemd WATCHDOG=1", "bridge starts"]
    assert process.getServiceNamed("web view").view.url == "http://127.0.0.1:8099/"


def test_a_bridge_that_gave_up_reconnecting_exits_unreachable():
    process, bridge, reactor, journal = tree()
    process.start()
    bridge.starting.callback(None)
    assert exit_status(process) == ExitStatus.OK
    bridge.gave_up = True
    assert exit_status(process) == ExitStatus.UNREACHABLE


def test_a_bridge_without_a_web_view_never_loads_twisted_web():
    """twisted.web is a tenth of an idle bridge's memory; `bridge run` loads it only for a web view."""
    code = ("import sys; import bridge.cli.run, bridge.runtime.process, bridge.runtime.bridge; "
            "print('twisted.web' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


# -- SIGHUP: the config is checked in a child process, applied on the reactor ----------------------

class Reloads:
    """A `load` that records each call and answers only when told; and the bridge it reloads."""

    def __init__(self):
        self.calls = []
        self.configs = []

    def load(self, path, overrides) -> defer.Deferred:
        reading = defer.Deferred()
        self.calls.append((path, overrides, reading))
        return reading

    def reload(self, config):
        self.configs.append(config)


def test_sighup_checks_the_config_off_the_reactor_and_applies_it_on_the_reactor():
    reloads = Reloads()
    reload = config_reloader("pi.yml", ["vars.a=1"], load=reloads.load)
    reload(reloads)
    assert [(path, overrides) for path, overrides, _ in reloads.calls] == [("pi.yml", ["vars.a=1"])]
    assert reloads.configs == []  # nothing checked while the reactor waited

    reload(reloads)  # a second SIGHUP while the first is reading: read again once it is done
    reload(reloads)
    assert len(reloads.calls) == 1
    reloads.calls[0][2].callback("first")
    assert reloads.configs == ["first"] and len(reloads.calls) == 2

    with capturedLogs() as events:
        reloads.calls[1][2].errback(ConfigError([ConfigIssue("pi.yml", 3, 5, "device.id", "bad id")]))
    assert reloads.configs == ["first"]  # rejected: logged, the running config kept
    assert [event["issue"] for event in events] == ["pi.yml:3:5: error: device.id: bad id"]
    reload(reloads)
    assert len(reloads.calls) == 3


def test_a_reload_whose_checker_failed_keeps_the_running_config_and_says_why_in_one_line():
    reloads = Reloads()
    reload = config_reloader("pi.yml", [], load=reloads.load)
    reload(reloads)
    with capturedLogs() as events:
        reloads.calls[0][2].errback(ConfigCheckFailed("the config checker was killed by SIGKILL without an answer"))
    assert reloads.configs == []
    assert [(event["log_level"].name, event["reason"], event.get("log_failure")) for event in events] == [
        ("error", "the config checker was killed by SIGKILL without an answer", None)]
    reload(reloads)
    assert len(reloads.calls) == 2  # the next SIGHUP reads again


def test_release_startup_garbage_freezes_start_up_and_raises_the_young_threshold():
    import gc

    from bridge.runtime.process import GEN0_THRESHOLD, release_startup_garbage

    before = gc.get_threshold()
    try:
        release_startup_garbage()
        assert gc.get_threshold() == (GEN0_THRESHOLD, *before[1:])
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
