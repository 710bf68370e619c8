"""A Twisted NATS client with a Deferred API, on top of the sans-io wire layer in `protocol`.

Connection management is Twisted's `ClientService`: it owns the retry loop and the stop logic.
The NATS handshake (INFO → optional TLS → CONNECT → PING → PONG) runs inside our endpoint, not in
`prepareConnection`: `ClientService` raises `NoTransition` when a connection drops while
`prepareConnection` is pending, which is exactly what a refused NATS login does. So the service
only ever hears of connections that completed the handshake, through a `_Lifeline` protocol.
"""

from __future__ import annotations

import inspect
import random
import secrets
from collections import deque
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping
from urllib.parse import unquote, urlsplit

from twisted.application.internet import ClientService
from twisted.internet import defer, protocol
from twisted.internet.abstract import isIPAddress, isIPv6Address
from twisted.internet.endpoints import HostnameEndpoint, TCP4ClientEndpoint, TCP6ClientEndpoint
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from bridge import __version__
from bridge.nats import protocol as wire
from bridge.nats.auth import Credentials
from bridge.nats.errors import (
    AuthConfigError,
    AuthorizationError,
    ConnectionClosedError,
    ConnectionLostError,
    HandshakeError,
    InvalidSubjectError,
    MaxPayloadError,
    NatsError,
    NatsTimeoutError,
    NoRespondersError,
    OutboundBufferFullError,
    PermissionViolationError,
    ServerError,
    TlsError,
)
from bridge.nats.subjects import validate_subject
from bridge.nats.tls import TlsOptions, client_tls_options, tls_unavailable_reason

log = Logger()

DEFAULT_URL = "nats://127.0.0.1:4222"
DEFAULT_PORT = 4222
DEFAULT_MAX_PAYLOAD = 1024 * 1024
EVENTS = ("connected", "reconnected", "disconnected", "error", "lame_duck", "closed", "discovered_servers")

# -ERR texts, lower-cased (capitalisation varies between server versions).
_KEEPS_CONNECTION = ("invalid subject", "invalid publish subject")
_AUTH_FAILURES = (
    "authorization violation",
    "authentication timeout",
    "user authentication expired",
    "user authentication revoked",
    "account authentication expired",
)
_SUBJECT_CACHE_LIMIT = 4096
# Giving a frozen server this long to take our last bytes before close() cuts the socket.
_CLOSE_GRACE = 2.0


def backoff_delay(failed_in_a_row: int, pool_size: int, *, initial: float, maximum: float, jitter: float,
                  rng: random.Random) -> float:
    """Seconds to wait before the next attempt: none while some server of the pool is untried
    (a lost connection counts as one try of its server), then `initial` doubling up to
    `maximum`, each stretched by up to `jitter` (a fraction) so a fleet does not retry in step."""
    untried = pool_size - failed_in_a_row
    if untried > 0:
        return 0.0
    delay = min(maximum, initial * 2 ** min(-untried, 32))
    return delay * (1 + jitter * rng.random())


def classify_server_error(message: str, server_url: str | None = None) -> ServerError:
    """Which kind of `-ERR` this is; the text is compared lower-cased (servers vary)."""
    lowered = message.lower()
    if lowered.startswith("permissions violation"):
        return PermissionViolationError(message, server_url, fatal=False)
    if lowered.startswith(_AUTH_FAILURES):
        return AuthorizationError(message, server_url)
    return ServerError(message, server_url, fatal=not lowered.startswith(_KEEPS_CONNECTION))


class Msg(wire.Msg):
    """A received message: `subject`, `reply`, `data` (alias `payload`), `headers`, `status`.

    The parser builds these directly; `Client._deliver` sets `_client` so `respond()` can answer.
    """

    __slots__ = ()

    def respond(self, payload: bytes = b"", headers=None) -> None:
        if not self.reply:
            raise NatsError(f"message on {self.subject!r} has no reply subject to respond to")
        self._client.publish(self.reply, payload, headers=headers)


class Subscription:
    """Handle returned by `Client.subscribe`; counts deliveries to honour `max_msgs` across reconnects."""

    def __init__(self, client: "Client", sid: int, subject: str, queue: str | None, callback, max_msgs: int | None):
        self._client = client
        self.sid = sid
        self.subject = subject
        self.queue = queue
        self.callback = callback
        self.max_msgs = max_msgs
        self.delivered = 0
        # Deliveries counted before the SUB was (re)sent on the current connection: the server
        # counts `UNSUB <sid> <max>` from its SUB, we count from the first subscribe.
        self._delivered_at_sub = 0
        self._in_flight: set[defer.Deferred] = set()

    @property
    def is_active(self) -> bool:
        return self._client._subs.get(self.sid) is self

    def unsubscribe(self, max_msgs: int | None = None) -> None:
        self._client.unsubscribe(self, max_msgs)

    def __repr__(self) -> str:
        queue = f" queue={self.queue!r}" if self.queue else ""
        return f"<Subscription sid={self.sid} {self.subject!r}{queue} delivered={self.delivered}>"


@dataclass(frozen=True)
class ClientStats:
    msgs_in: int
    bytes_in: int
    msgs_out: int
    bytes_out: int
    reconnects: int


