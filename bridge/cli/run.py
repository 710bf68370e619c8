"""`bridge run`: the long-running process, with the signals a systemd unit expects.

SIGINT/SIGTERM stop gracefully (drain, finish the current action, say offline, exit 0); SIGHUP
re-reads the file and applies the difference, keeping the old config when the new one is invalid.
Under a `Type=notify` unit systemd hears READY=1 once the bridge is connected and subscribed,
STATUS= on each connect and disconnect, WATCHDOG=1 from the reactor and STOPPING=1 (bridge/runtime/systemd.py).
`serve()` is shared with `bridge demo`.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import signal
import sys
from typing import Callable, Sequence

from twisted.logger import Logger

from bridge.cli.configs import with_config
from bridge.cli.exit import ExitStatus

log = Logger(namespace="bridge")


def release_startup_garbage() -> None:
    """Hand the heap that config validation churned through back to the OS (glibc only), and
    move what start-up built (modules, schema, config) out of the collector's sight for good."""
    gc.collect()
    gc.freeze()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def command(args: argparse.Namespace) -> int:
    return with_config("run", args.overrides,
                       lambda: run_bridge(args.file, args.overrides, log_format=args.log_format, web=args.web))


def run_bridge(
    config_path: str,
    overrides: Sequence[str] = (),
    log_format: str = "text",
    web: str | None = None,
) -> int:
    from bridge.config import load_config
    from bridge.config.units import parse_listen

    config = load_config(config_path, overrides)  # a ConfigError here is the CLI's to report
    follower_for = None
    if config.fleet is not None:
        config, follower_for = fleet_start(config)

    web_address = None
    if web:
        try:
            web_address = parse_listen(web)
        except ValueError as error:
            print(f"bridge run: --web: {error}", file=sys.stderr)
            return ExitStatus.USAGE
    elif config.web is not None:
        web_address = (config.web.host, config.web.port)

    if config.nats.tls is None and not any(url.lower().startswith("tls://") for url in config.nats.servers):
        from bridge.nats.tls import forgo_tls

        forgo_tls()  # before the reactor import: ~15 MiB less for every plain nats:// bridge

    from twisted.internet import reactor

    from bridge.cli.logs import start_logging

    start_logging(log_format)
    if follower_for is not None:  # the stored config follows its key; SIGHUP has nothing to re-read
        return serve(config, reactor, web_address=web_address, on_created=follower_for,
                     on_running=lambda bridge, _view: bridge.config_origin.start(),
                     reload=lambda bridge: log.info("SIGHUP ignored: this bridge follows {source}; restart it "
                                                    "to re-read {path}", source=bridge.config_origin.source,
                                                    path=config_path))
    return serve(config, reactor, web_address=web_address, reload=config_reloader(config_path, overrides))


def fleet_start(bootstrap):
    """A `fleet:` bootstrap: the config to start with (the cached revision, if any) and what makes
    the bridge's `ConfigFollower` (it watches the key once the bridge runs)."""
    from bridge.fleet.follow import ConfigCache, ConfigFollower, boot_config, state_directory

    cache = ConfigCache(state_directory(), bootstrap.fleet.bucket, bootstrap.fleet.key)
    config, revision = boot_config(bootstrap, cache)
    return config, lambda bridge: ConfigFollower(bridge, bootstrap, cache, revision)


def config_reloader(config_path: str, overrides: Sequence[str], defer_to_thread: Callable | None = None) -> Callable:
    """SIGHUP's `reload(bridge)`: the file is read and checked on a thread (reading may be slow and
    `${file:...}` reads other files), the result applied on the reactor. A SIGHUP that arrives while
    a reload is reading makes it read once more afterwards, so the last change is never missed."""
    from bridge.config import ConfigError, load_config

    if defer_to_thread is None:
        from twisted.internet.threads import deferToThread as defer_to_thread
    state = {"reading": False, "again": False}

    def reload(bridge) -> None:
        if state["reading"]:
            state["again"] = True
            return
        state["reading"] = True
        log.info("SIGHUP: reloading {path}", path=config_path)
        reading = defer_to_thread(load_config, config_path, overrides)
        reading.addCallbacks(bridge.reload, rejected)
        reading.addErrback(lambda failure: log.failure("reload failed, keeping the running config", failure))
        reading.addBoth(finished, bridge)

    def rejected(failure) -> None:
        failure.trap(ConfigError)
        for issue in failure.value.errors:
            log.error("reload rejected, keeping the running config: {issue}", issue=str(issue))

    def finished(_, bridge) -> None:
        state["reading"] = False
        if state["again"]:
            state["again"] = False
            reload(bridge)

    return reload


