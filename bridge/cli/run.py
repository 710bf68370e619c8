"""`bridge run`: the long-running process, with the signals a systemd unit expects.

SIGINT/SIGTERM stop gracefully (drain, finish the current action, say offline, exit 0); SIGHUP
re-reads the file and applies the difference, keeping the old config when the new one is invalid.
The file is checked in a short-lived child process, at start and on SIGHUP alike
(bridge/config/isolated.py): the YAML parser and jsonschema never stay resident in the bridge.
Under a `Type=notify` unit systemd hears READY=1 once the bridge is connected and subscribed,
STATUS= on each connect and disconnect, WATCHDOG=1 from the reactor and STOPPING=1 (bridge/runtime/systemd.py).
What runs is the service tree of bridge/runtime/process.py, which `bridge demo` runs too.
"""

from __future__ import annotations

import argparse
import signal
import sys
from typing import Callable, Sequence

from bridge.cli.configs import config_error_status
from bridge.cli.exit import ExitStatus
from bridge.config.errors import ConfigError
from bridge.config.isolated import BadOverride, ConfigCheckFailed, check_config_at_start, load_config_isolated
from bridge.config.units import parse_listen
from bridge.nats.tls import forgo_stdlib_ssl, forgo_tls


def command(args: argparse.Namespace) -> int:
    forgo_stdlib_ssl()
    checking = check_config_at_start(args.file, args.overrides)
    # Twisted's core (~0.1 s of imports; no TLS library) loads while the child checks.
    import twisted.internet.defer  # noqa: F401
    try:
        config = checking.result()
    except BadOverride as error:
        print(f"bridge run: --set: {error}", file=sys.stderr)
        return ExitStatus.USAGE
    except ConfigError as error:
        print(error, file=sys.stderr)  # it says everything, file and line included
        return config_error_status(error)
    except ConfigCheckFailed as error:
        print(f"bridge run: {error}", file=sys.stderr)
        return ExitStatus.FAILED
    return run_bridge(config, args.file, args.overrides, log_format=args.log_format, web=args.web)


def run_bridge(
    config,
    config_path: str,
    overrides: Sequence[str] = (),
    log_format: str = "text",
    web: str | None = None,
) -> int:
    """Run `config` (checked from `config_path` with `overrides`, which SIGHUP checks again)."""
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
        forgo_tls()  # before the reactor import: ~15 MiB less for every plain nats:// bridge

    # Imported only now: the reactor and the runtime (Twisted's endpoints) load pyOpenSSL when it is allowed.
    from twisted.internet import reactor
    from twisted.logger import Logger

    from bridge.cli.logs import start_logging
    from bridge.runtime.bridge import Bridge
    from bridge.runtime.process import bridge_process, run_process

    start_logging(log_format)
    bridge = Bridge(config, reactor)
    if follower_for is None:
        reload = config_reloader(config_path, overrides)
        follower = None
    else:  # the stored config follows its key; SIGHUP has nothing to re-read
        follower = follower_for(bridge)
        log = Logger(namespace="bridge")

        def reload(bridge) -> None:
            log.info("SIGHUP ignored: this bridge follows {source}; restart it to re-read {path}",
                     source=bridge.config_origin.source, path=config_path)
    process = bridge_process(bridge, reactor, web_address=web_address, follower=follower)
    signal.signal(signal.SIGHUP, lambda *_: reactor.callFromThread(reload, bridge))
    run_process(process, reactor)
    return exit_status(process)


def fleet_start(bootstrap):
    """A `fleet:` bootstrap: the config to start with (the cached revision, if any) and what makes
    the bridge's `ConfigFollower` (it watches the key once the bridge runs)."""
    from bridge.fleet.follow import ConfigCache, ConfigFollower, boot_config
    from bridge.state import state_directory

    cache = ConfigCache(state_directory(), bootstrap.fleet.bucket, bootstrap.fleet.key)
    config, revision = boot_config(bootstrap, cache)
    return config, lambda bridge: ConfigFollower(bridge, bootstrap, cache, revision)


def exit_status(process) -> int:
    """The status of a `BridgeProcess` that has run."""
    if process.bridge.gave_up:
        return ExitStatus.UNREACHABLE
    return ExitStatus.FAILED if process.failed_to_start else ExitStatus.OK


def config_reloader(config_path: str, overrides: Sequence[str], load: Callable = load_config_isolated) -> Callable:
    """SIGHUP's `reload(bridge)`: the file is read and checked in a child process (`load` returns a
    Deferred; the reactor never waits for it), the result applied on the reactor. A SIGHUP that
    arrives while a reload is reading makes it read once more afterwards, so the last change is
    never missed."""
    from twisted.logger import Logger

    log = Logger(namespace="bridge")
    state = {"reading": False, "again": False}

    def reload(bridge) -> None:
        if state["reading"]:
            state["again"] = True
            return
        state["reading"] = True
        log.info("SIGHUP: reloading {path}", path=config_path)
        reading = load(config_path, overrides)
        reading.addCallbacks(bridge.reload, rejected)
        reading.addErrback(lambda failure: log.failure("reload failed, keeping the running config", failure))
        reading.addBoth(finished, bridge)

    def rejected(failure) -> None:
        failure.trap(ConfigError, ConfigCheckFailed)
        if failure.check(ConfigCheckFailed):
            log.error("reload failed, keeping the running config: {reason}", reason=str(failure.value))
            return
        for issue in failure.value.errors:
            log.error("reload rejected, keeping the running config: {issue}", issue=str(issue))

    def finished(_, bridge) -> None:
        state["reading"] = False
        if state["again"]:
            state["again"] = False
            reload(bridge)

    return reload
