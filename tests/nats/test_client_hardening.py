"""Hardening behaviours of the NATS client, each shown against real nats-server processes, each
named after the code it guards. The pure logic (pool, outbound queue, subscriptions, requests,
repeats, handshake, keepalive, drain) is tested in memory, one file per module: tests/nats/test_pool.py,
test_outbound.py, test_subscriptions.py, test_requests.py, test_repeats.py, test_connection.py and
test_client_memory.py.

Every test here was checked against a mutation of the line it names (removed or inverted): the
docstring says which. Integration tests run once per server flavour (see tests/conftest.py).
"""

from __future__ import annotations

import socket

import pytest
import pytest_twisted
from twisted.application.service import MultiService
from twisted.internet import defer, protocol, task
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure

from bridge.nats import (
    Client,
    ClientOptions,
    ConnectionClosedError,
    InvalidSubjectError,
    NatsTimeoutError,
    OutboundBufferFullError,
    PermissionViolationError,
)
from bridge.nats.errors import AuthorizationError, MaxSubscriptionsError
from tests.harness.nats_client import Collector, connected, next_event
from tests.harness.reactor import running_reactor, wait_until

MiB = 1024 * 1024


def sleep(seconds: float) -> defer.Deferred:
    return task.deferLater(running_reactor(), seconds)


# --- 1. write-side flow control --------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_publish_to_a_frozen_server_is_bounded_by_buffer_size_then_delivered_in_order(nats_server, make_client):
    """Guards `transport.registerProducer(...)` in OutboundQueue.attach (and the limit check in
    OutboundQueue.publish): without the producer the transport swallows every write and publish()
    never raises; without the check the queue grows past buffer_size."""
    publisher = make_client([nats_server.url], buffer_size=4 * MiB)
    subscriber = make_client([nats_server.url])
    await connected(publisher)
    await connected(subscriber)
    received = Collector()
    subscriber.subscribe("flow.big", received)
    await subscriber.flush()
    payload = b"x" * (MiB - 16)
    published = 0
    most_buffered = 0
    nats_server.freeze()
    try:
        with pytest.raises(OutboundBufferFullError):
            # One publish per reactor turn, so the queue is written out between them and only the
            # kernel's socket buffers and the transport's pause stand between us and the limit.
            while published < 64:
                publisher.publish("flow.big", b"%08d" % published + payload)
                published += 1
                most_buffered = max(most_buffered, publisher.buffered_bytes)
                await sleep(0.02)
        assert most_buffered <= 4 * MiB
        assert publisher.buffered_bytes <= 4 * MiB
        # Loopback socket buffers hold a few MiB more; never tens of MiB.
        assert published < 16, f"{published} MiB accepted before the buffer filled"
    finally:
        nats_server.thaw()
    messages = await received.wait_for(published, timeout=30)
    assert [m.data[:8] for m in messages] == [b"%08d" % i for i in range(published)]
    assert publisher.buffered_bytes == 0
    assert publisher.stats.reconnects == 0


@pytest_twisted.ensureDeferred
async def test_publish_while_disconnected_is_bounded_by_buffer_size(nats_server, make_client):
    """Guards the limit check in OutboundQueue.publish (`if self._size + size > self.limit`):
    without it a disconnected client queues every publish."""
    client = make_client([nats_server.url], buffer_size=4 * MiB, initial_delay=1, max_delay=1)
    await connected(client)
    disconnected = next_event(client, "disconnected")
    nats_server.kill()
    await disconnected
    accepted = 0
    with pytest.raises(OutboundBufferFullError, match="disconnected"):
        for _ in range(64):
            client.publish("flow.offline", b"y" * (MiB - 64))
            accepted += 1
    assert accepted == 4
    assert client.buffered_bytes <= 4 * MiB


