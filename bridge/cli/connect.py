"""What the one-shot commands (`bridge send`, `fleet`, `deploy`) share: which servers to try, one
connection made with one attempt per server, in the order given, and the reactor run to the end."""

from __future__ import annotations

import os
import sys
from typing import Awaitable, Callable, Sequence

from twisted.internet import defer, task

from bridge.cli.exit import ExitStatus
from bridge.config.redact import redact_url
from bridge.nats.client import Client, parse_server_url
from bridge.nats.options import DEFAULT_URL, ClientOptions, Reconnect


def command_servers(command: str, servers: Sequence[str]) -> list[str] | None:
    """The `--server` values, else `$NATS_URL`, else the default URL; None (having said which
    one is unusable) when a URL cannot be parsed."""
    servers = list(servers) or [os.environ.get("NATS_URL", DEFAULT_URL)]
    for url in servers:
        try:
            parse_server_url(url)
        except ValueError as error:
            print(f"bridge {command}: {error}", file=sys.stderr)
            return None
    return servers


async def connect_once(command: str, servers: Sequence[str], reactor) -> Client | None:
    """A connected `Client`, or None (having said why, passwords masked) when no server took it."""
    options = ClientOptions(servers=tuple(servers), name=f"bridge-{command}", randomize=False,
                            reconnect=Reconnect(max_attempts=len(servers)))
    client = Client(options, reactor=reactor)
    try:
        await client.connect()
    except Exception as error:  # noqa: BLE001 - refused, unreachable, TLS, auth: all end the command
        shown = ", ".join(redact_url(url) for url in servers)
        print(f"bridge {command}: cannot connect to {shown}: {error}", file=sys.stderr)
        return None
    return client


def run_command(main: Callable[..., Awaitable[ExitStatus]]) -> ExitStatus:
    """Run `main(reactor)` (a Deferred or a coroutine) to its end on the reactor; the status it
    fires with, or FAILED when it failed unexpectedly (task.react has printed why)."""
    ended = []

    def start(reactor):
        return defer.ensureDeferred(main(reactor)).addCallback(ended.append)

    try:
        task.react(start)
    except SystemExit:  # react always ends with one; the status is main's
        pass
    return ended[0] if ended else ExitStatus.FAILED
