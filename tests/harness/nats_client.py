"""Awaiting what our NATS client (`bridge.nats.Client`) does on the running reactor: connecting,
failing to connect, its next event, the messages a subscription received."""

from __future__ import annotations

from twisted.internet import defer

from bridge.nats import Client
from tests.harness.reactor import TimedOut, running_reactor, within


class ConnectTimeout(TimedOut):
    """`connect()` neither succeeded nor failed in time: a handshake hangs."""


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
    return fired.addTimeout(timeout, running_reactor())


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
        return waiter.addTimeout(timeout, running_reactor())