# --- 2. -ERR that keeps the connection -------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_max_subscriptions_error_is_reported_and_the_connection_stays(nats_flavour, make_client):
    """Guards the "maximum subscriptions exceeded" line of classify_server_error: without it the
    -ERR is a generic fatal ServerError, not MaxSubscriptionsError."""
    with nats_flavour.server(config="max_subscriptions: 3") as server:
        client = make_client([server.url])
        await connected(client)
        errors: list = []
        client.add_listener("error", errors.append)
        disconnects: list = []
        client.add_listener("disconnected", lambda *args: disconnects.append(args))
        collectors = [Collector() for _ in range(3)]
        for i, collector in enumerate(collectors):
            client.subscribe(f"limit.{i}", collector)
        client.subscribe("limit.over", lambda m: None)
        await wait_until(lambda: errors, what="the -ERR for the fourth SUB")
        assert isinstance(errors[0], MaxSubscriptionsError) and not errors[0].fatal
        for round_ in range(5):  # a few seconds of activity on the connection the error came on
            for i in range(3):
                client.publish(f"limit.{i}", b"%d" % round_)
            await client.flush()
            await sleep(0.4)
        for collector in collectors:
            await collector.wait_for(5)
        assert client.stats.reconnects == 0 and disconnects == [] and client.is_connected
        assert len(errors) == 1


@pytest_twisted.ensureDeferred
async def test_publish_permission_violation_keeps_the_connection(nats_flavour, make_client):
    """Guards the "permissions violation" line of classify_server_error (fatal=False)."""
    config = """
authorization {
  users: [ { user: u, password: p, permissions: { publish: { deny: "secret.>" } } } ]
}
"""
    with nats_flavour.server(config=config) as server:
        client = make_client([server.url], user="u", password="p")
        await connected(client)
        errors: list = []
        client.add_listener("error", errors.append)
        collector = Collector()
        client.subscribe("open.ok", collector)
        for i in range(5):
            client.publish("secret.plan", b"no")
            client.publish("open.ok", b"%d" % i)
            await sleep(0.4)
        await collector.wait_for(5)
        await wait_until(lambda: len(errors) >= 5, what="five permission errors")
        assert all(isinstance(e, PermissionViolationError) and not e.fatal for e in errors)
        assert client.stats.reconnects == 0 and client.is_connected


# --- 3. backoff against a server that drops every login ---------------------------------------


INFO = b'INFO {"server_id":"fake","version":"2.10.0","proto":1,"headers":true,"max_payload":1048576}\r\n'


def test_a_server_that_drops_every_login_sees_growing_delays():
    """Guards `if ... >= STABLE_AFTER: self._unstable_tries = 0` in Client._detach (inverted, or
    resetting always, the client retries every initial_delay). In memory: each dial the client makes
    on a MemoryReactorClock is answered with a handshake and then hung up on, and the clock moved
    straight to the client's next timer."""
    clock = MemoryReactorClock()
    options = ClientOptions.from_keywords("nats://127.0.0.1:4222", randomize=False, initial_delay=0.1, max_delay=1,
                                          jitter=0)
    client = Client(options, reactor=clock)
    gave_up_with = []
    client.connect().addErrback(lambda failure: gave_up_with.append(failure.type))
    dialled_at = []
    while len(dialled_at) < 7:
        if len(clock.tcpClients) > len(dialled_at):
            dialled_at.append(clock.seconds())
            wire = clock.tcpClients[len(dialled_at) - 1][2].buildProtocol(None)
            wire.makeConnection(StringTransport())
            wire.dataReceived(INFO)
            wire.dataReceived(b"PONG\r\n")
            wire.connectionLost(Failure(ConnectionDone()))
        clock.advance(min(call.getTime() for call in clock.getDelayedCalls()) - clock.seconds())
    client.close()
    gaps = [later - earlier for earlier, later in zip(dialled_at, dialled_at[1:])]
    assert gaps == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])
    assert gave_up_with == [ConnectionClosedError]


# --- 4. drain --------------------------------------------------------------------------------


async def _two_clients(url, make_client):
    client = make_client([url])
    other = make_client([url])
    await connected(client)
    await connected(other)
    return client, other


