"""`Client`: the public face of the Twisted NATS client, with a Deferred API.

Data flow: bytes → `connection.Connection` (handshake, keepalive) → `protocol.Parser` →
`Client.deliver` → `subscriptions.Subscriptions` → your callback (or, for a subscription made with
`batches=True`, one call per run of its messages in one read). Outgoing frames go through one
bounded `outbound.OutboundQueue`, connected or not. Reconnecting is Twisted's `ClientService`
dialing `connection.PoolEndpoint` over a `pool.ServerPool`, with `backoff_delay` as its policy.

What is fatal and what is not: only a broken frame structure or a lost socket ends a connection
(then the client reconnects); a server `-ERR` is reported to the "error" listeners and the
server decides whether to close; anything wrong inside one message costs that message at most.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass
from typing import Callable, NamedTuple

from twisted.application.internet import ClientService
from twisted.application.service import Service
from twisted.internet import defer, protocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from bridge import __version__
from bridge.nats import protocol as wire
from bridge.nats.connection import Connection, ConnectionSettings, Lifeline, PoolEndpoint
from bridge.nats.errors import (
    AuthConfigError,
    ConnectionClosedError,
    InvalidSubjectError,
    MaxPayloadError,
    NatsError,
    PermissionViolationError,
    ServerError,
    TlsError,
    classify_server_error,
)
from bridge.nats.options import DEFAULT_URL, ClientOptions
from bridge.nats.outbound import OutboundQueue
from bridge.nats.pool import Server, ServerPool, parse_server_url
from bridge.nats.repeats import RepeatSummary
from bridge.nats.requests import RequestMux, new_inbox, timeout_as
from bridge.nats.subjects import validate_subject
from bridge.nats.subscriptions import Msg, Subscription, Subscriptions
from bridge.nats.tls import TlsOptions, client_tls_options

__all__ = ["Client", "ClientOptions", "ClientStats", "Msg", "Status", "Subscription", "DEFAULT_URL", "backoff_delay",
           "classify_server_error", "parse_server_url"]

log = Logger()

DEFAULT_MAX_PAYLOAD = 1024 * 1024
EVENTS = ("connected", "reconnected", "disconnected", "error", "lame_duck", "closed", "discovered_servers")
_SUBJECT_CACHE_LIMIT = 4096
# The most messages one batch callback gets: what a subscriber does with a batch (one device
# call for all of them) stays short enough for its hang watchdog and its overflow drops.
MAX_BATCH = 1000
# Giving a frozen server this long to take our last bytes before close() cuts the socket.
_CLOSE_GRACE = 2.0
# A connection that ends sooner than this after its handshake counts as a failed attempt for
# the backoff: a server that accepts logins and drops them at once sees growing delays.
STABLE_AFTER = 5.0


class Status(enum.Enum):
    NEW = "new"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    DRAINING = "draining"
    CLOSED = "closed"


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


@dataclass(frozen=True)
class ClientStats:
    msgs_in: int
    bytes_in: int
    msgs_out: int
    bytes_out: int
    reconnects: int
    malformed_msgs: int = 0  # delivered with a `problem` (e.g. an unreadable header line)
    possibly_lost: int = 0  # publishes written to a connection that dropped before a PONG confirmed them


class Client(Service):
    """A NATS connection that keeps itself alive, as `options` (a `ClientOptions`) say; see the
    module docstring and `connect()`.

    The pool grows by the cluster's `connect_urls`; retrying follows `options.reconnect`, staleness
    `options.keepalive`. Past `options.buffer_size` queued bytes `publish()` raises `OutboundBufferFullError`.
    Not thread-safe: call it from the reactor thread. As a Twisted `IService`, starting it
    connects and stopping it drains.

    Listeners (`add_listener(event, callback)`): "connected"(url) for the first connection,
    "reconnected"(url) for every one after it, "disconnected"(url, reason), "error"(exception)
    for server `-ERR`s, refused logins and TLS failures, "lame_duck"(url),
    "discovered_servers"(urls), "closed"().
    """

    def __init__(self, options: ClientOptions = ClientOptions(), *, reactor=None):
        if reactor is None:
            # Late: importing it installs the default reactor; the process chooses its reactor
            # (and may forgo TLS, tls.forgo_tls) before it builds a client.
            from twisted.internet import reactor
        self.options = options
        self._reactor = reactor
        self._rng = random.Random()
        self._pool = ServerPool(options.servers, randomize=options.randomize, rng=self._rng)
        self.name = options.name
        self._credentials = options.credentials
        self._credentials.check()
        tls = options.tls
        if tls is not None:
            client_tls_options(tls, "localhost")  # unreadable files fail now, not on every attempt
        self._settings = ConnectionSettings(
            msg_class=Msg,
            connect_options=self._connect_options,
            tls_context=self._tls_context,
            tls_configured=tls is not None,
            tls_first=bool(getattr(tls, "handshake_first", False)),
            ping_interval=options.keepalive.ping_interval,
            max_outstanding_pings=options.keepalive.max_outstanding_pings,
        )
        endpoint = PoolEndpoint(self._pool, self._new_connection, self._connection_ready, self._attempt_failed,
                                options.connect_timeout, reactor)
        self._service = ClientService(endpoint, protocol.Factory.forProtocol(Lifeline),
                                      retryPolicy=self._retry_delay, clock=reactor)
        self.status = Status.NEW
        self._conn: Connection | None = None
        self._connected_at = 0.0
        self._fully_closed = False
        self._close_waiters: list[defer.Deferred] = []
        self._connect_waiters: list[defer.Deferred] = []
        self._flushes_after_reconnect: set[defer.Deferred] = set()
        self._listeners: dict[str, list[Callable]] = {event: [] for event in EVENTS}
        self._failed_attempts = 0  # handshakes failed in a row: what max_attempts counts
        self._unstable_tries = 0  # what the backoff counts: failed attempts and short-lived connections
        self._last_error: Exception | None = None
        self._server_info: dict = {}
        self._max_payload = DEFAULT_MAX_PAYLOAD
        self._max_control_line = wire.SERVER_MAX_CONTROL_LINE
        self._headers_supported = True

        self._subs = Subscriptions()
        self._handler = _Handler(self._deliver, self._delivered, self._on_info, self._server_error,
                                 self._connection_lost)
        # The run of messages of one `batches=True` subscription gathered from the current read.
        self._run: list[Msg] = []
        self._run_sub: Subscription | None = None
        self._requests = RequestMux(self._subscribe, reactor)
        self._outbound = OutboundQueue(options.buffer_size, reactor)
        self._checked_subjects: set[str] = set()
        self._malformed = RepeatSummary(log, "malformed content in {n} message(s), delivered as received "
                                        "(latest on {subject!r}: {problem})", reactor)
        self._msgs_in = self._bytes_in = self._msgs_out = self._bytes_out = self._reconnects = 0
        self._malformed_msgs = 0

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
        if self.status is Status.CLOSED:
            return defer.fail(ConnectionClosedError("client is closed"))
        if self._conn is not None:
            return defer.succeed(self)
        waiter: defer.Deferred = defer.Deferred()
        self._connect_waiters.append(waiter)
        if not self._service.running:
            self.status = Status.CONNECTING
            self._service.startService()
        return waiter

    def publish(self, subject: str, payload: bytes = b"", reply: str | None = None, headers=None) -> None:
        """Queue for sending; raises (and queues nothing) on bad input or a full buffer."""
        if self.status is Status.CLOSED:
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
        self._outbound.publish(data)
        self._msgs_out += 1
        self._bytes_out += len(payload)

    def subscribe(self, subject: str, callback: Callable, queue: str | None = None,
                  max_msgs: int | None = None, *, batches: bool = False) -> Subscription:
        """`callback(msg)` runs in the reactor thread; if it returns a Deferred or coroutine,
        `drain()` waits for it.

        With `batches=True` it is `callback(msgs)` instead: a list of the consecutive messages of
        this subscription that one read brought (at most `MAX_BATCH`), so a busy subscriber pays
        its per-call costs once per read instead of once per message. Order is kept: a run is
        handed on before any other subscription's message of the same read."""
        if self.status in (Status.CLOSED, Status.DRAINING):
            raise ConnectionClosedError(f"client is {self.status.value}")
        problem = validate_subject(subject, wildcards=True)
        if problem:
            raise InvalidSubjectError(problem)
        if queue is not None and (not queue or any(c in queue for c in " \t\r\n")):
            raise InvalidSubjectError(f"queue group {queue!r} must be non-empty and free of whitespace")
        if not callable(callback):
            raise TypeError("callback must be callable")
        if max_msgs is not None and (not isinstance(max_msgs, int) or max_msgs < 1):
            raise ValueError("max_msgs must be a positive integer")
        self._check_control_line(subject, queue)
        sub = self._subscribe(subject, callback, queue, max_msgs)
        sub.set_callback(callback, batches)
        return sub

    def unsubscribe(self, sub: Subscription, max_msgs: int | None = None) -> None:
        """Stop now, or once `max_msgs` messages in total have been delivered to `sub`."""
        if not sub.is_active:
            return
        if max_msgs is not None and max_msgs > sub.delivered:
            sub.max_msgs = max_msgs
            self._outbound.control(wire.encode_unsub(sub.sid, max_msgs - sub.delivered_at_sub))
            return
        self._subs.remove(sub)
        self._outbound.control(wire.encode_unsub(sub.sid))

    def drain_subscription(self, sub: Subscription, timeout: float = 2.0) -> defer.Deferred:
        """Stop `sub` without losing what the server already sent it (nats.go's Subscription.Drain):
        UNSUB now, keep delivering until the server has answered two PINGs sent after it, then
        forget it. Fails with `NatsTimeoutError` when the PONG does not come in
        time; the subscription is forgotten either way."""
        if not sub.is_active:
            return defer.succeed(None)
        self._outbound.control(wire.encode_unsub(sub.sid))
        confirmed = self._unsubscribes_settled()
        confirmed.addTimeout(timeout, self._reactor,
                             onTimeoutCancel=timeout_as(f"drain of {sub.subject!r} not confirmed by the server"))

        def forget(result):
            self._subs.remove(sub)
            return result

        return confirmed.addBoth(forget)

    def new_inbox(self) -> str:
        return new_inbox()

    def request(self, subject: str, payload: bytes = b"", timeout: float = 2.0, headers=None) -> defer.Deferred:
        """Fires with the reply `Msg`; fails with `NoRespondersError` at once if nobody listens,
        `NatsTimeoutError` after `timeout`, or with whatever made the publish impossible."""
        if self.status is Status.CLOSED:
            return defer.fail(ConnectionClosedError("client is closed"))
        reply_subject, reply = self._requests.open(subject, timeout)
        try:
            self.publish(subject, payload, reply=reply_subject, headers=headers)
        except Exception as exc:
            self._requests.forget(reply_subject)
            return defer.fail(exc)
        return reply

    def flush(self, timeout: float = 2.0) -> defer.Deferred:
        """Fires when the server has processed everything sent before it (PING → PONG)."""
        if self.status is Status.CLOSED:
            return defer.fail(ConnectionClosedError("client is closed"))
        done: defer.Deferred = defer.Deferred()
        if self._conn is not None:
            self._conn.ping(done)
        else:
            waiting = self._flushes_after_reconnect
            waiting.add(done)

            def settled(result):
                waiting.discard(done)
                return result

            done.addBoth(settled)
        done.addTimeout(timeout, self._reactor, onTimeoutCancel=timeout_as("flush not confirmed by the server"))
        return done

    def drain(self, timeout: float = 5.0) -> defer.Deferred:
        """Unsubscribe everything, let messages already sent to us and their callbacks finish
        (requests they make still get their replies), push out what they published, then close.
        Closes after `timeout` seconds in any case, failing with `NatsTimeoutError`; cancelling
        it stops the waiting, never the application's own Deferreds."""
        if self.status in (Status.CLOSED, Status.DRAINING):
            return self.close()
        self.status = Status.DRAINING
        draining = self._drain()
        draining.addTimeout(timeout, self._reactor, onTimeoutCancel=timeout_as("drain not finished"))

        def close_anyway(result):
            return self.close().addCallback(lambda _: result)

        return draining.addBoth(close_anyway)

    @defer.inlineCallbacks
    def _drain(self):
        inbox = self._requests.subscription
        subs = [sub for sub in self._subs.all() if sub is not inbox]
        for sub in subs:
            self._outbound.control(wire.encode_unsub(sub.sid))
        yield self._unsubscribes_settled()  # every message sent to them before the UNSUBs is here now
        for sub in subs:
            self._subs.remove(sub)
        yield self._subs.callbacks_done()
        if inbox is not None:
            self.unsubscribe(inbox)
        yield self._flush_if_connected()  # what the callbacks published

    def _unsubscribes_settled(self) -> defer.Deferred:
        """Fires once the messages routed to subscriptions before their UNSUB have arrived.

        Two round trips, not one: nats-server routes another client's message in that client's
        goroutine, which may have matched the subscription just before the UNSUB and hand the
        message over just after our first PONG. The second PONG leaves it that much time.
        """
        settled = self._flush_if_connected()
        settled.addCallback(lambda _: self._flush_if_connected())
        return settled

    def _flush_if_connected(self) -> defer.Deferred:
        if self._conn is None:
            return defer.succeed(None)
        done: defer.Deferred = defer.Deferred()
        self._conn.ping(done)
        return done

    def close(self) -> defer.Deferred:
        """Stop for good: pending operations fail with `ConnectionClosedError`; fires when the socket is closed."""
        if self.status is not Status.CLOSED:
            self._shutdown(ConnectionClosedError("client closed"))
        if self._fully_closed:
            return defer.succeed(None)
        waiter: defer.Deferred = defer.Deferred()
        self._close_waiters.append(waiter)
        return waiter

    # IService
    def startService(self) -> None:
        super().startService()
        self.connect().addErrback(lambda failure: log.failure("NATS client could not connect", failure))

    def stopService(self) -> defer.Deferred:
        super().stopService()
        return self.drain().addErrback(lambda failure: log.failure("NATS client drain failed", failure))

    @property
    def reactor(self):
        """What this client schedules on (a `task.Clock` in tests): code built on the client,
        such as JetStream's watchers, keeps time with the same clock."""
        return self._reactor

    @property
    def is_connected(self) -> bool:
        return self._conn is not None

    @property
    def is_closed(self) -> bool:
        return self.status is Status.CLOSED

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
        return ClientStats(self._msgs_in, self._bytes_in, self._msgs_out, self._bytes_out, self._reconnects,
                           self._malformed_msgs, self._outbound.possibly_lost)

    @property
    def buffered_bytes(self) -> int:
        """Bytes of publishes (and protocol frames) waiting to be handed to the transport."""
        return self._outbound.pending_bytes

    # --- what a connection reports (connection.ConnectionHandler) ---------------------------

    def _deliver(self, msg: Msg) -> None:
        if self.status is Status.CLOSED:
            return  # closed by a callback earlier in this read
        sub = self._subs.receive(msg)
        if sub is None:
            return
        msg.client = self
        self._msgs_in += 1
        self._bytes_in += len(msg.payload)
        if msg.problem is not None:
            self._malformed_msgs += 1
            self._malformed.add(subject=msg.subject, problem=msg.problem)
        run = self._run
        if sub.batches:
            if sub is not self._run_sub or len(run) >= MAX_BATCH:
                if run:
                    self._delivered()
                self._run_sub = sub
                run = self._run
            run.append(msg)
            return
        if run:
            self._delivered()
        self._subs.run_callback(sub, msg)

    def _delivered(self) -> None:
        """Hand the gathered run to its subscription's batch callback."""
        run, sub = self._run, self._run_sub
        if not run:
            return
        self._run = []
        self._run_sub = None
        if self.status is Status.CLOSED:
            return  # closed by a callback earlier in this read
        self._subs.run_callback(sub, run)

    def _server_error(self, conn: Connection, message: str) -> None:
        error = self._report_server_error(conn.server, message)
        if isinstance(error, PermissionViolationError):
            self._requests.refused(error)
        if error.fatal:
            log.error("{error}; the server will close the connection", error=error)
        else:
            log.warn("{error}", error=error)

    def _connection_lost(self, conn: Connection, reason: Exception) -> None:
        if self._conn is not conn:
            return
        self._detach(lost=True)
        if self.status is not Status.CLOSED:
            self.status = Status.RECONNECTING if self.status is not Status.DRAINING else self.status
        log.warn("disconnected from {url}: {reason}", url=conn.server.url, reason=reason)
        self._emit("disconnected", conn.server.url, reason)

    # --- connection lifecycle ---------------------------------------------------------------

    def _subscribe(self, subject: str, callback, queue: str | None = None, max_msgs: int | None = None):
        sub = self._subs.add(subject, queue, callback, max_msgs, self.unsubscribe, self.drain_subscription)
        if self._conn is not None:
            self._outbound.control(self._subs.sub_frames(sub))
        return sub

    def _new_connection(self, server: Server) -> Connection:
        return Connection(server, self._settings, self._handler, self._outbound, self._reactor)

    def _tls_context(self, hostname: str):
        return client_tls_options(self.options.tls if self.options.tls is not None else TlsOptions(), hostname)

    def _connect_options(self, info: dict, server: Server, tls: bool) -> dict:
        headers = bool(info.get("headers"))
        options = {
            "verbose": False,
            "pedantic": False,
            "protocol": 1,
            "headers": headers,
            "no_responders": headers,
            "lang": "python-twisted",
            "version": __version__,
            "echo": self.options.echo,
            "tls_required": tls,
        }
        if self.name:
            options["name"] = self.name
        options.update(self._credentials.connect_fields(info.get("nonce"), server.user, server.password))
        return options

    def _retry_delay(self, _service_count: int) -> float:
        """`ClientService` retry policy: straight on to the next server until each was tried,
        then exponential backoff with jitter. A lost connection counts as one try of its server;
        one that lived less than `STABLE_AFTER` keeps the count growing instead of resetting it."""
        reconnect = self.options.reconnect
        if reconnect.max_attempts and self._failed_attempts >= reconnect.max_attempts:
            self._reactor.callLater(0, self._give_up)
            return 3600.0  # never waited out: _give_up stops the service first
        self._unstable_tries += 1
        return backoff_delay(self._unstable_tries, len(self._pool), initial=reconnect.initial_delay,
                             maximum=reconnect.max_delay, jitter=reconnect.jitter, rng=self._rng)

    def _attempt_failed(self, server: Server, failure: Failure) -> Failure:
        self._failed_attempts += 1
        error = failure.value
        if failure.check(defer.CancelledError) and self.status is Status.CLOSED:
            return failure
        self._last_error = error
        if isinstance(error, ServerError):
            self._emit("error", error)
        elif isinstance(error, (TlsError, AuthConfigError)):
            self._emit("error", error)
        log.warn("cannot connect to {url}: {error}", url=server.url, error=error)
        return failure

    def _give_up(self) -> None:
        if self.status is Status.CLOSED:
            return
        error = self._last_error or ConnectionClosedError("no server reachable")
        log.error("giving up after {n} failed connection attempts: {error}", n=self._failed_attempts, error=error)
        self._shutdown(error)

    def _connection_ready(self, conn: Connection) -> None:
        self._failed_attempts = 0
        self._connected_at = self._reactor.seconds()
        self._conn = conn
        self._server_info = conn.info
        self._max_payload = conn.info.get("max_payload", DEFAULT_MAX_PAYLOAD)
        self._max_control_line = max(wire.SERVER_MAX_CONTROL_LINE, conn.info.get("max_control_line") or 0)
        self._headers_supported = bool(conn.info.get("headers"))
        self._outbound.attach(conn.transport, self._subs.resubscribe_frames())
        flushes, self._flushes_after_reconnect = self._flushes_after_reconnect, set()
        for waiter in flushes:
            if not waiter.called:
                conn.ping(waiter)
        # Tell listeners and connect() callers once ClientService has registered the connection,
        # and outside its state machine (it refuses re-entry): they may well close the client.
        self._service.whenConnected().addCallbacks(
            lambda _: self._reactor.callLater(0, self._announce, conn),
            lambda failure: failure.trap(defer.CancelledError),
        )

    def _announce(self, conn: Connection) -> None:
        if self._conn is not conn:
            return
        url = conn.server.url
        reconnect = self._reconnects > 0 or self.status is Status.RECONNECTING
        if self.status in (Status.CONNECTING, Status.RECONNECTING):
            self.status = Status.CONNECTED
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

    def _on_info(self, conn: Connection, options: dict) -> None:
        if "max_payload" in options:
            self._max_payload = options["max_payload"]
        if isinstance(options.get("max_control_line"), int):
            self._max_control_line = max(wire.SERVER_MAX_CONTROL_LINE, options["max_control_line"])
        self._learn_servers(conn)
        if options.get("ldm"):
            self._lame_duck(conn)

    def _learn_servers(self, conn: Connection) -> None:
        connect_urls = conn.info.get("connect_urls")
        if connect_urls:
            added = self._pool.update_discovered(connect_urls, conn.server)
            if added:
                log.info("discovered servers {urls}", urls=added)
                self._emit("discovered_servers", added)

    def _lame_duck(self, conn: Connection) -> None:
        # The server spreads the closing of its clients over its lame duck duration, so that a
        # fleet does not reconnect elsewhere in one stampede: keep serving until it closes us.
        log.info("{url} entered lame duck mode: staying until it closes the connection", url=conn.server.url)
        self._emit("lame_duck", conn.server.url)

    def _report_server_error(self, server: Server, message: str) -> ServerError:
        error = classify_server_error(message, server.url)
        self._emit("error", error)
        return error

    def _detach(self, *, lost: bool) -> Connection | None:
        """Forget the current connection; what was never written to it stays queued."""
        conn, self._conn = self._conn, None
        if conn is None:
            return None
        self._server_info = conn.info
        self._outbound.detach(lost=lost)
        if self._reactor.seconds() - self._connected_at >= STABLE_AFTER:
            self._unstable_tries = 0
        return conn

    def _shutdown(self, error: Exception) -> None:
        self.status = Status.CLOSED
        if self._conn is not None:
            self._outbound.write()  # what is queued goes out first, if the server takes it
        conn = self._detach(lost=False)
        waiters, self._connect_waiters = self._connect_waiters, []
        for waiter in waiters:
            waiter.errback(error)
        self._requests.fail_all(ConnectionClosedError("client closed before a reply arrived"))
        flushes, self._flushes_after_reconnect = self._flushes_after_reconnect, set()
        for waiter in flushes:
            if not waiter.called:
                waiter.errback(ConnectionClosedError("client closed before the flush was sent"))
        dropped_msgs, dropped_bytes = self._outbound.discard()
        if dropped_msgs:
            log.warn("closing with {n} queued messages ({size} bytes) never sent", n=dropped_msgs, size=dropped_bytes)
        self._malformed.flush(again=False)
        if conn is not None:
            self._emit("disconnected", conn.server.url, error)
        cutoff = None
        if conn is not None:
            conn.transport.loseConnection()
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

    def _check_literal(self, subject: str, what: str) -> None:
        problem = validate_subject(subject, wildcards=False)
        if problem:
            raise InvalidSubjectError(f"{what}: {problem}; nothing was sent")
        if len(subject) > self._max_control_line - 32:
            self._check_control_line(subject)

    def _check_control_line(self, *fields: str | None) -> None:
        """nats-server drops a connection whose control line passes its limit: refuse it here."""
        length = sum(len(field.encode("utf-8", "surrogateescape")) + 1 for field in fields if field) + 32
        if length > self._max_control_line:
            raise InvalidSubjectError(
                f"subject of {length - 32} bytes makes a control line longer than the server's limit of "
                f"{self._max_control_line}; nothing was sent")

    def _emit(self, event: str, *args) -> None:
        for callback in list(self._listeners[event]):
            try:
                callback(*args)
            except Exception:
                log.failure("{event} listener raised", event=event)


class _Handler(NamedTuple):
    """The `ConnectionHandler` a connection reports to: the client's methods, under the handler's names."""

    deliver: Callable
    delivered: Callable
    server_info: Callable
    server_error: Callable
    connection_lost: Callable


def _as_bytes(payload) -> bytes:
    if isinstance(payload, (bytearray, memoryview)):
        return bytes(payload)
    raise TypeError(f"payload must be bytes, not {type(payload).__name__}")
