"""The running process as a tree of Twisted services: what `bridge run` and `bridge demo` run.

`BridgeProcess` starts its children in the order they are added, each once the one before it has
started (a child whose `startService` returns a Deferred is waited for), and stops them in reverse,
each once the one after it has stopped. `bridge_process` adds them in this order:

    SystemdWatchdog  WATCHDOG=1 from the first reactor turn (connecting may take a while) to the last
    BridgeService    Bridge.start (device, connect, subscribe) / Bridge.stop (drain, say offline, close)
    WebViewService   binds its port before anything starts (privilegedStartService), so a taken port
                     ends the run at once; stops before the bridge: open pages get a clean end of stream
    FollowerService  a `fleet:` bridge's ConfigFollower, once the bridge runs
    SystemdStatus    READY=1 once the bridge is connected and subscribed; STOPPING=1 first on the way down

A child that cannot start stops the reactor (`failed_to_start`); a stop while the bridge still
connects is a graceful stop all the same.
"""

from __future__ import annotations

import ctypes
import gc
import os
from typing import TYPE_CHECKING, Mapping

from twisted.application.service import MultiService, Service
from twisted.internet import defer
from twisted.internet.error import CannotListenError
from twisted.logger import Logger
from twisted.python.failure import Failure

from bridge.devices import DeviceUnavailable
from bridge.homeassistant.discovery import configuration_url
from bridge.nats import AuthConfigError, TlsError
from bridge.runtime.bridge import NoServerReached
from bridge.runtime.srv import DuplicateDeviceError
from bridge.runtime.systemd import Notifier, start_watchdog

if TYPE_CHECKING:
    from bridge.web import WebView

log = Logger(namespace="bridge")


class WebViewUnavailable(Exception):
    """The web view's port cannot be served; the message says where and why."""


# Start failures that one sentence explains; any other is logged with its traceback.
EXPLAINED = (DeviceUnavailable, AuthConfigError, TlsError, DuplicateDeviceError, NoServerReached, WebViewUnavailable)


# The young generation's threshold once start-up is frozen (the default is 700). Under a flood each
# read's messages live until their batch is queued and are freed by reference counting, so young
# collections find nothing to free; measured under device_throughput load (medians of 5 and 7
# rounds on a shared 2-core box), the bridge used 5.2-5.4 CPU us/msg at 10000 against 5.6-7.2 at 700.
GEN0_THRESHOLD = 10_000


