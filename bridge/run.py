"""`bridge run`: the long-running process, with the signals a systemd unit expects.

SIGINT/SIGTERM stop gracefully (drain, finish the current action, say offline, exit 0); SIGHUP
re-reads the file and applies the difference, keeping the old config when the new one is invalid.
"""

from __future__ import annotations

import ctypes
import gc
import signal
import sys
from typing import Sequence

from twisted.logger import Logger

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


def run_bridge(
    config_path: str,
    overrides: Sequence[str] = (),
    log_format: str = "text",
    web: str | None = None,
) -> int:
    from bridge.config import ConfigError, load_config

    config = load_config(config_path, overrides)  # a ConfigError here is the CLI's to report

    from bridge.config.units import parse_listen

    web_address = None
    if web:
        try:
            web_address = parse_listen(web)
        except ValueError as error:
            print(f"bridge run: --web: {error}", file=sys.stderr)
            return 2
    elif config.web is not None:
        web_address = (config.web.host, config.web.port)

    if config.nats.tls is None and not any(url.lower().startswith("tls://") for url in config.nats.servers):
        from bridge.nats.tls import forgo_tls

        forgo_tls()  # before the reactor import: ~15 MiB less for every plain nats:// bridge

    from twisted.internet import reactor

    from bridge.devices import DeviceUnavailable
    from bridge.logs import start_logging
    from bridge.runtime import Bridge

    start_logging(log_format)
    bridge = Bridge(config, reactor)
    outcome = {"exit": 0}

    def begin() -> None:
        # The web view comes first: it shows "connecting" while the bridge waits for a server,
        # and a port that is taken ends the run at once rather than after the connect.
        if web_address is not None:
            from twisted.internet.error import CannotListenError

            from bridge.web import start_web_view

            try:
                view = start_web_view(bridge, *web_address, reactor=reactor)
            except CannotListenError as error:
                log.error("cannot serve the web view on {host}:{port}: {error}", host=web_address[0],
                          port=web_address[1], error=error.socketError)
                outcome["exit"] = 1
                reactor.stop()
                return
            # Runs before the bridge's own trigger: open pages get a clean end of stream first.
            reactor.addSystemEventTrigger("before", "shutdown", view.stop)
        bridge.start().addCallbacks(lambda _: release_startup_garbage(), failed)

    def failed(failure):
        if bridge.stopping:
            return  # stopped while still connecting: a graceful stop all the same
        if failure.check(DeviceUnavailable):
            log.error("{error}", error=str(failure.value))
        else:
            log.failure("bridge failed to start", failure)
        outcome["exit"] = 1
        reactor.stop()

    def reload() -> None:
        log.info("SIGHUP: reloading {path}", path=config_path)
        try:
            new_config = load_config(config_path, overrides)
        except ConfigError as error:
            for issue in error.errors:
                log.error("reload rejected, keeping the running config: {issue}", issue=str(issue))
            return
        bridge.reload(new_config)

    reactor.callWhenRunning(begin)
    reactor.addSystemEventTrigger("before", "shutdown", bridge.stop)
    signal.signal(signal.SIGHUP, lambda *_: reactor.callFromThread(reload))
    reactor.run()
    return outcome["exit"]