@pytest_twisted.ensureDeferred
async def test_drain_keeps_the_request_inbox_until_the_callbacks_are_done(nats_server, make_client):
    """Guards `if sub is not inbox` in Client._drain: unsubscribing the inbox with the rest
    would lose the reply to a request made by a callback during drain."""
    client, responder = await _two_clients(nats_server.url, make_client)
    responder.subscribe("drain.svc", lambda msg: msg.respond(b"answer to " + msg.data))
    await responder.flush()
    release: defer.Deferred = defer.Deferred()
    replies: list = []

    async def callback(msg):
        await release
        reply = await client.request("drain.svc", msg.data, timeout=2)
        replies.append(reply.data)

    client.subscribe("drain.work", callback)
    assert (await client.request("drain.svc", b"q0", timeout=2)).data == b"answer to q0"  # the inbox exists
    client.publish("drain.work", b"q1")
    await client.flush()
    draining = client.drain(timeout=5)
    release.callback(None)
    await draining
    assert replies == [b"answer to q1"]
    assert client.is_closed


@pytest_twisted.ensureDeferred
async def test_drain_times_out_on_a_callback_that_never_finishes(nats_server, make_client):
    """Guards `draining.addTimeout(timeout, ...)` in Client.drain."""
    client = make_client([nats_server.url])
    await connected(client)
    client.subscribe("drain.stuck", lambda msg: defer.Deferred())
    client.publish("drain.stuck", b"x")
    await client.flush()
    with pytest.raises(NatsTimeoutError):  # not the TimeoutError of the bound around it
        await client.drain(timeout=1).addTimeout(10, running_reactor())
    assert client.is_closed


@pytest_twisted.ensureDeferred
async def test_drain_waits_for_the_callback_of_a_subscription_that_reached_max_msgs(nats_server, make_client):
    """Guards `self.in_flight.add(result)` in Subscriptions._track: the callback of a
    subscription already removed from the table (max_msgs reached) still counts for drain."""
    client = make_client([nats_server.url])
    await connected(client)
    release: defer.Deferred = defer.Deferred()
    called: list = []

    def callback(msg):
        called.append(msg)
        return release

    sub = client.subscribe("drain.once", callback, max_msgs=1)
    client.publish("drain.once", b"x")
    await wait_until(lambda: called, what="the callback")
    assert not sub.is_active
    draining = client.drain(timeout=5)
    await sleep(0.3)
    assert not draining.called
    release.callback(None)
    await draining
    assert client.is_closed


@pytest_twisted.ensureDeferred
async def test_cancelling_drain_leaves_the_applications_deferred_alone(nats_server, make_client):
    """Guards Subscriptions.callbacks_done's own Deferred (no canceller): waiting through
    `defer.gatherResults(pending)` instead would cancel the application's Deferred too."""
    client = make_client([nats_server.url])
    await connected(client)
    cancelled: list = []
    work: defer.Deferred = defer.Deferred(canceller=cancelled.append)
    called: list = []

    def callback(msg):
        called.append(msg)
        return work

    client.subscribe("drain.cancel", callback)
    client.publish("drain.cancel", b"x")
    await wait_until(lambda: called, what="the callback")
    draining = client.drain(timeout=5)
    await sleep(0.3)  # past the first flush: waiting for the callback
    assert not draining.called
    draining.cancel()
    with pytest.raises(defer.CancelledError):
        await draining
    assert cancelled == [] and not work.called
    await wait_until(lambda: client.is_closed, what="close")
    work.callback(None)


# --- 5. discovered servers inherit credentials ------------------------------------------------

CLUSTER_AUTH = {
    "userpass": ("authorization { user: a, password: b }", "a:b@"),
    "token": ("authorization { token: s3cret-token }", "s3cret-token@"),
}