def release_startup_garbage() -> None:
    """Hand the heap that config validation churned through back to the OS (glibc only), move what
    start-up built (modules, schema, config) out of the collector's sight for good, and collect
    the young generation less often (GEN0_THRESHOLD)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GEN0_THRESHOLD, *gc.get_threshold()[1:])
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class BridgeProcess(MultiService):
    """The service tree of one running bridge; `start()` once the reactor runs, `stopService()` before it stops."""

    def __init__(self, bridge, reactor):
        super().__init__()
        self.bridge = bridge
        self.reactor = reactor
        self.started: defer.Deferred | None = None  # fires once every child has started
        self.failed_to_start = False
        self._stop_requested = False

    def start(self) -> defer.Deferred:
        """What twistd does with an application: `privilegedStartService` (bind), then `startService`.
        A child that cannot start stops the reactor."""
        self.started = defer.maybeDeferred(self.privilegedStartService)
        self.started.addCallback(lambda _: self.startService())
        self.started.addErrback(self._failed_to_start)
        return self.started

    def startService(self) -> defer.Deferred:
        Service.startService(self)
        return self._start_children()

    @defer.inlineCallbacks
    def _start_children(self):
        for child in self:
            yield child.startService()
            if self._stop_requested:
                return
        release_startup_garbage()

    def _failed_to_start(self, failure: Failure) -> None:
        if self._stop_requested:
            return  # stopped while still connecting: a graceful stop all the same
        if failure.check(*EXPLAINED):
            log.error("{error}", error=str(failure.value))  # one sentence says it all
        else:
            log.failure("bridge failed to start", failure)
        self.failed_to_start = True
        self.reactor.stop()

    def stopService(self) -> defer.Deferred:
        """Stop every child, started or not (each stop is safe before its start), in reverse order."""
        Service.stopService(self)
        self._stop_requested = True
        return self._stop_children()

    @defer.inlineCallbacks
    def _stop_children(self):
        for child in reversed(list(self)):
            try:
                yield child.stopService()
            except Exception:
                log.failure("stopping the {name} failed", name=child.name)


def run_process(process: BridgeProcess, reactor) -> None:
    """Run the reactor with the tree on it until it stops."""
    reactor.callWhenRunning(process.start)
    reactor.addSystemEventTrigger("before", "shutdown", process.stopService)
    reactor.run()


def bridge_process(
    bridge,
    reactor,
    *,
    web_address: tuple[str, int] | None = None,
    any_free_web_port: bool = False,
    follower=None,
    notifier: Notifier | None = None,
    environ: Mapping[str, str] = os.environ,
) -> BridgeProcess:
    """The tree for `bridge`: the order the children are added here is their start order.

    `any_free_web_port`: when the web port is taken, take a free one instead of failing (the demo).
    `follower`: a `ConfigFollower` for the bridge, when its config has a `fleet:` block.
    """
    if notifier is None:
        notifier = Notifier.from_environment(environ)
    process = BridgeProcess(bridge, reactor)
    SystemdWatchdog(notifier, reactor, environ).setServiceParent(process)
    BridgeService(bridge).setServiceParent(process)
    if web_address is not None:
        WebViewService(bridge, web_address, any_free_web_port, reactor).setServiceParent(process)
    if follower is not None:
        FollowerService(follower).setServiceParent(process)
    SystemdStatus(notifier, bridge).setServiceParent(process)
    return process


class SystemdWatchdog(Service):
    name = "systemd watchdog"

    def __init__(self, notifier: Notifier, reactor, environ: Mapping[str, str]):
        self.notifier = notifier
        self.reactor = reactor
        self.environ = environ
        self.loop = None

    def startService(self) -> None:
        super().startService()
        self.loop = start_watchdog(self.notifier, self.reactor, self.environ)

    def stopService(self) -> None:
        super().stopService()
        if self.loop is not None and self.loop.running:
            self.loop.stop()


class BridgeService(Service):
    name = "bridge"

    def __init__(self, bridge):
        self.bridge = bridge

    def startService(self) -> defer.Deferred:
        super().startService()
        return self.bridge.start()

    def stopService(self) -> defer.Deferred:
        super().stopService()
        return self.bridge.stop()


class WebViewService(Service):
    """The LED web view; it shows "connecting" while the bridge waits for a server."""

    name = "web view"

    def __init__(self, bridge, address: tuple[str, int], any_free_port: bool, reactor):
        self.bridge = bridge
        self.address = address
        self.any_free_port = any_free_port
        self.reactor = reactor
        self.view: WebView | None = None

    def privilegedStartService(self) -> None:
        super().privilegedStartService()
        host, port = self.address
        try:
            self.view = self._listen(host, port)
        except CannotListenError as error:
            raise WebViewUnavailable(
                f"cannot serve the web view on {host}:{port}: {error.socketError}") from None
        address = self.view.port.getHost()
        self.bridge.web_url = configuration_url(address.host, address.port)

    def _listen(self, host: str, port: int) -> WebView:
        # twisted.web is loaded only here: a bridge without a web view saves its ~3.5 MiB.
        from bridge.web import WebOptions, start_web_view

        web = self.bridge.config.web
        options = WebOptions() if web is None else WebOptions(
            max_streams=web.max_clients, stall_timeout=web.stall_timeout, hosts=web.hosts)
        try:
            return start_web_view(self.bridge, host, port, reactor=self.reactor, options=options)
        except CannotListenError:
            if not self.any_free_port or port == 0:
                raise
            log.warn("port {port} is taken; the web view takes a free one", port=port)
            return start_web_view(self.bridge, host, 0, reactor=self.reactor, options=options)

    def stopService(self) -> defer.Deferred | None:
        super().stopService()
        if self.view is not None:
            return self.view.stop()
        return None


class FollowerService(Service):
    name = "config follower"

    def __init__(self, follower):
        self.follower = follower

    def startService(self) -> None:
        super().startService()
        self.follower.start()  # follows for the life of the process: the next child need not wait

    def stopService(self) -> None:
        super().stopService()
        self.follower.stop()


class SystemdStatus(Service):
    """What a `Type=notify` unit hears: STATUS= on each connect and disconnect, READY=1 when this
    service starts (after the bridge runs), STOPPING=1 when it stops (first)."""

    name = "systemd status"

    def __init__(self, notifier: Notifier, bridge):
        self.notifier = notifier
        self.bridge = bridge

    def privilegedStartService(self) -> None:
        super().privilegedStartService()
        self.bridge.listeners.append(self._tell_connection)  # before the bridge starts: its first connect counts

    def _tell_connection(self, event: str) -> None:
        if event == "connected":
            self.notifier.notify(STATUS=f"connected to {self.bridge.client.connected_url}")
        else:
            self.notifier.notify(STATUS="disconnected from NATS; reconnecting")

    def startService(self) -> None:
        super().startService()
        self.notifier.notify(READY="1", STATUS=f"running, connected to {self.bridge.client.connected_url}")

    def stopService(self) -> None:
        super().stopService()
        self.notifier.notify(STOPPING="1", STATUS="stopping")
