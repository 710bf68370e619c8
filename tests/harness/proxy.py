"""A TCP relay in front of a real nats-server, to see and shape what crosses the wire between our
client and the server."""

from __future__ import annotations

import json

from twisted.internet import defer, protocol
from twisted.internet.endpoints import TCP4ClientEndpoint

from tests.harness.reactor import running_reactor


class RecordingProxy:
    """A TCP relay in front of a real nats-server, to see and shape what crosses the wire.

    `sent` holds every byte clients sent; `transcript` both directions in order, as
    (from_client, bytes); `hold()` keeps the server's bytes after its first INFO until
    `release()`; `info_extra` is merged into every INFO the server sends.
    """

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.sent = bytearray()
        self.transcript: list[tuple[bool, bytes]] = []
        self.info_extra: dict = {}
        self.holding = False
        self._held: list[tuple[protocol.Protocol, bytes]] = []
        self._port = None
        self._sides: list[protocol.Protocol] = []

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self._port.getHost().port}"

    def start(self) -> "RecordingProxy":
        self._port = running_reactor().listenTCP(0, protocol.Factory.forProtocol(lambda: _ClientSide(self)), interface="127.0.0.1")
        return self

    def hold(self) -> None:
        self.holding = True

    def release(self) -> None:
        self.holding = False
        held, self._held = self._held, []
        for side, data in held:
            self.transcript.append((False, data))
            side.transport.write(data)

    def stop(self) -> defer.Deferred:
        for side in self._sides:
            if side.transport is not None:
                side.transport.abortConnection()
        return defer.maybeDeferred(self._port.stopListening)

    def _to_client(self, side: protocol.Protocol, data: bytes, after_info: bool) -> None:
        if self.info_extra and data.startswith(b"INFO "):
            line, _, rest = data.partition(b"\r\n")
            options = json.loads(line[5:])
            options.update(self.info_extra)
            data = b"INFO " + json.dumps(options).encode() + b"\r\n" + rest
        if self.holding and after_info:
            self._held.append((side, data))
        else:
            self.transcript.append((False, data))
            side.transport.write(data)


class _ClientSide(protocol.Protocol):
    def __init__(self, proxy: RecordingProxy):
        self.proxy = proxy
        self.upstream: _ServerSide | None = None

    def connectionMade(self):
        self.proxy._sides.append(self)
        self.transport.pauseProducing()
        endpoint = TCP4ClientEndpoint(running_reactor(), "127.0.0.1", self.proxy.target_port)
        endpoint.connect(protocol.Factory.forProtocol(lambda: _ServerSide(self))).addCallbacks(
            self._connected, lambda _: self.transport.abortConnection()
        )

    def _connected(self, upstream):
        self.upstream = upstream
        self.proxy._sides.append(upstream)
        self.transport.resumeProducing()

    def dataReceived(self, data):
        self.proxy.sent += data
        self.proxy.transcript.append((True, data))
        self.upstream.transport.write(data)

    def connectionLost(self, reason=protocol.connectionDone):
        if self.upstream is not None:
            self.upstream.transport.loseConnection()


class _ServerSide(protocol.Protocol):
    def __init__(self, downstream: _ClientSide):
        self.downstream = downstream
        self.saw_info = False

    def dataReceived(self, data):
        self.downstream.proxy._to_client(self.downstream, data, self.saw_info)
        self.saw_info = True

    def connectionLost(self, reason=protocol.connectionDone):
        self.downstream.transport.loseConnection()