@dataclass
class _Server:
    url: str  # without credentials: safe to log
    host: str
    port: int
    tls: bool
    tls_name: str  # host name to verify the certificate against
    user: str | None = None
    password: str | None = None
    implicit: bool = False  # learned from INFO connect_urls, not configured


def parse_server_url(url: str) -> _Server:
    """`nats://[user[:pass]@]host[:port]`, `tls://...`, or a bare `host[:port]`."""
    text = url.strip()
    if "://" not in text:
        text = "nats://" + text
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme not in ("nats", "tls"):
        raise ValueError(f"server URL {url!r}: scheme must be nats:// or tls://")
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError:
        raise ValueError(f"server URL {url!r}: bad port") from None
    host = parts.hostname
    if not host:
        raise ValueError(f"server URL {url!r} has no host")
    shown_host = f"[{host}]" if ":" in host else host
    return _Server(
        url=f"{scheme}://{shown_host}:{port}",
        host=host,
        port=port,
        tls=scheme == "tls",
        tls_name=host,
        user=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
    )


class ServerPool:
    """The servers to try, in rotation: each pick moves the server to the back of the line."""

    def __init__(self, urls: Iterable[str], *, randomize: bool, rng: random.Random):
        servers: list[_Server] = []
        for url in urls:
            server = parse_server_url(url)
            if all(s.url != server.url for s in servers):
                servers.append(server)
        if not servers:
            raise ValueError("at least one server URL is needed")
        self._rng = rng
        self._randomize = randomize
        if randomize:
            rng.shuffle(servers)
        self._servers = servers

    def __len__(self) -> int:
        return len(self._servers)

    @property
    def urls(self) -> list[str]:
        return [s.url for s in self._servers]

    def next(self) -> _Server:
        server = self._servers.pop(0)
        self._servers.append(server)
        return server

    def update_discovered(self, connect_urls: list[str], current: _Server) -> list[str]:
        """Add servers the cluster announced, drop learned ones it no longer announces; return new URLs."""
        announced: list[_Server] = []
        for address in connect_urls:
            try:
                server = parse_server_url(("tls://" if current.tls else "nats://") + address)
            except ValueError:
                log.warn("ignoring unparsable connect_url {address!r}", address=address)
                continue
            server.implicit = True
            if not isIPAddress(current.tls_name) and not isIPv6Address(current.tls_name):
                server.tls_name = current.tls_name  # announced as IPs, certified under the configured name
            announced.append(server)
        announced_urls = {s.url for s in announced}
        self._servers = [
            s for s in self._servers if not s.implicit or s.url in announced_urls or s is current
        ]
        known = {s.url for s in self._servers}
        added = [s for s in announced if s.url not in known]
        if self._randomize:
            self._rng.shuffle(added)
        # Ahead of the current server, which sits at the back: a reconnect tries them first.
        position = self._servers.index(current) if current in self._servers else len(self._servers)
        self._servers[position:position] = added
        return [s.url for s in added]


class _Lifeline(protocol.Protocol):
    """What `ClientService` sees of a connection: made when the handshake succeeded, lost when it ends."""


@implementer(IStreamClientEndpoint)
class _PoolEndpoint:
    """Each `connect()` dials the next server of the pool and completes the NATS handshake on it."""

    def __init__(self, client: "Client"):
        self._client = client

    def connect(self, lifeline_factory):
        client = self._client
        server = client._pool.next()
        connection = _Connection(client, server)
        log.debug("connecting to {url}", url=server.url)
        factory = protocol.Factory.forProtocol(lambda: connection)
        factory.noisy = False  # no "Starting factory" line per attempt on a Pi that retries forever
        dialing = client._tcp_endpoint(server).connect(factory)
        dialing.addCallback(lambda _: connection.handshake)
        dialing.addTimeout(client._connect_timeout, client._reactor, onTimeoutCancel=connection.timed_out)

        def established(_):
            lifeline = lifeline_factory.buildProtocol(connection.transport.getPeer())
            lifeline.makeConnection(connection.transport)
            connection.lifeline = lifeline
            client._connection_ready(connection)
            return lifeline

        dialing.addCallbacks(established, lambda failure: client._attempt_failed(server, failure))
        return dialing

    def __repr__(self) -> str:
        return f"<NATS server pool {self._client._pool.urls}>"


_AWAIT_INFO, _AWAIT_PONG, _READY = range(3)