@pytest.mark.parametrize("auth", list(CLUSTER_AUTH))
@pytest_twisted.ensureDeferred
async def test_failover_to_a_discovered_server_uses_the_seed_urls_credentials(auth, nats_flavour, make_client):
    """Guards `user=announced_by.user, password=announced_by.password` in pool.discovered_server:
    without them the reconnect to a discovered node is refused (Authorization Violation)."""
    config, userinfo = CLUSTER_AUTH[auth]
    cluster = nats_flavour.cluster(3, name=f"auth-{auth}")
    for server in cluster.servers:
        server.config = config
    try:
        cluster.start()
        cluster.wait_routed()
        seed = cluster.servers[0]
        client = make_client([f"nats://{userinfo}127.0.0.1:{seed.port}"], randomize=False, max_delay=0.5)
        errors: list = []
        client.add_listener("error", errors.append)
        await connected(client)
        await wait_until(lambda: len(client.servers) == 3, what="the other two nodes discovered")
        reconnected = next_event(client, "reconnected", timeout=15)
        seed.kill()
        (url,) = await reconnected
        assert url in cluster.urls[1:]
        collector = Collector()
        client.subscribe("after.failover", collector)
        client.publish("after.failover", b"ok")
        await collector.wait_for(1)
        assert not [e for e in errors if isinstance(e, AuthorizationError)]
    finally:
        cluster.cleanup()


# --- 6. lame duck without a stampede ----------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_lame_duck_clients_stay_until_the_server_spreads_their_closes(nats_flavour, make_client):
    """Guards Client._lame_duck only reporting (no leaving): a client that drops the connection
    on the notice makes all six move at once and fails the flush sent at the notice.
    nats-server's lame_duck_duration is at least 30 s; after the 1 s grace it closes one client
    every 0.5-1 s, so when every flush has come back all six are still on it."""
    ducking = nats_flavour.server(config="lame_duck_duration: 30s\nlame_duck_grace_period: 1s").start()
    spare = nats_flavour.server().start()
    try:
        clients = [make_client([ducking.url, spare.url], randomize=False) for _ in range(6)]
        closed: list = []
        flushes: list[defer.Deferred] = []
        for client in clients:
            await connected(client)
            client.add_listener("disconnected", lambda *args, c=client: closed.append(c))
            client.add_listener("lame_duck", lambda url, c=client: flushes.append(c.flush(timeout=5)))
        ducking.lame_duck()
        await wait_until(lambda: len(flushes) == 6, what="the lame duck notice on every client")
        results = await defer.DeferredList(flushes, consumeErrors=True)
        assert all(ok for ok, _ in results), results
        assert closed == []
        assert [c.connected_url for c in clients] == [ducking.url] * 6
        await wait_until(lambda: len(closed) == 6, timeout=15, what="every client closed by the server")
        assert sorted(map(id, closed)) == sorted(map(id, clients))
        await wait_until(lambda: all(c.connected_url == spare.url and c.stats.reconnects for c in clients),
                         what="all moved to the spare")
        assert [c.stats.reconnects for c in clients] == [1] * 6
    finally:
        ducking.cleanup()
        spare.cleanup()


# --- 7. smaller ones -------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_flushes_that_time_out_while_disconnected_are_not_kept(make_client):
    """Guards `waiting.discard(done)` in Client.flush: without it every timed-out flush made
    while disconnected stays referenced until the next connection."""
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
    try:
        client = make_client([f"nats://127.0.0.1:{dead.getsockname()[1]}"], initial_delay=1, max_delay=1)
        client.connect().addErrback(lambda f: None)
        flushes = [client.flush(timeout=0.05) for _ in range(2000)]
        for flush in flushes:
            flush.addErrback(lambda f: f.trap(NatsTimeoutError))
        await sleep(0.2)
        assert all(f.called for f in flushes)
        assert len(client._flushes_after_reconnect) == 0
    finally:
        dead.close()


def failure_of(deferred) -> Exception:
    """The exception an already-failed Deferred holds (consumed)."""
    assert isinstance(deferred, defer.Deferred) and deferred.called, deferred
    failures: list = []
    deferred.addErrback(failures.append)
    assert failures, f"{deferred} succeeded"
    return failures[0].value


