"""One connection to one server: the NATS handshake, keepalive, and turning bytes into events.

A `Connection` knows nothing of pools, subscriptions or reconnecting. It reports to its owner
through the `ConnectionHandler` methods and fires `handshake` with itself after the first PONG.
`PoolEndpoint` is what Twisted's `ClientService` dials: each attempt takes the next server of the
pool and completes the handshake before the service hears of the connection, because
`ClientService` raises `NoTransition` when a connection drops during `prepareConnection` — which
is exactly what a refused NATS login does.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass
from typing import Callable, Protocol

from twisted.internet import defer, protocol
from twisted.internet.abstract import isIPAddress, isIPv6Address
from twisted.internet.endpoints import HostnameEndpoint, TCP4ClientEndpoint, TCP6ClientEndpoint
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from bridge.nats import protocol as wire
from bridge.nats.errors import ConnectionLostError, HandshakeError, NatsError, TlsError, classify_server_error
from bridge.nats.pool import Server, ServerPool
from bridge.nats.tls import tls_unavailable_reason

log = Logger()


class ConnectionHandler(Protocol):
    """What a connection tells its owner once the handshake is done."""

    def deliver(self, msg: wire.Msg) -> None: ...
    def delivered(self) -> None: ...  # the messages of one read are all delivered
    def server_info(self, conn: "Connection", options: dict) -> None: ...
    def server_error(self, conn: "Connection", message: str) -> None: ...
    def connection_lost(self, conn: "Connection", reason: Exception) -> None: ...


class Outbox(Protocol):
    """Where a ready connection sends its own frames (PING): the owner's outbound queue, so a PING
    goes out behind the publishes it is meant to confirm. `mark()` when the PING is queued says
    which publishes precede it; `confirm(mark)` on its PONG says they reached the server."""

    def control(self, frame: bytes) -> None: ...
    def mark(self) -> int: ...
    def confirm(self, mark: int) -> None: ...


@dataclass(frozen=True)
class ConnectionSettings:
    """Per client, the same for every connection it makes."""

    msg_class: type
    connect_options: Callable[[dict, Server, bool], dict]  # (INFO, server, tls in use) -> CONNECT fields
    tls_context: Callable[[str], object]  # host name -> IOpenSSLClientConnectionCreator
    tls_configured: bool  # the user gave TLS options: use TLS wherever the server offers it
    tls_first: bool  # TLS before INFO, for servers with `handshake_first`
    ping_interval: float
    max_outstanding_pings: int


class State(enum.Enum):
    AWAIT_TLS = "waiting for the TLS handshake"
    AWAIT_INFO = "waiting for INFO"
    AWAIT_PONG = "waiting for PONG"
    READY = "ready"


# Twisted's TCP transport reads up to `bufferSize` bytes per reactor turn and pauses its producer
# (our outbound queue) once it holds more than that unsent. 64 KiB by default: a bulk stream of
# large messages then costs a reactor turn and a parser call per 64 KiB, and most frames span two reads.
TRANSPORT_BUFFER = 256 * 1024


class Lifeline(protocol.Protocol):
    """What `ClientService` sees of a connection: made when the handshake succeeded, lost when it ends."""


class Connection(protocol.Protocol):
    """One TCP (maybe TLS) connection to one server; `handshake` fires with itself after the first PONG."""

    def __init__(self, server: Server, settings: ConnectionSettings, handler: ConnectionHandler, outbox: Outbox,
                 reactor):
        self.server = server
        self.info: dict = {}
        self.lifeline: Lifeline | None = None
        self.handshake: defer.Deferred = defer.Deferred(canceller=self._cancel_handshake)
        self.state = State.AWAIT_TLS if settings.tls_first else State.AWAIT_INFO
        self._settings = settings
        self._handler = handler
        self._outbox = outbox
        self._reactor = reactor
        self._parser = wire.Parser(msg_class=settings.msg_class)
        self._tls_started = False
        self._failure: Exception | None = None
        self._keepalive = Keepalive(self, outbox.confirm, settings.ping_interval, settings.max_outstanding_pings,
                                    reactor)
        self._lost = False

    # --- handshake --------------------------------------------------------------------------

    def connectionMade(self) -> None:
        if hasattr(self.transport, "bufferSize"):
            self.transport.bufferSize = TRANSPORT_BUFFER
        if self.state is State.AWAIT_TLS:
            if not self._start_tls():
                return
            self.state = State.AWAIT_INFO

    def dataReceived(self, data: bytes) -> None:
        try:
            events = self._parser.feed(data)
        except wire.ProtocolError as exc:
            error_type = NatsError if self.state is State.READY else HandshakeError
            self.fail(error_type(f"{self.server.url} sent bytes that are not NATS: {exc}"))
            return
        if self.state is State.READY:
            self._process(events)
        else:
            self._process_handshake(events)

    def _process_handshake(self, events: list) -> None:
        for index, event in enumerate(events):
            if self.handshake.called:
                return  # failed: ignore the rest
            if self.state is State.AWAIT_INFO:
                if not isinstance(event, wire.Info):
                    self.fail(HandshakeError(f"{self.server.url} did not start with INFO but {event!r}"))
                    return
                self._send_connect(event.options)
            elif isinstance(event, wire.Pong):
                self.state = State.READY
                self._keepalive.start()
                self.handshake.callback(self)
                self._process(events[index + 1 :])
                return
            elif isinstance(event, wire.Err):
                self.fail(classify_server_error(event.message, self.server.url))
            elif isinstance(event, wire.Info):
                self._update_info(event.options)
            elif isinstance(event, wire.Ping):
                self.transport.write(wire.PONG)

    def _send_connect(self, info: dict) -> None:
        self.info = {}
        self._update_info(info)
        offers_tls = bool(info.get("tls_required") or info.get("tls_available"))
        use_tls = self._tls_started or bool(
            info.get("tls_required") or self.server.tls or (self._settings.tls_configured and offers_tls))
        try:
            if use_tls and not self._tls_started:
                if not offers_tls:
                    raise TlsError(f"{self.server.url}: TLS was asked for but the server does not offer it")
                if not self._start_tls():
                    return
            connect = self._settings.connect_options(self.info, self.server, use_tls)
        except NatsError as exc:
            self.fail(exc)
            return
        self.transport.write(wire.encode_connect(connect) + wire.PING)
        self.state = State.AWAIT_PONG

    def _start_tls(self) -> bool:
        missing = tls_unavailable_reason()
        if missing:
            self.fail(TlsError(f"{self.server.url} requires TLS, but {missing}"))
            return False
        self.transport.startTLS(self._settings.tls_context(self.server.tls_name))
        self._tls_started = True
        return True

    def _update_info(self, options: dict) -> None:
        self.info.update(options)
        announced = options.get("max_control_line")
        if isinstance(announced, int) and announced > self._parser.max_control_line:
            self._parser.max_control_line = announced

    # --- after the handshake ----------------------------------------------------------------

    def _process(self, events: list) -> None:
        handler = self._handler
        deliver = handler.deliver
        msg_class = self._settings.msg_class
        for event in events:
            if type(event) is msg_class:
                deliver(event)
                continue
            handler.delivered()  # the messages before a PONG or INFO reach their callbacks first
            if self._lost or self._failure is not None:
                return  # a callback earlier in this batch closed the connection
            elif isinstance(event, wire.Ping):
                self.transport.write(wire.PONG)
            elif isinstance(event, wire.Pong):
                self._keepalive.pong()
            elif isinstance(event, wire.Info):
                self._update_info(event.options)
                handler.server_info(self, event.options)
            elif isinstance(event, wire.Err):
                handler.server_error(self, event.message)
        handler.delivered()

    def ping(self, waiter: defer.Deferred | None = None) -> None:
        """Send PING behind what is queued before it; `waiter` fires on its PONG."""
        self._keepalive.expect_pong(waiter, self._outbox.mark())
        self._outbox.control(wire.PING)

    def fail(self, error: Exception) -> None:
        """Give up on this connection with `error` as the reason reported."""
        if self._failure is None:
            self._failure = error
        if not self.handshake.called:
            self.handshake.errback(error)
        if self.transport is not None:
            self.transport.abortConnection()

    def timed_out(self, result, timeout):
        """`addTimeout` hook: name the step that hung."""
        if not isinstance(result, Failure):
            return result
        if self.transport is None:
            raise HandshakeError(f"{self.server.url}: TCP connect timed out after {timeout}s")
        raise HandshakeError(f"{self.server.url}: {self.state.value} for {timeout}s after connecting")

    def _cancel_handshake(self, _deferred) -> None:
        if self.transport is not None:
            self.transport.abortConnection()

    def connectionLost(self, reason: Failure = protocol.connectionDone) -> None:
        ready = self.state is State.READY
        self._lost = True
        lost = ConnectionLostError(f"connection to {self.server.url} lost before the server answered")
        self._keepalive.stop(lost)
        if not self.handshake.called:
            self.handshake.errback(self._describe_loss(reason))
        if ready:
            self._handler.connection_lost(self, self._failure or reason.value)
        if self.lifeline is not None:
            self.lifeline.connectionLost(reason)

    def _describe_loss(self, reason: Failure) -> Exception:
        if self._failure is not None:
            return self._failure
        url = self.server.url
        if self._tls_started:
            # The TLS libraries load only where TLS is in use (see tls.py).
            from OpenSSL import SSL
            from service_identity import VerificationError

            if reason.check(SSL.Error):
                detail = "; ".join(str(item[2]) for item in reason.value.args[0] if len(item) > 2) or str(reason.value)
                return TlsError(f"TLS with {url} failed: {detail}")
            if reason.check(VerificationError):
                return TlsError(f"TLS with {url} failed: certificate does not match {self.server.tls_name!r}: {reason.value}")
        return HandshakeError(f"{url} closed the connection during the handshake: {reason.getErrorMessage()}")


class Keepalive:
    """PING every `interval`; a connection that leaves `max_outstanding` unanswered is dead.

    Also the queue of PONG waiters: the server answers PINGs in order, so each PONG settles the
    oldest PING, whether a keepalive (waiter None) or a `flush()`.
    """

    def __init__(self, conn: Connection, confirm: Callable[[int], None], interval: float, max_outstanding: int,
                 reactor):
        self._conn = conn
        self._confirm = confirm
        self._interval = interval
        self._max_outstanding = max_outstanding
        self._reactor = reactor
        self._waiters: deque[tuple[defer.Deferred | None, int]] = deque()
        self._outstanding = 0
        self._loop: LoopingCall | None = None
        self._deadline = None  # IDelayedCall: the deadline of the last allowed PING

    def start(self) -> None:
        self._loop = LoopingCall(self._tick)
        self._loop.clock = self._reactor
        self._loop.start(self._interval, now=False)

    def expect_pong(self, waiter: defer.Deferred | None, mark: int) -> None:
        self._waiters.append((waiter, mark))

    def pong(self) -> None:
        self._outstanding = 0
        if self._waiters:
            waiter, mark = self._waiters.popleft()
            self._confirm(mark)
            if waiter is not None and not waiter.called:
                waiter.callback(None)

    def stop(self, error: Exception) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None
        if self._deadline is not None and self._deadline.active():
            self._deadline.cancel()
        self._deadline = None
        waiters, self._waiters = self._waiters, deque()
        for waiter, _mark in waiters:
            if waiter is not None and not waiter.called:
                waiter.errback(error)

    def _tick(self) -> None:
        if self._outstanding >= self._max_outstanding:
            self._give_up()
            return
        self._outstanding += 1
        self._conn.ping()
        if self._outstanding == self._max_outstanding:
            # The last allowed PING gets half an interval, not a whole one: with the defaults a
            # frozen server is left within 25 s of its last answer, so failover completes within 30.
            self._deadline = self._reactor.callLater(self._interval / 2, self._check_deadline)

    def _check_deadline(self) -> None:
        self._deadline = None
        if self._outstanding >= self._max_outstanding:
            self._give_up()

    def _give_up(self) -> None:
        url = self._conn.server.url
        log.warn("{url}: {n} PINGs unanswered, treating the server as gone", url=url, n=self._outstanding)
        self._conn.fail(ConnectionLostError(f"{url}: stale connection ({self._outstanding} PINGs unanswered)"))


@implementer(IStreamClientEndpoint)
class PoolEndpoint:
    """Each `connect()` dials the next server of the pool and completes the NATS handshake on it.

    `make_connection(server)` builds the protocol; `established(conn)` hears of a finished
    handshake before `ClientService` does; `failed(server, failure)` of every failed attempt.
    """

    def __init__(self, pool: ServerPool, make_connection: Callable[[Server], Connection],
                 established: Callable[[Connection], None], failed: Callable[[Server, Failure], Failure],
                 connect_timeout: float, reactor):
        self._pool = pool
        self._make_connection = make_connection
        self._established = established
        self._failed = failed
        self._connect_timeout = connect_timeout
        self._reactor = reactor

    def connect(self, lifeline_factory):
        server = self._pool.next()
        connection = self._make_connection(server)
        log.debug("connecting to {url}", url=server.url)
        factory = protocol.Factory.forProtocol(lambda: connection)
        factory.noisy = False  # no "Starting factory" line per attempt on a Pi that retries forever
        dialing = self._tcp_endpoint(server).connect(factory)
        dialing.addCallback(lambda _: connection.handshake)
        dialing.addTimeout(self._connect_timeout, self._reactor, onTimeoutCancel=connection.timed_out)

        def established(_):
            lifeline = lifeline_factory.buildProtocol(connection.transport.getPeer())
            lifeline.makeConnection(connection.transport)
            connection.lifeline = lifeline
            self._established(connection)
            return lifeline

        dialing.addCallbacks(established, lambda failure: self._failed(server, failure))
        return dialing

    def _tcp_endpoint(self, server: Server):
        timeout = self._connect_timeout
        if isIPAddress(server.host):
            return TCP4ClientEndpoint(self._reactor, server.host, server.port, timeout=timeout)
        if isIPv6Address(server.host):
            return TCP6ClientEndpoint(self._reactor, server.host, server.port, timeout=timeout)
        return HostnameEndpoint(self._reactor, server.host, server.port, timeout=timeout)

    def __repr__(self) -> str:
        return f"<NATS server pool {self._pool.urls}>"