class _Connection(protocol.Protocol):
    """One TCP (maybe TLS) connection to one server; `handshake` fires with itself after the first PONG."""

    def __init__(self, client: "Client", server: _Server):
        self._client = client
        self.server = server
        self.info: dict = {}
        self.lifeline: _Lifeline | None = None
        self.handshake: defer.Deferred = defer.Deferred(canceller=self._cancel_handshake)
        self._parser = wire.Parser(msg_class=Msg)
        self._state = _AWAIT_INFO
        self._tls_started = False
        self._failure: Exception | None = None

    def dataReceived(self, data: bytes) -> None:
        try:
            events = self._parser.feed(data)
        except wire.ProtocolError as exc:
            error_type = NatsError if self._state == _READY else HandshakeError
            self.fail(error_type(f"{self.server.url} sent bytes that are not NATS: {exc}"))
            return
        if self._state == _READY:
            self._process(events)
        else:
            self._process_handshake(events)

    def _process(self, events: list) -> None:
        client = self._client
        deliver = client._deliver
        for event in events:
            if type(event) is Msg:
                if client._closed:
                    return  # closed by a callback earlier in this batch
                deliver(event)
            elif client._conn is not self:
                continue  # a connection being left (lame duck): only its messages still count
            elif isinstance(event, wire.Ping):
                client._send(wire.PONG)
            elif isinstance(event, wire.Pong):
                client._on_pong()
            elif isinstance(event, wire.Info):
                self.info.update(event.options)
                client._on_info(self, event.options)
            elif isinstance(event, wire.Err):
                client._on_server_error(self, event.message)

    def _process_handshake(self, events: list) -> None:
        for index, event in enumerate(events):
            if self.handshake.called:
                return  # failed: ignore the rest
            if self._state == _AWAIT_INFO:
                if not isinstance(event, wire.Info):
                    self.fail(HandshakeError(f"{self.server.url} did not start with INFO but {event!r}"))
                    return
                self._send_connect(event.options)
            elif isinstance(event, wire.Pong):
                self._state = _READY
                self.handshake.callback(self)
                self._process(events[index + 1 :])
                return
            elif isinstance(event, wire.Err):
                self.fail(self._client._classify_server_error(self.server, event.message))
            elif isinstance(event, wire.Info):
                self.info.update(event.options)
            elif isinstance(event, wire.Ping):
                self.transport.write(wire.PONG)

    def _send_connect(self, info: dict) -> None:
        self.info = dict(info)
        client = self._client
        offers_tls = bool(info.get("tls_required") or info.get("tls_available"))
        use_tls = bool(info.get("tls_required") or self.server.tls or (client._tls is not None and offers_tls))
        try:
            if use_tls:
                if not offers_tls:
                    raise TlsError(f"{self.server.url}: TLS was asked for but the server does not offer it")
                missing = tls_unavailable_reason()
                if missing:
                    raise TlsError(f"{self.server.url} requires TLS, but {missing}")
                self.transport.startTLS(client._tls_creator(self.server.tls_name))
                self._tls_started = True
            connect = client._connect_options(self.info, self.server, use_tls)
        except NatsError as exc:
            self.fail(exc)
            return
        self.transport.write(wire.encode_connect(connect) + wire.PING)
        self._state = _AWAIT_PONG

    def fail(self, error: Exception) -> None:
        """Give up on this connection with `error` as the reason reported."""
        if self._failure is None:
            self._failure = error
        if not self.handshake.called:
            self.handshake.errback(error)
        self.transport.abortConnection()

    def timed_out(self, result, timeout):
        """`addTimeout` hook: name the step that hung."""
        if not isinstance(result, Failure):
            return result
        if self.transport is None:
            raise HandshakeError(f"{self.server.url}: TCP connect timed out after {timeout}s")
        phase = "INFO" if self._state == _AWAIT_INFO else "PONG"
        raise HandshakeError(f"{self.server.url}: no {phase} within {timeout}s of connecting")

    def _cancel_handshake(self, _deferred) -> None:
        if self.transport is not None:
            self.transport.abortConnection()

    def connectionLost(self, reason: Failure = protocol.connectionDone) -> None:
        if not self.handshake.called:
            self.handshake.errback(self._describe_loss(reason))
        if self._client._conn is self:
            self._client._connection_lost(self, self._failure or reason.value)
        if self.lifeline is not None:
            self.lifeline.connectionLost(reason)

    def _describe_loss(self, reason: Failure) -> Exception:
        if self._failure is not None:
            return self._failure
        url = self.server.url
        if self._tls_started:
            from OpenSSL import SSL
            from service_identity import VerificationError

            if reason.check(SSL.Error):
                detail = "; ".join(str(item[2]) for item in reason.value.args[0] if len(item) > 2) or str(reason.value)
                return TlsError(f"TLS with {url} failed: {detail}")
            if reason.check(VerificationError):
                return TlsError(f"TLS with {url} failed: certificate does not match {self.server.tls_name!r}: {reason.value}")
        return HandshakeError(f"{url} closed the connection during the handshake: {reason.getErrorMessage()}")


