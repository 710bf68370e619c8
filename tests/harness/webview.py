"""Driving a running LED web view from a test: the bridge, view and NATS client it runs with, and a
reader of its server-sent events."""

from __future__ import annotations

import json

from twisted.internet import defer, protocol
from twisted.web.client import Agent

from bridge.config.model import BridgeConfig
from bridge.runtime.bridge import Bridge
from bridge.web import start_web_view
from tests.harness.nats_client import connected
from tests.harness.reactor import running_reactor, within

WAIT = 20.0  # only bounds a broken test


class Running:
    """A bridge with its web view, and our NATS client to change its LEDs by request."""

    def __init__(self, bridge: Bridge, view, server, client):
        self.bridge = bridge
        self.view = view
        self.server = server
        self.client = client

    def url(self, path: str = "") -> str:
        return self.view.url + path

    async def send(self, subject: str, payload) -> dict:
        """Publish as a request and wait for the bridge's reply: the action has been applied."""
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        reply = await self.client.request(subject, body, timeout=WAIT)
        return json.loads(reply.data)

    async def set_pixel(self, x: int, y: int, colour) -> None:
        assert await self.send("web.led.pixel", {"x": x, "y": y, "color": colour}) == {"ok": True}


async def start_running(config: BridgeConfig, server, make_client, what: str = "bridge.start()", **view) -> Running:
    """A bridge for `config` started on the running reactor, its web view on a free port (`view`:
    start_web_view's host and options), and our client."""
    reactor = running_reactor()
    bridge = Bridge(config, reactor)
    await within(bridge.start(), 30.0, what)
    view = start_web_view(bridge, port=0, reactor=reactor, **view)
    client = make_client(server.url, randomize=False)
    await connected(client)
    return Running(bridge, view, server, client)


async def stop_running(running: Running) -> None:
    await running.view.stop()
    await running.bridge.stop()


class EventStream(protocol.Protocol):
    """A server-sent event reader: keeps every `state` event and lets a test await one."""

    def __init__(self):
        self.states: list[dict] = []
        self.comments: list[str] = []
        self.closed: defer.Deferred = defer.Deferred()
        self._buffer = ""
        self._waiters: list[tuple] = []

    def dataReceived(self, data: bytes) -> None:
        self._buffer += data.decode("utf-8")
        while "\n\n" in self._buffer:
            block, self._buffer = self._buffer.split("\n\n", 1)
            self._block(block)

    def _block(self, block: str) -> None:
        fields = {}
        for line in block.split("\n"):
            if line.startswith(":"):
                self.comments.append(line[1:].strip())
                continue
            name, _, value = line.partition(": ")
            fields[name] = value
        if fields.get("event") != "state":
            return
        state = json.loads(fields["data"])
        self.states.append(state)
        for waiter in list(self._waiters):
            predicate, deferred = waiter
            if predicate(state):
                self._waiters.remove(waiter)
                deferred.callback(state)

    def next_state(self, predicate, after: int = 0) -> defer.Deferred:
        """The first state from number `after` on, received or still to come, that satisfies `predicate`."""
        for state in self.states[after:]:
            if predicate(state):
                return defer.succeed(state)
        deferred: defer.Deferred = defer.Deferred()
        self._waiters.append((predicate, deferred))
        return deferred.addTimeout(WAIT, running_reactor())

    def connectionLost(self, reason=protocol.connectionDone) -> None:
        self.closed.callback(None)

    def disconnect(self) -> None:
        self.transport.stopProducing()


async def open_events(url: str) -> tuple[object, EventStream]:
    response = await Agent(running_reactor()).request(b"GET", url.encode())
    stream = EventStream()
    response.deliverBody(stream)
    return response, stream
