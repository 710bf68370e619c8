"""What the one-shot commands (`bridge send`, `fleet`, `deploy`) share: which servers to try, and
one connection made with one attempt per server, in the order given."""

from __future__ import annotations

import os
import sys
from typing import Sequence


def command_servers(command: str, servers: Sequence[str]) -> list[str] | None:
    """The `--server` values, else `$NATS_URL`, else the default URL; None (having said which
    one is unusable) when a URL cannot be parsed."""
    from bridge.nats.client import DEFAULT_URL, parse_server_url

    servers = list(servers) or [os.environ.get("NATS_URL", DEFAULT_URL)]
    for url in servers:
        try:
            parse_server_url(url)
        except ValueError as error:
            print(f"bridge {command}: {error}", file=sys.stderr)
            return None
    return servers


async def connect_once(command: str, servers: Sequence[str], reactor):
    """A connected `Client`, or None (having said why, passwords masked) when no server took it."""
    from bridge.config.redact import redact_url
    from bridge.nats import Client, ClientOptions, Reconnect

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


def run_command(main, outcome: dict, crashed_exit: int) -> int:
    """Run `main(reactor)` (returning a Deferred or a coroutine) to its end on the reactor; the
    exit status it left in `outcome["exit"]`, or `crashed_exit` if it failed unexpectedly."""
    from twisted.internet import defer, task

    try:
        task.react(lambda reactor: defer.ensureDeferred(main(reactor)))
    except SystemExit as done:
        if done.code not in (0, None):
            return int(done.code) if isinstance(done.code, int) else crashed_exit
    return outcome["exit"]