class Client:
    """A NATS connection that keeps itself alive; see the module docstring and `connect()`.

    Reconnecting: every server of the pool (randomized unless `randomize=False`, grown by the
    cluster's `connect_urls`) is tried at once, then `initial_delay` doubling to `max_delay`,
    stretched by up to `jitter` (a fraction); `max_attempts=0` never gives up. Publishes made
    while disconnected wait in a buffer of `buffer_size` bytes. A server that leaves
    `max_outstanding_pings` PINGs (one every `ping_interval` s; the last one given half an
    interval) unanswered is treated as dead.
    Not thread-safe: call it from the reactor thread.

    Listeners (`add_listener(event, callback)`): "connected"(url) for the first connection,
    "reconnected"(url) for every one after it, "disconnected"(url, reason), "error"(exception)
    for server `-ERR`s, refused logins and TLS failures, "lame_duck"(url),
    "discovered_servers"(urls), "closed"(). `tls` is a `TlsOptions` or a dict of its fields.
    """

    def __init__(
        self,
        servers: str | Iterable[str] = (DEFAULT_URL,),
        *,
        name: str | None = None,
        randomize: bool = True,
        echo: bool = True,
        user: str | None = None,
        password: str | None = None,
        token: str | None = None,
        nkey_seed: str | None = None,
        nkey_seed_file: str | None = None,
        creds_file: str | None = None,
        tls=None,
        initial_delay: float = 0.1,
        max_delay: float = 5.0,
        jitter: float = 0.2,
        max_attempts: int = 0,
        ping_interval: float = 10.0,
        max_outstanding_pings: int = 2,
        buffer_size: int = 8 * 1024 * 1024,
        connect_timeout: float = 2.0,
        reactor=None,
    ):
        if reactor is None:
            from twisted.internet import reactor
        if isinstance(servers, str):
            servers = [servers]
        for label, value in (("initial_delay", initial_delay), ("max_delay", max_delay), ("jitter", jitter)):
            if value < 0:
                raise ValueError(f"{label} must not be negative")
        if ping_interval <= 0 or max_outstanding_pings < 1 or buffer_size < 0 or connect_timeout <= 0 or max_attempts < 0:
            raise ValueError(
                "ping_interval and connect_timeout must be positive, max_outstanding_pings at least 1, "
                "buffer_size and max_attempts not negative"
            )
        self._reactor = reactor
        self._rng = random.Random()
        self._pool = ServerPool(servers, randomize=randomize, rng=self._rng)
        self._name = name
        self._echo = echo
        self._credentials = Credentials(user=user, password=password, token=token, nkey_seed=nkey_seed,
                                        nkey_seed_file=nkey_seed_file, creds_file=creds_file)
        self._credentials.check()
        if isinstance(tls, Mapping):
            tls = TlsOptions(**tls)
        self._tls = tls
        if tls is not None:
            client_tls_options(tls, "localhost")  # unreadable files fail now, not on every attempt
        self._initial_delay = initial_delay
        self._max_delay = max_delay
        self._jitter = jitter
        self._max_attempts = max_attempts
        self._ping_interval = ping_interval
        self._max_outstanding_pings = max_outstanding_pings
        self._buffer_size = buffer_size
        self._connect_timeout = connect_timeout

        self._service = ClientService(_PoolEndpoint(self), protocol.Factory.forProtocol(_Lifeline),
                                      retryPolicy=self._retry_delay, clock=reactor)
        self._conn: _Connection | None = None
        self._closed = False
        self._fully_closed = False
        self._close_waiters: list[defer.Deferred] = []
        self._draining = False
        self._connect_waiters: list[defer.Deferred] = []
        self._listeners: dict[str, list[Callable]] = {event: [] for event in EVENTS}
        self._ever_connected = False
        self._failed_attempts = 0
        self._last_error: Exception | None = None
        self._server_info: dict = {}
        self._max_payload = DEFAULT_MAX_PAYLOAD
        self._headers_supported = True

        self._subs: dict[int, Subscription] = {}
        self._next_sid = 1
        self._checked_subjects: set[str] = set()
        self._pending: list[bytes] = []
        self._pending_size = 0
        # Frames for the current connection, written together at the end of the reactor turn:
        # one transport write per turn instead of one per publish.
        self._outbox: list[bytes] = []
        self._outbox_call = None
        self._pong_waiters: deque[defer.Deferred | None] = deque()
        self._flushes_after_reconnect: list[defer.Deferred] = []
        self._outstanding_pings = 0
        self._keepalive: LoopingCall | None = None
        self._stale_check = None  # IDelayedCall: the deadline of the last allowed PING

        self._inbox_prefix: str | None = None
        self._resp_sub: Subscription | None = None
        self._requests: dict[str, tuple[defer.Deferred, str]] = {}
        self._next_token = 0

        self._msgs_in = self._bytes_in = self._msgs_out = self._bytes_out = self._reconnects = 0

    # --- public API -------------------------------------------------------------------------

    def add_listener(self, event: str, callback: Callable) -> None:
        if event not in self._listeners:
            raise ValueError(f"unknown event {event!r}; known: {', '.join(EVENTS)}")
        self._listeners[event].append(callback)

    def remove_listener(self, event: str, callback: Callable) -> None:
        if callback in self._listeners.get(event, ()):
            self._listeners[event].remove(callback)

    def connect(self) -> defer.Deferred:
        """Start connecting; fires with the client after the first handshake's PONG.

        Retries forever by default; with `max_attempts` it fails with the last attempt's error.
        """
        if self._closed:
            return defer.fail(ConnectionClosedError("client is closed"))
        if self._conn is not None:
            return defer.succeed(self)
        waiter: defer.Deferred = defer.Deferred()
        self._connect_waiters.append(waiter)
        if not self._service.running:
            self._service.startService()
        return waiter

    def publish(self, subject: str, payload: bytes = b"", reply: str | None = None, headers=None) -> None:
        """Send now, or buffer while disconnected; raises (and sends nothing) on bad input or a full buffer."""
        if self._closed:
            raise ConnectionClosedError("client is closed")
        if subject not in self._checked_subjects:
            self._check_literal(subject, "subject")
            if len(self._checked_subjects) >= _SUBJECT_CACHE_LIMIT:
                self._checked_subjects.clear()
            self._checked_subjects.add(subject)
        if reply is not None:
            self._check_literal(reply, "reply subject")  # not cached: inboxes are mostly one-off
        if type(payload) is not bytes:
            payload = _as_bytes(payload)
        if headers is None:
            size = len(payload)
            if size > self._max_payload:
                raise MaxPayloadError(
                    f"payload of {size} bytes exceeds the server's max_payload of {self._max_payload}; nothing was sent"
                )
            data = wire.encode_pub(subject, payload, reply)
        else:
            if not self._headers_supported:
                raise NatsError("the server does not support headers")
            data = wire.encode_hpub(subject, payload, headers, reply)
            size = len(data) - data.index(b"\r\n") - 4  # header block + payload, what the server limits
            if size > self._max_payload:
                raise MaxPayloadError(
                    f"headers and payload of {size} bytes exceed the server's max_payload of "
                    f"{self._max_payload}; nothing was sent"
                )
        if self._conn is not None:
            self._outbox.append(data)
            if self._outbox_call is None:
                self._outbox_call = self._reactor.callLater(0, self._write_outbox)
        else:
            self._buffer(data)
        self._msgs_out += 1
        self._bytes_out += len(payload)

    def subscribe(self, subject: str, callback: Callable, queue: str | None = None,
                  max_msgs: int | None = None) -> Subscription:
        """`callback(msg)` runs in the reactor thread; if it returns a Deferred or coroutine,
        `drain()` waits for it."""
        if self._closed or self._draining:
            raise ConnectionClosedError("client is closed" if self._closed else "client is draining")
        problem = validate_subject(subject, wildcards=True)
        if problem:
            raise InvalidSubjectError(problem)
        if queue is not None and (not queue or any(c in queue for c in " \t\r\n")):
            raise InvalidSubjectError(f"queue group {queue!r} must be non-empty and free of whitespace")
        if not callable(callback):
            raise TypeError("callback must be callable")
        if max_msgs is not None and (not isinstance(max_msgs, int) or max_msgs < 1):
            raise ValueError("max_msgs must be a positive integer")
        sid = self._next_sid
        self._next_sid += 1
        sub = Subscription(self, sid, subject, queue, callback, max_msgs)
        self._subs[sid] = sub
        if self._conn is not None:
            self._send(self._sub_frames(sub))
        return sub

    def unsubscribe(self, sub: Subscription, max_msgs: int | None = None) -> None:
        """Stop now, or once `max_msgs` messages in total have been delivered to `sub`."""
        if self._subs.get(sub.sid) is not sub:
            return
        if max_msgs is not None and max_msgs > sub.delivered:
            sub.max_msgs = max_msgs
            if self._conn is not None:
                self._send(wire.encode_unsub(sub.sid, max_msgs - sub._delivered_at_sub))
            return
        del self._subs[sub.sid]
        if self._conn is not None:
            self._send(wire.encode_unsub(sub.sid))

    def new_inbox(self) -> str:
        return "_INBOX." + secrets.token_urlsafe(16)

    def request(self, subject: str, payload: bytes = b"", timeout: float = 2.0, headers=None) -> defer.Deferred:
        """Fires with the reply `Msg`; fails with `NoRespondersError` at once if nobody listens,
        `NatsTimeoutError` after `timeout`."""
        if self._resp_sub is None:
            self._inbox_prefix = self.new_inbox() + "."
            self._resp_sub = self.subscribe(self._inbox_prefix + "*", self._on_response)
        self._next_token += 1
        token = str(self._next_token)
        requests = self._requests
        reply: defer.Deferred = defer.Deferred(canceller=lambda _: requests.pop(token, None))
        requests[token] = (reply, subject)
        try:
            self.publish(subject, payload, reply=self._inbox_prefix + token, headers=headers)
        except Exception:
            del requests[token]
            raise

        reply.addTimeout(timeout, self._reactor, onTimeoutCancel=_timeout_as(f"no reply to request on {subject!r}"))
        return reply

    def flush(self, timeout: float = 2.0) -> defer.Deferred:
        """Fires when the server has processed everything sent before it (PING → PONG)."""
        if self._closed:
            return defer.fail(ConnectionClosedError("client is closed"))
        done: defer.Deferred = defer.Deferred()
        if self._conn is not None:
            self._send(wire.PING)
            self._pong_waiters.append(done)
        else:
            self._flushes_after_reconnect.append(done)

        done.addTimeout(timeout, self._reactor, onTimeoutCancel=_timeout_as("flush not confirmed by the server"))
        return done

    @defer.inlineCallbacks
    def drain(self, timeout: float = 5.0):
        """Unsubscribe everything, let messages already sent to us and their callbacks finish,
        push out what they published, then close."""
        if self._closed:
            yield self.close()
            return
        self._draining = True
        subs = list(self._subs.values())
        if self._conn is not None and subs:
            self._send(b"".join(wire.encode_unsub(sub.sid) for sub in subs))
        error = None
        try:
            yield self.flush(timeout)
        except NatsError as exc:
            error = exc
        for sub in subs:
            self._subs.pop(sub.sid, None)
        in_flight = [d for sub in subs for d in sub._in_flight]
        if in_flight:
            yield defer.DeferredList(in_flight, consumeErrors=True)
        if error is None:
            try:
                yield self.flush(timeout)
            except NatsError as exc:
                error = exc
        yield self.close()
        if error is not None:
            raise error

    def close(self) -> defer.Deferred:
        """Stop for good: pending operations fail with `ConnectionClosedError`; fires when the socket is closed."""
        if not self._closed:
            self._shutdown(ConnectionClosedError("client closed"))
        if self._fully_closed:
            return defer.succeed(None)
        waiter: defer.Deferred = defer.Deferred()
        self._close_waiters.append(waiter)
        return waiter

    @property
    def is_connected(self) -> bool:
        return self._conn is not None

    @property
    def is_closed(self) -> bool:
        return self._closed

    @property
    def connected_url(self) -> str | None:
        return self._conn.server.url if self._conn is not None else None

    @property
    def server_info(self) -> dict:
        """The INFO of the current server, or of the last one while disconnected."""
        return dict(self._conn.info if self._conn is not None else self._server_info)

    @property
    def servers(self) -> list[str]:
        """The pool, configured and discovered, in the order it will be tried."""
        return self._pool.urls

    @property
    def max_payload(self) -> int:
        return self._max_payload

    @property
    def stats(self) -> ClientStats:
        return ClientStats(self._msgs_in, self._bytes_in, self._msgs_out, self._bytes_out, self._reconnects)

    @property
    def buffered_bytes(self) -> int:
        return self._pending_size

    # --- inbound ----------------------------------------------------------------------------

    def _deliver(self, msg: Msg) -> None:
        sub = self._subs.get(msg.sid)
        if sub is None:
            return  # unsubscribed while the message was in flight
        msg._client = self
        self._msgs_in += 1
        self._bytes_in += len(msg.payload)
        sub.delivered += 1
        if sub.max_msgs is not None and sub.delivered >= sub.max_msgs:
            del self._subs[sub.sid]  # the server dropped it too (UNSUB with max)
        try:
            result = sub.callback(msg)
        except Exception:
            log.failure("callback for {subject!r} raised", subject=sub.subject)
            return
        if result is not None:
            self._track_callback(sub, result)

    def _track_callback(self, sub: Subscription, result) -> None:
        if inspect.iscoroutine(result):
            result = defer.Deferred.fromCoroutine(result)
        if not isinstance(result, defer.Deferred):
            return
        if result.called:
            result.addErrback(self._log_callback_failure, sub)
            return
        sub._in_flight.add(result)

        def finished(value):
            sub._in_flight.discard(result)
            return value

        result.addBoth(finished).addErrback(self._log_callback_failure, sub)

    @staticmethod
    def _log_callback_failure(failure: Failure, sub: Subscription) -> None:
        log.failure("callback for {subject!r} failed", failure, subject=sub.subject)

    def _on_response(self, msg: Msg) -> None:
        entry = self._requests.pop(msg.subject[len(self._inbox_prefix):], None)
        if entry is None:
            return  # timed out or cancelled already
        reply, subject = entry
        if msg.status == 503 and not msg.data:
            reply.errback(NoRespondersError(subject))
        else:
            reply.callback(msg)

    def _on_pong(self) -> None:
        self._outstanding_pings = 0
        if self._pong_waiters:
            waiter = self._pong_waiters.popleft()
            if waiter is not None and not waiter.called:
                waiter.callback(None)

    def _on_info(self, conn: _Connection, options: dict) -> None:
        if "max_payload" in options:
            self._max_payload = options["max_payload"]
        self._learn_servers(conn)
        if options.get("ldm"):
            self._lame_duck(conn)

    def _learn_servers(self, conn: _Connection) -> None:
        connect_urls = conn.info.get("connect_urls")
        if connect_urls:
            added = self._pool.update_discovered(connect_urls, conn.server)
            if added:
                log.info("discovered servers {urls}", urls=added)
                self._emit("discovered_servers", added)

    def _lame_duck(self, conn: _Connection) -> None:
        url = conn.server.url
        if len(self._pool) > 1:
            # Publishes from now on wait in the reconnect buffer; messages the server still
            # sends us are delivered until it has our last bytes and the connection closes.
            log.info("{url} entered lame duck mode: moving to another server", url=url)
            reason = ConnectionLostError(f"{url} entered lame duck mode")
            self._detach(reason, send_queued=True)
            conn.transport.loseConnection()
            self._emit("lame_duck", url)
            self._emit("disconnected", url, reason)
        else:
            log.warn("{url} entered lame duck mode and there is no other server to move to", url=url)
            self._emit("lame_duck", url)

    def _classify_server_error(self, server: _Server, message: str) -> ServerError:
        error = classify_server_error(message, server.url)
        self._emit("error", error)
        return error

    def _on_server_error(self, conn: _Connection, message: str) -> None:
        error = self._classify_server_error(conn.server, message)
        if not error.fatal:
            log.warn("{error}", error=error)
        else:
            log.error("{error}: reconnecting", error=error)
            conn.fail(error)

    # --- connection lifecycle ---------------------------------------------------------------

    def _tcp_endpoint(self, server: _Server):
        if isIPAddress(server.host):
            return TCP4ClientEndpoint(self._reactor, server.host, server.port, timeout=self._connect_timeout)
        if isIPv6Address(server.host):
            return TCP6ClientEndpoint(self._reactor, server.host, server.port, timeout=self._connect_timeout)
        return HostnameEndpoint(self._reactor, server.host, server.port, timeout=self._connect_timeout)

    def _tls_creator(self, hostname: str):
        return client_tls_options(self._tls if self._tls is not None else TlsOptions(), hostname)

    def _connect_options(self, info: dict, server: _Server, tls: bool) -> dict:
        headers = bool(info.get("headers"))
        options = {
            "verbose": False,
            "pedantic": False,
            "protocol": 1,
            "headers": headers,
            "no_responders": headers,
            "lang": "python-twisted",
            "version": __version__,
            "echo": self._echo,
            "tls_required": tls,
        }
        if self._name:
            options["name"] = self._name
        options.update(self._credentials.connect_fields(info.get("nonce"), server.user, server.password))
        return options

    def _retry_delay(self, failed_in_a_row: int) -> float:
        """`ClientService` retry policy: straight on to the next server until each was tried,
        then exponential backoff with jitter. Counts a lost connection as one try of its server."""
        if self._max_attempts and self._failed_attempts >= self._max_attempts:
            self._reactor.callLater(0, self._give_up)
            return 3600.0  # never waited out: _give_up stops the service first
        return backoff_delay(failed_in_a_row, len(self._pool), initial=self._initial_delay,
                             maximum=self._max_delay, jitter=self._jitter, rng=self._rng)

    def _attempt_failed(self, server: _Server, failure: Failure) -> Failure:
        self._failed_attempts += 1
        error = failure.value
        if failure.check(defer.CancelledError) and self._closed:
            return failure
        self._last_error = error
        if isinstance(error, (TlsError, AuthConfigError)):
            self._emit("error", error)  # server -ERRs were reported as they arrived
        log.warn("cannot connect to {url}: {error}", url=server.url, error=error)
        return failure

    def _give_up(self) -> None:
        if self._closed:
            return
        error = self._last_error or ConnectionClosedError("no server reachable")
        log.error("giving up after {n} failed connection attempts: {error}", n=self._failed_attempts, error=error)
        self._shutdown(error)

    def _connection_ready(self, conn: _Connection) -> None:
        self._failed_attempts = 0
        self._conn = conn
        self._server_info = conn.info
        self._max_payload = conn.info.get("max_payload", DEFAULT_MAX_PAYLOAD)
        self._headers_supported = bool(conn.info.get("headers"))
        frames = [self._sub_frames(sub) for sub in self._subs.values()]
        frames += self._pending
        self._pending = []
        self._pending_size = 0
        for waiter in self._flushes_after_reconnect:
            if not waiter.called:
                frames.append(wire.PING)
                self._pong_waiters.append(waiter)
        self._flushes_after_reconnect = []
        if frames:
            conn.transport.write(b"".join(frames))
        self._outstanding_pings = 0
        self._keepalive = LoopingCall(self._send_keepalive)
        self._keepalive.clock = self._reactor
        self._keepalive.start(self._ping_interval, now=False)
        # Tell listeners and connect() callers once ClientService has registered the connection,
        # and outside its state machine (it refuses re-entry): they may well close the client.
        self._service.whenConnected().addCallbacks(
            lambda _: self._reactor.callLater(0, self._announce, conn),
            lambda failure: failure.trap(defer.CancelledError),
        )

    def _announce(self, conn: _Connection) -> None:
        if self._conn is not conn:
            return
        url = conn.server.url
        reconnect = self._ever_connected
        self._ever_connected = True
        log.info("{what} to {url} ({server})", what="reconnected" if reconnect else "connected", url=url,
                 server=conn.info.get("server_name") or conn.info.get("server_id"))
        self._learn_servers(conn)
        if reconnect:
            self._reconnects += 1
        self._emit("reconnected" if reconnect else "connected", url)
        waiters, self._connect_waiters = self._connect_waiters, []
        for waiter in waiters:
            waiter.callback(self)
        if conn.info.get("ldm"):
            self._lame_duck(conn)

    def _sub_frames(self, sub: Subscription) -> bytes:
        sub._delivered_at_sub = sub.delivered
        frame = wire.encode_sub(sub.subject, sub.sid, sub.queue)
        if sub.max_msgs is not None:
            frame += wire.encode_unsub(sub.sid, sub.max_msgs - sub.delivered)
        return frame

    def _send_keepalive(self) -> None:
        conn = self._conn
        if conn is None:
            return
        if self._outstanding_pings >= self._max_outstanding_pings:
            self._fail_stale(conn)
            return
        self._outstanding_pings += 1
        self._pong_waiters.append(None)
        self._send(wire.PING)
        if self._outstanding_pings == self._max_outstanding_pings:
            # The last allowed PING gets half an interval, not a whole one: with the defaults a
            # frozen server is left within 25 s of its last answer, so failover completes within 30.
            self._stale_check = self._reactor.callLater(self._ping_interval / 2, self._check_stale, conn)

    def _check_stale(self, conn: _Connection) -> None:
        self._stale_check = None
        if conn is self._conn and self._outstanding_pings >= self._max_outstanding_pings:
            self._fail_stale(conn)

    def _fail_stale(self, conn: _Connection) -> None:
        log.warn("{url}: {n} PINGs unanswered, treating the server as gone", url=conn.server.url,
                 n=self._outstanding_pings)
        conn.fail(ConnectionLostError(f"{conn.server.url}: stale connection ({self._outstanding_pings} PINGs unanswered)"))

    def _send(self, data: bytes) -> None:
        """Queue `data` for the current connection; one transport write per reactor turn."""
        self._outbox.append(data)
        if self._outbox_call is None:
            self._outbox_call = self._reactor.callLater(0, self._write_outbox)

    def _write_outbox(self) -> None:
        if self._outbox_call is not None:
            if self._outbox_call.active():
                self._outbox_call.cancel()
            self._outbox_call = None
        outbox, self._outbox = self._outbox, []
        if outbox and self._conn is not None:
            self._conn.transport.write(outbox[0] if len(outbox) == 1 else b"".join(outbox))

    def _detach(self, error: Exception, *, send_queued: bool) -> _Connection | None:
        """Forget the current connection; what is queued for it goes out first only if it still can."""
        if send_queued:
            self._write_outbox()
        elif self._outbox_call is not None:
            self._outbox_call.cancel()
            self._outbox_call = None
            self._outbox = []
        conn, self._conn = self._conn, None
        if conn is None:
            return None
        self._server_info = conn.info
        if self._keepalive is not None and self._keepalive.running:
            self._keepalive.stop()
        self._keepalive = None
        if self._stale_check is not None and self._stale_check.active():
            self._stale_check.cancel()
        self._stale_check = None
        waiters, self._pong_waiters = self._pong_waiters, deque()
        for waiter in waiters:
            if waiter is not None and not waiter.called:
                waiter.errback(error)
        return conn

    def _connection_lost(self, conn: _Connection, reason: BaseException) -> None:
        self._detach(ConnectionLostError(f"connection to {conn.server.url} lost before the server answered"),
                     send_queued=False)
        log.warn("disconnected from {url}: {reason}", url=conn.server.url, reason=reason)
        self._emit("disconnected", conn.server.url, reason)

    def _shutdown(self, error: Exception) -> None:
        self._closed = True
        conn = self._detach(ConnectionClosedError("client closed before the server answered"), send_queued=True)
        waiters, self._connect_waiters = self._connect_waiters, []
        for waiter in waiters:
            waiter.errback(error)
        requests, self._requests = self._requests, {}
        for reply, _subject in requests.values():
            reply.errback(ConnectionClosedError("client closed before a reply arrived"))
        flushes, self._flushes_after_reconnect = self._flushes_after_reconnect, []
        for waiter in flushes:
            if not waiter.called:
                waiter.errback(ConnectionClosedError("client closed before the flush was sent"))
        if self._pending:
            log.warn("closing with {n} buffered messages ({size} bytes) never sent", n=len(self._pending),
                     size=self._pending_size)
            self._pending = []
            self._pending_size = 0
        if conn is not None:
            self._emit("disconnected", conn.server.url, error)
        cutoff = None
        if conn is not None:
            cutoff = self._reactor.callLater(_CLOSE_GRACE, conn.transport.abortConnection)
        stopped = self._service.stopService() if self._service.running else defer.succeed(None)
        stopped.addBoth(self._finish_close, cutoff)

    def _finish_close(self, _result, cutoff) -> None:
        if cutoff is not None and cutoff.active():
            cutoff.cancel()
        self._fully_closed = True
        self._emit("closed")
        waiters, self._close_waiters = self._close_waiters, []
        for waiter in waiters:
            waiter.callback(None)

    def _buffer(self, data: bytes) -> None:
        if self._pending_size + len(data) > self._buffer_size:
            raise OutboundBufferFullError(
                f"reconnect buffer full ({self._pending_size} of {self._buffer_size} bytes used); "
                f"this {len(data)}-byte message was not queued"
            )
        self._pending.append(data)
        self._pending_size += len(data)

    @staticmethod
    def _check_literal(subject: str, what: str) -> None:
        problem = validate_subject(subject, wildcards=False)
        if problem:
            raise InvalidSubjectError(f"{what}: {problem}; nothing was sent")

    def _emit(self, event: str, *args) -> None:
        for callback in list(self._listeners[event]):
            try:
                callback(*args)
            except Exception:
                log.failure("{event} listener raised", event=event)


def _timeout_as(what: str):
    """An `addTimeout` onTimeoutCancel hook: the cancellation becomes `NatsTimeoutError`."""

    def timed_out(result, seconds):
        if isinstance(result, Failure):
            raise NatsTimeoutError(f"{what} within {seconds}s")
        return result

    return timed_out


def _as_bytes(payload) -> bytes:
    if isinstance(payload, (bytearray, memoryview)):
        return bytes(payload)
    raise TypeError(f"payload must be bytes, not {type(payload).__name__}")