def serve(
    config,
    reactor,
    *,
    web_address: tuple[str, int] | None = None,
    any_free_web_port: bool = False,
    reload: Callable | None = None,
    on_running: Callable | None = None,
    on_created: Callable | None = None,
) -> int:
    """Run a bridge (and its web view) until the reactor stops; the exit status.

    `any_free_web_port`: when the web port is taken, take a free one instead of failing (the demo).
    `reload(bridge)` runs on SIGHUP; `on_running(bridge, view)` once the bridge is connected;
    `on_created(bridge)` right after the bridge is built.
    """
    from twisted.internet import defer
    from twisted.internet.error import CannotListenError

    from bridge.devices import DeviceUnavailable
    from bridge.nats import AuthConfigError, TlsError
    from bridge.runtime.bridge import Bridge
    from bridge.runtime.srv import DuplicateDeviceError
    from bridge.runtime.systemd import Notifier, start_watchdog

    bridge = Bridge(config, reactor)
    if on_created is not None:
        on_created(bridge)
    state = {"exit": ExitStatus.OK, "view": None}
    systemd = Notifier.from_environment()

    def tell_systemd(event: str) -> None:
        if event == "connected":
            systemd.notify(STATUS=f"connected to {bridge.client.connected_url}")
        else:
            systemd.notify(STATUS="disconnected from NATS; reconnecting")

    bridge.listeners.append(tell_systemd)

    def begin() -> None:
        # The web view comes first: it shows "connecting" while the bridge waits for a server,
        # and a port that is taken ends the run at once rather than after the connect.
        if web_address is not None:
            try:
                state["view"] = start_view(bridge, web_address, any_free_web_port, reactor)
            except CannotListenError as error:
                log.error("cannot serve the web view on {host}:{port}: {error}", host=web_address[0],
                          port=web_address[1], error=error.socketError)
                state["exit"] = ExitStatus.FAILED
                reactor.stop()
                return
        start_watchdog(systemd, reactor)  # from the first reactor turn: connecting may take a while
        bridge.start().addCallbacks(running, failed)

    def running(_) -> None:
        systemd.notify(READY="1", STATUS=f"running, connected to {bridge.client.connected_url}")
        release_startup_garbage()
        if on_running is not None:
            on_running(bridge, state["view"])

    def failed(failure) -> None:
        if bridge.stopping:
            return  # stopped while still connecting: a graceful stop all the same
        if failure.check(DeviceUnavailable, AuthConfigError, TlsError, DuplicateDeviceError):
            log.error("{error}", error=str(failure.value))  # one sentence says it all
        else:
            log.failure("bridge failed to start", failure)
        state["exit"] = ExitStatus.FAILED
        reactor.stop()

    @defer.inlineCallbacks
    def shut_down():
        systemd.notify(STOPPING="1", STATUS="stopping")
        if state["view"] is not None:
            yield state["view"].stop()  # open pages get a clean end of stream first
        yield bridge.stop()

    reactor.callWhenRunning(begin)
    reactor.addSystemEventTrigger("before", "shutdown", shut_down)
    if reload is not None:
        signal.signal(signal.SIGHUP, lambda *_: reactor.callFromThread(reload, bridge))
    reactor.run()
    return ExitStatus.UNREACHABLE if bridge.gave_up else state["exit"]


def start_view(bridge, address: tuple[str, int], any_free_port: bool, reactor):
    from twisted.internet.error import CannotListenError

    from bridge.web import start_web_view
    from bridge.web.options import WebOptions

    host, port = address
    web = bridge.config.web
    options = WebOptions() if web is None else WebOptions(
        max_streams=web.max_clients, stall_timeout=web.stall_timeout, hosts=web.hosts)
    try:
        return start_web_view(bridge, host, port, reactor=reactor, options=options)
    except CannotListenError:
        if not any_free_port or port == 0:
            raise
        log.warn("port {port} is taken; the web view takes a free one", port=port)
        return start_web_view(bridge, host, 0, reactor=reactor, options=options)