@pytest_twisted.ensureDeferred
async def test_request_fails_its_deferred_instead_of_raising(nats_server, make_client):
    """Guards the try/except around publish() in Client.request (removed, request() raises) and
    its `self._requests.forget(reply_subject)` (removed, the failed requests stay registered)."""
    client = make_client([nats_server.url], buffer_size=MiB)
    await connected(client)
    assert isinstance(failure_of(client.request("bad subject", b"x")), InvalidSubjectError)
    assert isinstance(failure_of(client.request("", b"x")), InvalidSubjectError)
    nats_server.freeze()
    try:
        with pytest.raises(OutboundBufferFullError):
            for _ in range(64):
                client.publish("fill", b"z" * (MiB // 2))
                await sleep(0.02)
        assert isinstance(failure_of(client.request("svc", b"z" * (MiB // 2))), OutboundBufferFullError)
    finally:
        nats_server.thaw()
    assert len(client._requests) == 0  # nothing left waiting for a reply that cannot come
    await client.close()
    assert isinstance(failure_of(client.request("svc", b"x")), ConnectionClosedError)


@pytest_twisted.ensureDeferred
async def test_client_runs_as_a_service_in_a_multiservice(nats_server, make_client):
    """Guards Client.startService's connect() and stopService's drain() (a close() instead drops
    the callback still running)."""
    client = make_client([nats_server.url])
    observer = make_client([nats_server.url])
    await connected(observer)
    done = Collector()
    observer.subscribe("svc.done", done)
    await observer.flush()
    parent = MultiService()
    client.setServiceParent(parent)
    parent.startService()
    await wait_until(lambda: client.is_connected, what="connected by startService")
    release: defer.Deferred = defer.Deferred()

    async def slow(msg):
        await release
        client.publish("svc.done", msg.data)

    client.subscribe("svc.work", slow)
    client.publish("svc.work", b"job")
    await wait_until(lambda: client._subs.in_flight, what="the callback started")
    stopping = parent.stopService()
    running_reactor().callLater(0.2, release.callback, None)
    await stopping
    assert client.is_closed and not client.running
    await done.wait_for(1)
    assert done.data == [b"job"]


@pytest_twisted.ensureDeferred
async def test_wildcard_characters_inside_a_token_are_literal_on_the_wire(nats_server, make_client):
    """Guards validate_subject accepting `sensor*1.temp` (nats-server does): the rejection of
    '*'/'>' inside a longer token fails this."""
    client = make_client([nats_server.url])
    await connected(client)
    exact, wild = Collector(), Collector()
    client.subscribe("sensor*1.temp", exact)
    client.subscribe("*.temp", wild)
    client.publish("sensor*1.temp", b"21.5")
    client.publish("sensor11.temp", b"other")
    await wild.wait_for(2)
    await client.flush()
    assert exact.data == [b"21.5"]


# --- 8. hostile but legal frames from a raw socket ----------------------------------------------


class _RawPeer(protocol.Protocol):
    """A hand-written NATS client: sends whatever bytes the test gives it, keeps what comes back."""

    def __init__(self):
        self.received = b""

    def dataReceived(self, data):
        self.received += data


def _hpub(subject: bytes, header_block: bytes, payload: bytes) -> bytes:
    return b"HPUB %s %d %d\r\n%s%s\r\n" % (subject, len(header_block), len(header_block) + len(payload),
                                            header_block, payload)


@pytest_twisted.ensureDeferred
async def test_hostile_but_legal_frames_cost_at_most_their_own_message(nats_flavour, make_client):
    """Guards the parser's per-message leniency (Msg.problem, surrogateescape subjects, a control
    line as long as the server allows): one odd message must not end the connection or hide the
    good ones around it, and a reply to a non-UTF-8 reply subject goes back byte for byte."""
    from twisted.internet.endpoints import TCP4ClientEndpoint

    with nats_flavour.server(config="max_control_line: 8192") as server:
        client = make_client([server.url])
        await connected(client)
        received = Collector()

        def on_message(msg):
            received(msg)
            if msg.subject == "hostile.reply":
                msg.respond(b"answered")

        client.subscribe("hostile.>", on_message)
        await client.flush()
        raw = await TCP4ClientEndpoint(running_reactor(), "127.0.0.1", server.port).connect(
            protocol.Factory.forProtocol(_RawPeer))
        try:
            await wait_until(lambda: raw.received.startswith(b"INFO "), what="INFO on the raw socket")
            reply_subject = b"rep.\xff\xfe.bytes"
            long_subject = b"hostile.long." + b"x" * 5000
            frames = [
                b'CONNECT {"verbose":false,"pedantic":false,"headers":true,"protocol":1}\r\n',
                b"SUB " + reply_subject + b" 1\r\n",
                b"PUB hostile.good 2\r\ng1\r\n",
                _hpub(b"hostile.nocolon", b"NATS/1.0\r\nX-Good: 1\r\nno colon on this line\r\n\r\n", b"h1"),
                b"PUB hostile.good 2\r\ng2\r\n",
                _hpub(b"hostile.badutf8", b"NATS/1.0\r\nX-Bin: \xff\xfe\xfd\r\n\r\n", b"h2"),
                _hpub(b"hostile.status", b"NATS/1.0 abc not a status\r\n\r\n", b"h3"),
                b"PUB hostile.good 2\r\ng3\r\n",
                b"PUB hostile.reply " + reply_subject + b" 2\r\nr1\r\n",
                b"PUB " + long_subject + b" 2\r\nl1\r\n",
                b"PUB hostile.good 2\r\ng4\r\n",
                b"PING\r\n",
            ]
            raw.transport.write(b"".join(frames))
            await wait_until(lambda: b"PONG\r\n" in raw.received, what="the server took every frame")
            assert b"-ERR" not in raw.received, raw.received
            await received.wait_for(9, timeout=5)
            by_subject = {m.subject: m for m in received.messages}
            assert [m.data for m in received.messages if m.subject == "hostile.good"] == [b"g1", b"g2", b"g3", b"g4"]
            assert by_subject["hostile.nocolon"].data == b"h1" and by_subject["hostile.nocolon"].problem
            assert by_subject["hostile.badutf8"].data == b"h2"
            assert by_subject["hostile.status"].data == b"h3"
            assert by_subject[long_subject.decode()].data == b"l1"
            assert client.stats.malformed_msgs >= 1
            expected = b"MSG " + reply_subject + b" 1 8\r\nanswered\r\n"
            await wait_until(lambda: expected in raw.received, what="the reply, byte for byte, on the raw socket")
            assert client.stats.reconnects == 0 and client.is_connected
        finally:
            raw.transport.abortConnection()


@pytest_twisted.ensureDeferred
async def test_draining_one_subscription_loses_nothing_the_server_already_sent_it(nats_server, make_client):
    """Guards Client.drain_subscription: what the server sent a subscription before its UNSUB still
    reaches it (what a reload relies on when it hands a queue group over); a plain unsubscribe
    drops whatever had not been read yet. The receiver stops reading while the messages are sent,
    so they are certainly still on their way when the handover starts."""
    publisher = make_client([nats_server.url])
    receiver = make_client([nats_server.url])
    await connected(publisher)
    await connected(receiver)
    old, new = Collector(), Collector()
    old_sub = receiver.subscribe("handover", old, queue="workers")
    await receiver.flush()
    reading = receiver._conn.transport  # test-only: hold the messages in the socket
    reading.pauseProducing()
    total = 20_000
    for i in range(total):
        publisher.publish("handover", b"%d" % i)
    await publisher.flush()  # every one was routed to `old`, the only member then
    receiver.subscribe("handover", new, queue="workers")
    draining = old_sub.drain(timeout=10)
    reading.resumeProducing()
    await draining
    assert [int(d) for d in old.data] == list(range(total))
    assert new.data == [] and not old_sub.is_active
