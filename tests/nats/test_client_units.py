"""The NATS client's pure logic, in memory: the server pool, subscription bookkeeping, the
outbound queue, request/reply, repeated-log summaries, the connection handshake and keepalive,
and `Client.drain` driven over a `StringTransport` with a `task.Clock` as its reactor.

No servers, no sockets: these are what `make mutate` runs against pool.py, subscriptions.py,
outbound.py, requests.py and repeats.py (see tests/mutate.py), so each must be fast. The
behaviours against real nats-server processes are in tests/nats/test_client_hardening.py.
Not in conftest's FLAVOURED_MODULES: nothing here depends on a server flavour.
"""

from __future__ import annotations

import random

import pytest
from twisted.internet import defer, task
from twisted.internet.testing import StringTransport
from twisted.logger import capturedLogs, formatEvent
from twisted.python.failure import Failure

from bridge.nats import (
    Client,
    ConnectionClosedError,
    NatsTimeoutError,
    OutboundBufferFullError,
    PermissionViolationError,
)
from bridge.nats.client import Status, backoff_delay
from bridge.nats.errors import MaxSubscriptionsError, NatsError, NoRespondersError, ServerError, classify_server_error
from bridge.nats.options import ClientOptions
from bridge.nats.outbound import WRITE_CHUNK, Control, OutboundQueue
from bridge.nats.pool import DEFAULT_PORT, Server, ServerPool, discovered_server, is_ip_address, parse_server_url
from bridge.nats.repeats import RepeatSummary
from bridge.nats.requests import RequestMux, new_inbox, timeout_as
from bridge.nats.subscriptions import Msg, Subscription, Subscriptions


def logged() -> "capturedLogs":
    """Capture log events; `[formatEvent(e) for e in events]` gives their text."""
    return capturedLogs()


def texts(events) -> list[str]:
    return [formatEvent(event) for event in events]


def failure_of(deferred: defer.Deferred) -> Exception:
    failures = []
    deferred.addErrback(failures.append)
    assert failures, "the Deferred has not failed"
    return failures[0].value


def result_of(deferred: defer.Deferred):
    results = []
    deferred.addBoth(results.append)
    assert results, "the Deferred has not fired"
    return results[0]


# --- pool.py: server URLs ---------------------------------------------------------------------


def test_parse_server_url_fills_in_scheme_and_port_and_keeps_credentials_out_of_the_url():
    assert DEFAULT_PORT == 4222
    server = parse_server_url("  demo.example.com  ")
    assert server == Server(url="nats://demo.example.com:4222", host="demo.example.com", port=4222, tls=False,
                            tls_name="demo.example.com", user=None, password=None, implicit=False)
    secure = parse_server_url("TLS://al%40ice:p%3Ass@h:4443")
    assert (secure.url, secure.host, secure.port, secure.tls, secure.tls_name) == ("tls://h:4443", "h", 4443, True, "h")
    assert (secure.user, secure.password) == ("al@ice", "p:ss")
    token = parse_server_url("nats://s3cret@h")
    assert (token.user, token.password) == ("s3cret", None)
    empty_password = parse_server_url("nats://u:@h")
    assert (empty_password.user, empty_password.password) == ("u", "")
    v6 = parse_server_url("nats://[fd00::1]:4223")
    assert (v6.url, v6.host, v6.tls_name) == ("nats://[fd00::1]:4223", "fd00::1", "fd00::1")


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://h:4222", "server URL 'http://h:4222': scheme must be nats:// or tls://"),
        ("nats://h:port", "server URL 'nats://h:port': bad port"),
        ("nats://h:99999", "server URL 'nats://h:99999': bad port"),
        ("nats://:4222", "server URL 'nats://:4222' has no host"),
    ],
)
def test_parse_server_url_refuses_what_it_cannot_dial(url, problem):
    with pytest.raises(ValueError) as caught:
        parse_server_url(url)
    assert str(caught.value) == problem


def test_is_ip_address_knows_both_families_and_not_names():
    assert is_ip_address("10.0.0.1") and is_ip_address("fd00::1")
    assert not is_ip_address("node1.example.com") and not is_ip_address("10.0.0")


def test_discovered_server_checks_tls_against_its_own_name_unless_announced_as_an_ip():
    """Guards `announced_by.tls_name if is_ip_address(server.host) else server.host` in
    pool.discovered_server (inverted, or always the seed's name, the names below swap)."""
    seed = parse_server_url("tls://bob:pw@seed.example.com:4222")
    by_name = discovered_server("node2.example.com:4223", seed)
    assert by_name.tls_name == "node2.example.com"
    assert (by_name.url, by_name.user, by_name.password, by_name.tls, by_name.implicit) == (
        "tls://node2.example.com:4223", "bob", "pw", True, True)
    by_ip = discovered_server("10.1.2.3:4224", seed)
    assert by_ip.tls_name == "seed.example.com"
    assert discovered_server("[fd00::3]:4225", seed).tls_name == "seed.example.com"
    token_seed = parse_server_url("nats://tok@10.0.0.1")
    learned = discovered_server("10.0.0.2:4222", token_seed)
    assert (learned.url, learned.user, learned.password, learned.tls, learned.tls_name) == (
        "nats://10.0.0.2:4222", "tok", None, False, "10.0.0.1")


# --- pool.py: the rotation --------------------------------------------------------------------


def test_pool_keeps_the_configured_order_without_duplicates_and_rotates():
    pool = ServerPool(["a:1", "nats://a:1", "b:2", " c:3 "], randomize=False, rng=random.Random(0))
    assert len(pool) == 3
    assert pool.urls == ["nats://a:1", "nats://b:2", "nats://c:3"]
    assert [pool.next().url for _ in range(4)] == ["nats://a:1", "nats://b:2", "nats://c:3", "nats://a:1"]
    assert pool.urls == ["nats://b:2", "nats://c:3", "nats://a:1"]  # each pick moves to the back


def test_pool_randomizes_with_the_rng_it_is_given():
    urls = [f"nats://h{i}:4222" for i in range(10)]
    expected = list(urls)
    random.Random(7).shuffle(expected)
    assert ServerPool(urls, randomize=True, rng=random.Random(7)).urls == expected != urls


def test_pool_needs_a_server():
    with pytest.raises(ValueError, match="^at least one server URL is needed$"):
        ServerPool([], randomize=False, rng=random.Random(0))


def test_pool_adds_announced_servers_ahead_of_the_current_one_with_its_credentials():
    pool = ServerPool(["nats://u:p@10.0.0.1:4222", "nats://10.0.0.9:4222"], randomize=False, rng=random.Random(0))
    current = pool.next()  # 10.0.0.1, now at the back
    added = pool.update_discovered(["10.0.0.1:4222", "10.0.0.2:4222", "10.0.0.9:4222", "10.0.0.3:4222"], current)
    assert added == ["nats://10.0.0.2:4222", "nats://10.0.0.3:4222"]  # the known ones are not added again
    assert pool.urls == ["nats://10.0.0.9:4222", "nats://10.0.0.2:4222", "nats://10.0.0.3:4222", "nats://10.0.0.1:4222"]
    learned = [pool.next() for _ in range(3)][1:]
    assert [(s.user, s.password, s.implicit) for s in learned] == [("u", "p", True)] * 2
    assert pool.update_discovered(["10.0.0.2:4222", "10.0.0.3:4222"], current) == []


def test_pool_appends_announced_servers_when_the_current_one_is_not_in_it():
    pool = ServerPool(["nats://10.0.0.1:4222"], randomize=False, rng=random.Random(0))
    stranger = parse_server_url("nats://10.0.0.7:4222")
    assert pool.update_discovered(["10.0.0.2:4222"], stranger) == ["nats://10.0.0.2:4222"]
    assert pool.urls == ["nats://10.0.0.1:4222", "nats://10.0.0.2:4222"]


def test_pool_forgets_learned_servers_the_cluster_no_longer_announces():
    """Guards `not s.implicit or s.url in announced_urls or s is current` in update_discovered."""
    pool = ServerPool(["nats://10.0.0.1:4222"], randomize=False, rng=random.Random(0))
    current = pool.next()
    pool.update_discovered(["10.0.0.2:4222", "10.0.0.3:4222"], current)
    assert pool.update_discovered(["10.0.0.3:4222"], current) == []
    assert pool.urls == ["nats://10.0.0.3:4222", "nats://10.0.0.1:4222"]
    # Configured servers stay however little is announced; so does a learned one we are on.
    on_learned = pool.next()
    assert on_learned.url == "nats://10.0.0.3:4222" and on_learned.implicit
    assert pool.update_discovered(["10.0.0.4:4222"], on_learned) == ["nats://10.0.0.4:4222"]
    assert pool.urls == ["nats://10.0.0.1:4222", "nats://10.0.0.4:4222", "nats://10.0.0.3:4222"]


def test_pool_skips_an_unparsable_connect_url_and_says_so():
    pool = ServerPool(["nats://10.0.0.1:4222"], randomize=False, rng=random.Random(0))
    current = pool.next()
    with logged() as events:
        added = pool.update_discovered(["10.0.0.2:notaport", "10.0.0.3:4222"], current)
    assert added == ["nats://10.0.0.3:4222"]
    assert texts(events) == ["ignoring unparsable connect_url '10.0.0.2:notaport'"]


def test_pool_shuffles_announced_servers_when_randomized():
    rng = random.Random(3)
    pool = ServerPool(["nats://10.0.0.1:4222"], randomize=True, rng=rng)
    current = pool.next()
    announced = [f"10.0.1.{i}:4222" for i in range(12)]
    expected = [f"nats://{a}" for a in announced]
    replay = random.Random(3)
    replay.shuffle(["x"])  # the pool's own shuffle of its one configured server
    replay.shuffle(expected)
    assert pool.update_discovered(announced, current) == expected
    assert pool.urls == expected + ["nats://10.0.0.1:4222"]


# --- subscriptions.py -------------------------------------------------------------------------


class _Publisher:
    def __init__(self):
        self.published: list = []

    def publish(self, subject, payload, headers=None):
        self.published.append((subject, payload, headers))


def test_msg_respond_publishes_to_the_reply_subject():
    msg = Msg("svc", 1, "_INBOX.a.1", b"q")
    msg.client = _Publisher()
    msg.respond(b"answer", headers={"K": "v"})
    msg.respond()
    assert msg.client.published == [("_INBOX.a.1", b"answer", {"K": "v"}), ("_INBOX.a.1", b"", None)]


def test_msg_respond_without_a_reply_subject_raises():
    msg = Msg("svc", 1, None, b"q")
    msg.client = _Publisher()
    with pytest.raises(NatsError) as caught:
        msg.respond(b"x")
    assert str(caught.value) == "message on 'svc' has no reply subject to respond to"
    assert msg.client.published == []


def _table():
    calls = []
    table = Subscriptions()
    return table, calls, (lambda sub, max_msgs: calls.append((sub.sid, max_msgs)))


def test_subscriptions_number_sids_from_one_and_remove_only_their_own():
    table, calls, unsubscribe = _table()
    a = table.add("a", None, print, None, unsubscribe)
    b = table.add("b.>", "workers", print, 3, unsubscribe)
    assert (a.sid, b.sid) == (1, 2)
    assert (b.subject, b.queue, b.callback, b.max_msgs, b.delivered, b.delivered_at_sub) == ("b.>", "workers", print, 3, 0, 0)
    assert table.get(1) is a and table.get(2) is b and table.get(3) is None
    assert table.all() == [a, b] and len(table) == 2
    assert a.is_active and b.is_active
    impostor = Subscription(table, 1, "a", None, print, None, unsubscribe)
    table.remove(impostor)  # same sid, another object: not ours to remove
    assert table.get(1) is a and not impostor.is_active
    table.remove(a)
    assert table.get(1) is None and not a.is_active and len(table) == 1
    table.remove(a)  # twice is harmless
    assert table.all() == [b]
    assert table.add("c", None, print, None, unsubscribe).sid == 3  # sids are never reused
    b.unsubscribe(5)
    b.unsubscribe()
    assert calls == [(2, 5), (2, None)]


def test_subscription_repr():
    table, _, unsubscribe = _table()
    plain = table.add("a.b", None, print, None, unsubscribe)
    grouped = table.add("a.*", "q1", print, None, unsubscribe)
    grouped.delivered = 4
    assert repr(plain) == "<Subscription sid=1 'a.b' delivered=0>"
    assert repr(grouped) == "<Subscription sid=2 'a.*' queue='q1' delivered=4>"


def test_sub_frames_tell_the_server_what_is_left_of_max_msgs():
    table, _, unsubscribe = _table()
    plain = table.add("a", None, print, None, unsubscribe)
    limited = table.add("b", "q", print, 5, unsubscribe)
    assert table.sub_frames(plain) == b"SUB a 1\r\n"
    assert table.sub_frames(limited) == b"SUB b q 2\r\nUNSUB 2 5\r\n"
    for sid in (2, 2):
        table.receive(Msg("b", sid, None, b""))
    assert limited.delivered_at_sub == 0
    assert table.resubscribe_frames() == b"SUB a 1\r\nSUB b q 2\r\nUNSUB 2 3\r\n"
    assert limited.delivered_at_sub == 2 and plain.delivered_at_sub == 0


def test_receive_counts_deliveries_and_drops_the_subscription_at_max_msgs():
    table, _, unsubscribe = _table()
    unlimited = table.add("a", None, print, None, unsubscribe)
    limited = table.add("b", None, print, 2, unsubscribe)
    assert table.receive(Msg("x", 99, None, b"")) is None  # unknown sid: unsubscribed in flight
    for _ in range(3):
        assert table.receive(Msg("a", 1, None, b"")) is unlimited
    assert unlimited.delivered == 3 and unlimited.is_active
    assert table.receive(Msg("b", 2, None, b"")) is limited
    assert limited.is_active and limited.delivered == 1
    assert table.receive(Msg("b", 2, None, b"")) is limited  # the last one is still delivered
    assert not limited.is_active and limited.delivered == 2
    assert table.receive(Msg("b", 2, None, b"")) is None and limited.delivered == 2


def test_run_callback_logs_a_raising_callback_and_tracks_nothing():
    table, _, unsubscribe = _table()

    def boom(msg):
        raise RuntimeError("bad callback")

    sub = table.add("a.b", None, boom, None, unsubscribe)
    with logged() as events:
        table.run_callback(sub, Msg("a.b", 1, None, b""))
    assert texts(events) == ["callback for 'a.b' raised"]
    assert events[0]["log_failure"].check(RuntimeError)
    assert table.in_flight == set()


def test_run_callback_tracks_a_deferred_until_it_fires_and_passes_its_result_on():
    table, _, unsubscribe = _table()
    pending = defer.Deferred()
    sub = table.add("a", None, lambda msg: pending, None, unsubscribe)
    table.run_callback(sub, Msg("a", 1, None, b""))
    assert table.in_flight == {pending}
    pending.callback("value")
    assert table.in_flight == set()
    assert result_of(pending) == "value"


@pytest.mark.parametrize("result", [None, 42, "text", defer.succeed("done")])
def test_run_callback_tracks_nothing_that_is_already_finished_or_not_a_deferred(result):
    table, _, unsubscribe = _table()
    sub = table.add("a", None, lambda msg: result, None, unsubscribe)
    table.run_callback(sub, Msg("a", 1, None, b""))
    assert table.in_flight == set()
    assert result_of(table.callbacks_done()) is None


def test_run_callback_logs_a_deferred_that_fails_and_untracks_it():
    table, _, unsubscribe = _table()
    pending = defer.Deferred()
    sub = table.add("a.b", None, lambda msg: pending, None, unsubscribe)
    table.run_callback(sub, Msg("a.b", 1, None, b""))
    with logged() as events:
        pending.errback(RuntimeError("later"))
    assert texts(events) == ["callback for 'a.b' failed"]
    assert events[0]["log_failure"].check(RuntimeError)
    assert table.in_flight == set()
    assert result_of(pending) is None  # handled: no "Unhandled error in Deferred" later
    with logged() as events:  # one that has failed already is logged at once, and not tracked
        table.add("c", None, lambda msg: defer.fail(ValueError("now")), None, unsubscribe)
        table.run_callback(table.get(2), Msg("c", 2, None, b""))
    assert texts(events) == ["callback for 'c' failed"] and table.in_flight == set()


def test_run_callback_runs_a_coroutine_and_tracks_it_until_it_returns():
    table, _, unsubscribe = _table()
    gate = defer.Deferred()
    seen = []

    async def callback(msg):
        seen.append(await gate)

    sub = table.add("a", None, callback, None, unsubscribe)
    table.run_callback(sub, Msg("a", 1, None, b""))
    [running] = table.in_flight
    assert isinstance(running, defer.Deferred) and seen == []
    done = table.callbacks_done()
    assert not done.called
    gate.callback("go")
    assert seen == ["go"] and table.in_flight == set() and result_of(done) is None


def test_callbacks_done_waits_for_every_callback_in_flight_now():
    table, _, unsubscribe = _table()
    first, second, later = defer.Deferred(), defer.Deferred(), defer.Deferred()
    results = iter([first, second, later])
    sub = table.add("a", None, lambda msg: next(results), None, unsubscribe)
    table.run_callback(sub, Msg("a", 1, None, b""))
    table.run_callback(sub, Msg("a", 1, None, b""))
    done = table.callbacks_done()
    table.run_callback(sub, Msg("a", 1, None, b""))  # started after: not waited for
    assert table.in_flight == {first, second, later}
    second.callback(2)
    assert not done.called
    first.callback(1)
    assert done.called and result_of(done) is None
    assert (result_of(first), result_of(second)) == (1, 2)  # values pass through untouched
    assert table.in_flight == {later}


def test_cancelling_callbacks_done_leaves_the_applications_deferreds_alone():
    table, _, unsubscribe = _table()
    app = defer.Deferred()
    sub = table.add("a", None, lambda msg: app, None, unsubscribe)
    table.run_callback(sub, Msg("a", 1, None, b""))
    done = table.callbacks_done()
    done.cancel()
    assert isinstance(failure_of(done), defer.CancelledError)
    assert not app.called and table.in_flight == {app}
    app.callback("finished later")  # must not fire `done` a second time (AlreadyCalledError)
    assert result_of(app) == "finished later" and table.in_flight == set()


# --- outbound.py ------------------------------------------------------------------------------


class _Transport:
    """Records each write; `on_write` lets a test act from inside a write (pause, lose)."""

    def __init__(self, refuse_unregister: bool = False):
        self.writes: list[bytes] = []
        self.producer = None
        self.streaming = None
        self.unregistered = 0
        self.on_write = None
        self._refuse_unregister = refuse_unregister

    def registerProducer(self, producer, streaming):
        self.producer, self.streaming = producer, streaming

    def unregisterProducer(self):
        self.unregistered += 1
        if self._refuse_unregister:
            raise RuntimeError("no producer registered")
        self.producer = None

    def write(self, data):
        self.writes.append(bytes(data))
        if self.on_write is not None:
            self.on_write(data)

    def value(self) -> bytes:
        return b"".join(self.writes)


def _attached(limit=1000, first=b"SUB a 1\r\n"):
    clock = task.Clock()
    queue = OutboundQueue(limit, clock)
    transport = _Transport()
    queue.attach(transport, first)
    return queue, transport, clock


def _queue(limit=1000):
    clock = task.Clock()
    queue = OutboundQueue(limit, clock)
    transport = StringTransport()
    queue.attach(transport, b"SUB a 1\r\n")
    return queue, transport, clock


def test_outbound_queue_holds_frames_while_the_transport_is_paused_and_bounds_them():
    """Guards _Producer.pauseProducing setting `_paused` (and write() honouring it): without it the
    queue hands everything to a transport that asked it to stop, and never fills."""
    queue, transport, clock = _queue(limit=1000)
    assert transport.value() == b"SUB a 1\r\n" and transport.producer is not None
    queue.publish(b"one")
    clock.advance(0)
    assert transport.value().endswith(b"one")
    transport.producer.pauseProducing()
    accepted = 0
    with pytest.raises(OutboundBufferFullError, match="not taking data"):
        for _ in range(20):
            queue.publish(b"x" * 100)
            accepted += 1
            clock.advance(0)
    assert accepted == 10 and queue.pending_bytes == 1000
    assert transport.value().endswith(b"one")  # nothing written while paused
    transport.producer.resumeProducing()
    assert queue.pending_bytes == 0 and transport.value().endswith(b"x" * 1000)


def test_outbound_queue_keeps_publishes_not_control_frames_across_a_lost_connection():
    """Guards `if type(frame) is bytes` in OutboundQueue.detach (SUB/PING belong to the lost
    connection) and the `possibly_lost` count of written but unconfirmed publishes."""
    queue, transport, clock = _queue()
    queue.publish(b"sent")
    clock.advance(0)
    transport.producer.pauseProducing()
    queue.publish(b"kept")
    queue.control(b"PING\r\n")
    queue.detach(lost=True)
    assert queue.possibly_lost == 1
    assert queue.pending_bytes == len(b"kept")
    queue.control(b"UNSUB 1\r\n")  # no connection: dropped, not queued
    assert queue.pending_bytes == len(b"kept")
    fresh = StringTransport()
    queue.attach(fresh, b"SUB a 1\r\n")
    assert fresh.value() == b"SUB a 1\r\nkept"


def test_outbound_limit_is_inclusive_and_the_error_says_why():
    queue = OutboundQueue(10, task.Clock())
    assert queue.paused is False and queue.pending_bytes == 0 and queue.mark() == 0
    queue.publish(b"x" * 4)
    queue.publish(b"y" * 6)  # exactly at the limit: accepted
    assert queue.pending_bytes == 10
    with pytest.raises(OutboundBufferFullError) as caught:
        queue.publish(b"z")
    assert str(caught.value) == (
        "outbound buffer full (10 of 10 bytes waiting; disconnected); this 1-byte message was not queued"
    )
    assert queue.pending_bytes == 10 and queue.discard() == (2, 10)
    assert queue.pending_bytes == 0 and queue.discard() == (0, 0)
    queue.publish(b"after")  # still usable after a discard
    assert queue.pending_bytes == 5 and queue.discard() == (1, 5)


def test_outbound_full_while_attached_names_the_server():
    queue, transport, clock = _attached(limit=5)
    transport.producer.pauseProducing()
    queue.publish(b"12345")
    with pytest.raises(OutboundBufferFullError) as caught:
        queue.publish(b"67")
    assert str(caught.value) == (
        "outbound buffer full (5 of 5 bytes waiting; the server is not taking data); this 2-byte message was not queued"
    )


def test_outbound_queues_while_disconnected_and_sends_the_subscriptions_first_on_attach():
    clock = task.Clock()
    queue = OutboundQueue(1000, clock)
    queue.publish(b"PUB a 1\r\nx\r\n")
    queue.publish(b"PUB b 1\r\ny\r\n")
    assert not clock.getDelayedCalls() and queue.pending_bytes == 24 and queue.mark() == 2
    transport = _Transport()
    queue.attach(transport, b"SUB a 1\r\n")
    assert transport.streaming is True and transport.producer is not None
    assert transport.writes == [b"SUB a 1\r\n", b"PUB a 1\r\nx\r\nPUB b 1\r\ny\r\n"]
    assert queue.pending_bytes == 0 and queue.mark() == 2
    again = _Transport()
    queue.attach(again, b"")  # nothing to resubscribe: no empty write
    assert again.writes == [] and queue.mark() == 0


def test_outbound_writes_once_per_reactor_turn():
    queue, transport, clock = _attached()
    for i in range(3):
        queue.publish(b"m%d" % i)
    queue.control(b"PING\r\n")
    assert len(clock.getDelayedCalls()) == 1 and transport.writes == [b"SUB a 1\r\n"]
    clock.advance(0)
    assert transport.writes == [b"SUB a 1\r\n", b"m0m1m2PING\r\n"]
    assert not clock.getDelayedCalls()
    queue.publish(b"solo")
    clock.advance(0)
    assert transport.writes[-1] == b"solo"
    queue.control(b"PONG\r\n")  # a control frame alone schedules the write too
    assert len(clock.getDelayedCalls()) == 1
    queue.write()  # written early (a close): the scheduled write is cancelled
    assert transport.writes[-1] == b"PONG\r\n" and not clock.getDelayedCalls()


def test_outbound_schedules_nothing_while_paused_and_resumes_by_writing():
    queue, transport, clock = _attached()
    transport.producer.pauseProducing()
    assert queue.paused
    queue.publish(b"p")
    queue.control(b"PING\r\n")
    assert not clock.getDelayedCalls()
    queue.write()  # not while paused, however small
    assert transport.writes == [b"SUB a 1\r\n"] and queue.pending_bytes == 7
    transport.producer.resumeProducing()
    assert queue.paused is False and transport.writes[-1] == b"pPING\r\n"
    transport.producer.stopProducing()  # the connection's loss arrives elsewhere: nothing changes
    assert queue.paused is False
    transport.producer.pauseProducing()
    queue.detach(lost=False)
    queue.attach(_Transport(), b"")  # a new connection starts unpaused
    assert queue.paused is False


def test_a_stale_producer_changes_nothing():
    queue, old, clock = _attached()
    stale = old.producer
    queue.detach(lost=False)
    assert old.unregistered == 1 and old.producer is None
    new = _Transport()
    queue.attach(new, b"")
    stale.pauseProducing()
    assert not queue.paused
    queue.publish(b"x")
    new.producer.pauseProducing()
    stale.resumeProducing()
    assert queue.paused and queue.pending_bytes == 1
    new.producer.resumeProducing()
    assert new.writes == [b"x"] and old.writes == [b"SUB a 1\r\n"]


def test_outbound_writes_a_backlog_in_chunks_of_write_chunk():
    queue, transport, clock = _attached(limit=10 * WRITE_CHUNK)
    transport.producer.pauseProducing()
    for _ in range(200):
        queue.publish(b"x" * 1024)
    queue.control(b"PING\r\n")
    transport.writes.clear()
    transport.producer.resumeProducing()
    assert [len(w) for w in transport.writes] == [WRITE_CHUNK, WRITE_CHUNK, WRITE_CHUNK, 8 * 1024 + 6]
    assert queue.pending_bytes == 0 and queue.mark() == 200


def test_outbound_writes_exactly_write_chunk_in_one_go_and_a_frame_larger_than_it_whole():
    queue, transport, clock = _attached(limit=10 * WRITE_CHUNK)
    transport.producer.pauseProducing()
    queue.publish(b"a" * (WRITE_CHUNK - 100))
    queue.publish(b"b" * 100)
    transport.writes.clear()
    transport.producer.resumeProducing()
    assert [len(w) for w in transport.writes] == [WRITE_CHUNK]
    transport.producer.pauseProducing()
    queue.publish(b"c" * (3 * WRITE_CHUNK))
    queue.publish(b"d")
    transport.writes.clear()
    transport.producer.resumeProducing()
    assert [len(w) for w in transport.writes] == [3 * WRITE_CHUNK, 1]


def test_outbound_stops_writing_when_a_write_pauses_it():
    queue, transport, clock = _attached(limit=10 * WRITE_CHUNK)
    transport.producer.pauseProducing()
    for _ in range(4):
        queue.publish(b"x" * WRITE_CHUNK)
    transport.writes.clear()
    transport.on_write = lambda data: transport.producer.pauseProducing()
    transport.producer.resumeProducing()
    assert [len(w) for w in transport.writes] == [WRITE_CHUNK]
    assert queue.pending_bytes == 3 * WRITE_CHUNK and queue.mark() == 4
    transport.on_write = None
    transport.producer.resumeProducing()
    assert [len(w) for w in transport.writes] == [WRITE_CHUNK] * 4 and queue.pending_bytes == 0


def test_outbound_stops_writing_when_a_write_loses_the_connection():
    queue, transport, clock = _attached(limit=10 * WRITE_CHUNK)
    transport.producer.pauseProducing()
    for _ in range(3):
        queue.publish(b"x" * WRITE_CHUNK)
    transport.writes.clear()
    transport.on_write = lambda data: queue.detach(lost=True)
    transport.producer.resumeProducing()
    assert [len(w) for w in transport.writes] == [WRITE_CHUNK]
    assert queue.possibly_lost == 1 and queue.pending_bytes == 2 * WRITE_CHUNK


def test_outbound_mark_and_confirm_count_publishes_only():
    queue, transport, clock = _attached()
    assert queue.mark() == 0
    queue.publish(b"a")
    queue.control(b"PING\r\n")
    queue.publish(b"b")
    assert queue.mark() == 2
    clock.advance(0)
    assert queue.mark() == 2
    queue.publish(b"c")
    assert queue.mark() == 3
    clock.advance(0)
    queue.confirm(2)
    queue.confirm(1)  # an older mark never lowers what is confirmed
    queue.detach(lost=True)
    assert queue.possibly_lost == 1
    queue.attach(_Transport(), b"")
    queue.publish(b"d")
    clock.advance(0)
    queue.detach(lost=False)  # closed by us: nothing counted as possibly lost
    assert queue.possibly_lost == 1
    queue.attach(_Transport(), b"")
    queue.publish(b"e")
    clock.advance(0)
    queue.detach(lost=True)  # the counts start over on each connection
    assert queue.possibly_lost == 2


def test_outbound_detach_cancels_the_pending_write_and_tolerates_a_dropped_producer():
    clock = task.Clock()
    queue = OutboundQueue(1000, clock)
    transport = _Transport(refuse_unregister=True)
    queue.attach(transport, b"")
    queue.publish(b"p")
    queue.control(b"SUB x 1\r\n")
    assert len(clock.getDelayedCalls()) == 1
    queue.detach(lost=True)
    assert transport.unregistered == 1 and not clock.getDelayedCalls()
    assert queue.pending_bytes == 1 and queue.mark() == 1 and queue.possibly_lost == 0
    queue.write()  # no transport: nothing happens
    assert transport.writes == [] and queue.pending_bytes == 1
    queue.detach(lost=False)  # twice: no transport to unregister from
    assert transport.unregistered == 1
    never_attached = OutboundQueue(10, clock)
    never_attached.detach(lost=True)
    assert never_attached.possibly_lost == 0


def test_control_frames_are_marked_as_such():
    queue, transport, clock = _attached()
    queue.control(b"PING\r\n")
    assert [type(f) for f in queue._frames] == [Control]


# --- requests.py ------------------------------------------------------------------------------


class _Subscriber:
    def __init__(self):
        self.calls: list = []

    def __call__(self, subject, callback):
        self.calls.append((subject, callback))
        return f"subscription-{len(self.calls)}"


def _mux():
    clock = task.Clock()
    subscriber = _Subscriber()
    return RequestMux(subscriber, clock), subscriber, clock


def test_new_inbox_is_random_and_unique():
    inboxes = {new_inbox() for _ in range(100)}
    assert len(inboxes) == 100
    assert all(i.startswith("_INBOX.") and len(i) == len("_INBOX.") + 22 for i in inboxes)


def test_requests_share_one_inbox_subscription_with_a_token_each():
    mux, subscriber, clock = _mux()
    assert mux.subscription is None and len(mux) == 0
    first, d1 = mux.open("svc.a", 2)
    second, d2 = mux.open("svc.b", 2)
    [(pattern, callback)] = subscriber.calls
    prefix = pattern[:-1]
    assert pattern.endswith(".*") and pattern.startswith("_INBOX.") and mux.subscription == "subscription-1"
    assert (first, second) == (prefix + "1", prefix + "2")
    assert len(mux) == 2
    reply = Msg(second, 9, None, b"b")
    callback(reply)
    assert result_of(d2) is reply and not d1.called and len(mux) == 1
    callback(Msg(second, 9, None, b"again"))  # answered already: ignored
    callback(Msg(prefix + "77", 9, None, b"stranger"))
    assert not d1.called and len(mux) == 1
    callback(Msg(first, 9, None, b"a"))
    assert result_of(d1).data == b"a" and len(mux) == 0


def test_no_responders_fails_the_request_but_a_503_with_a_body_is_a_reply():
    mux, subscriber, clock = _mux()
    subject, waiting = mux.open("svc.none", 2)
    [(_, callback)] = subscriber.calls
    callback(Msg(subject, 1, None, b"", status=503))
    error = failure_of(waiting)
    assert isinstance(error, NoRespondersError) and str(error) == "no responders for request on 'svc.none'"
    subject, waiting = mux.open("svc.odd", 2)
    odd = Msg(subject, 1, None, b"body", status=503)
    callback(odd)
    assert result_of(waiting) is odd
    subject, waiting = mux.open("svc.other", 2)
    other = Msg(subject, 1, None, b"", status=408)
    callback(other)
    assert result_of(waiting) is other


def test_a_request_times_out_with_nats_timeout_error_and_is_forgotten():
    mux, subscriber, clock = _mux()
    subject, waiting = mux.open("svc.slow", 1.5)
    clock.advance(1.4)
    assert not waiting.called
    clock.advance(0.1)
    error = failure_of(waiting)
    assert isinstance(error, NatsTimeoutError) and str(error) == "no reply to request on 'svc.slow' within 1.5s"
    assert len(mux) == 0
    [(_, callback)] = subscriber.calls
    callback(Msg(subject, 1, None, b"late"))  # too late: ignored


def test_a_cancelled_request_is_forgotten():
    mux, subscriber, clock = _mux()
    subject, waiting = mux.open("svc", 2)
    waiting.cancel()
    assert isinstance(failure_of(waiting), defer.CancelledError) and len(mux) == 0


def test_forget_stops_waiting_and_its_timeout_quietly():
    """A request whose publish failed: its Deferred is settled now (cancelled, the cancellation
    swallowed), so no 'Unhandled error in Deferred' timeout turns up seconds later."""
    mux, subscriber, clock = _mux()
    kept_subject, kept = mux.open("svc", 2)
    subject, waiting = mux.open("svc", 2)
    mux.forget(subject)
    assert len(mux) == 1 and waiting.called
    results = []
    waiting.addBoth(results.append)
    assert results == [None]  # settled without a failure left for the garbage collector to report
    mux.forget(subject)  # twice: harmless
    assert len(mux) == 1
    [(_, callback)] = subscriber.calls
    callback(Msg(subject, 1, None, b"x"))
    assert not kept.called
    clock.advance(2)
    assert isinstance(failure_of(kept), NatsTimeoutError)


def test_fail_all_fails_every_waiting_request_once():
    mux, subscriber, clock = _mux()
    waiting = [mux.open(f"svc.{i}", 2)[1] for i in range(3)]
    error = ConnectionClosedError("closed")
    mux.fail_all(error)
    assert [failure_of(d) for d in waiting] == [error] * 3 and len(mux) == 0
    mux.fail_all(error)  # nothing left to fail
    clock.advance(5)  # their timeouts are gone with them


def test_timeout_as_passes_results_through_and_renames_the_cancellation():
    hook = timeout_as("the thing")
    assert hook("result", 3) == "result"
    with pytest.raises(NatsTimeoutError, match=r"^the thing within 3s$"):
        hook(Failure(defer.CancelledError()), 3)
    with pytest.raises(NatsTimeoutError, match=r"^the thing within 0.25s$"):
        hook(Failure(defer.CancelledError()), 0.25)


# --- repeats.py -------------------------------------------------------------------------------


class _Log:
    def __init__(self):
        self.lines: list = []

    def warn(self, text, **fields):
        self.lines.append((text, fields))


def test_repeat_summary_logs_the_first_then_one_line_per_interval():
    """Guards RepeatSummary.add counting repeats instead of logging each, and flush() re-arming
    its timer only when repeats came (`if again`)."""
    log, clock = _Log(), task.Clock()
    summary = RepeatSummary(log, "{n} {subject}", clock, interval=60)
    for i in range(1000):
        summary.add(subject=f"s{i}")
    assert log.lines == [("{n} {subject}", {"n": 1, "subject": "s0"})]
    clock.advance(59.9)
    assert len(log.lines) == 1
    clock.advance(0.1)
    assert log.lines[1:] == [("{n} {subject}", {"n": 999, "subject": "s999"})]
    assert [c.getTime() for c in clock.getDelayedCalls()] == [120]  # repeats came: re-armed
    clock.advance(60)  # nothing new: no line, and the timer stops
    assert len(log.lines) == 2 and not clock.getDelayedCalls()
    summary.add(subject="again")  # after a quiet interval: logged at once
    assert log.lines[-1] == ("{n} {subject}", {"n": 1, "subject": "again"})
    summary.add(subject="last")
    summary.flush(again=False)
    assert log.lines[-1] == ("{n} {subject}", {"n": 1, "subject": "last"}) and not clock.getDelayedCalls()
    summary.flush(again=False)  # nothing counted since: no line
    assert len(log.lines) == 4
    summary.add(subject="after")  # flushed for good, yet a new one still gets its first line
    assert log.lines[-1] == ("{n} {subject}", {"n": 1, "subject": "after"})


def test_repeat_summary_interval_defaults_to_a_minute_and_flush_keeps_counting():
    log, clock = _Log(), task.Clock()
    summary = RepeatSummary(log, "{n}", clock)
    summary.add(k=1)
    assert [c.getTime() for c in clock.getDelayedCalls()] == [60.0]
    summary.add(k=2)
    summary.add(k=3)
    clock.advance(10)
    summary.flush()  # early, but repeats keep coming: the timer is re-armed from now
    assert log.lines[-1] == ("{n}", {"n": 2, "k": 3})
    assert [c.getTime() for c in clock.getDelayedCalls()] == [70.0]
    summary.add(k=4)
    assert len(log.lines) == 2  # counted, not logged in full
    clock.advance(60)
    assert log.lines[-1] == ("{n}", {"n": 1, "k": 4})


# --- client.py / errors.py: pure decisions ----------------------------------------------------


def test_backoff_never_overflows_however_long_the_failures_last():
    """Guards `min(-untried, 32)` in backoff_delay: without it 2**9999 overflows a float."""
    rng = random.Random(0)
    assert backoff_delay(10_000, 1, initial=0.1, maximum=5.0, jitter=0.0, rng=rng) == 5.0
    assert backoff_delay(2, 3, initial=0.1, maximum=5.0, jitter=0.5, rng=rng) == 0.0  # one server untried


@pytest.mark.parametrize(
    ("message", "kind", "fatal"),
    [
        ("Maximum Subscriptions Exceeded", MaxSubscriptionsError, False),
        ("maximum subscriptions exceeded", MaxSubscriptionsError, False),
        ("Permissions Violation for Subscription to \"a.>\"", PermissionViolationError, False),
        ("Invalid Subject", ServerError, False),
        ("Unknown Protocol Operation", ServerError, True),
        ("some future error", ServerError, True),
    ],
)
def test_server_errors_that_keep_the_connection_are_not_fatal(message, kind, fatal):
    """Guards the MaxSubscriptionsError and per-operation lines of classify_server_error, and
    the default (unknown -ERR texts are fatal: the server closes, we reconnect)."""
    error = classify_server_error(message, "nats://h:1")
    assert type(error) is kind and error.fatal is fatal


# --- connection.py: handshake and keepalive ---------------------------------------------------


class _Handler:
    def __init__(self):
        self.lost: list = []

    def deliver(self, msg):
        pass

    def server_info(self, conn, options):
        pass

    def server_error(self, conn, message):
        pass

    def connection_lost(self, conn, reason):
        self.lost.append(reason)


class _StraightOut:
    """A connection's outbox that writes each frame at once and confirms nothing."""

    def __init__(self, transport):
        self.control = transport.write

    def mark(self):
        return 0

    def confirm(self, mark):
        pass


def _connection(clock, interval=10.0, max_outstanding=2):
    from bridge.nats.connection import Connection, ConnectionSettings

    settings = ConnectionSettings(msg_class=Msg, connect_options=lambda info, server, tls: {"verbose": False},
                                  tls_context=lambda host: None, tls_configured=False, tls_first=False,
                                  ping_interval=interval, max_outstanding_pings=max_outstanding)
    transport = StringTransport()
    conn = Connection(parse_server_url("nats://127.0.0.1:4222"), settings, _Handler(), _StraightOut(transport), clock)
    conn.makeConnection(transport)
    return conn, transport


def test_handshake_completes_only_on_the_pong():
    """Guards the `isinstance(event, wire.Pong)` branch of Connection._process_handshake."""
    clock = task.Clock()
    conn, transport = _connection(clock)
    conn.dataReceived(b'INFO {"server_id":"x","max_payload":1048576}\r\n')
    assert transport.value() == b'CONNECT {"verbose":false}\r\nPING\r\n'
    assert not conn.handshake.called
    conn.dataReceived(b"PING\r\n")  # the server's own PING is answered, and is not our PONG
    assert transport.value().endswith(b"PONG\r\n") and not conn.handshake.called
    conn.dataReceived(b"PONG\r\n")
    assert conn.handshake.result is conn


def test_keepalive_gives_the_last_ping_half_an_interval():
    """Guards Keepalive._tick's `_deadline = callLater(interval / 2, ...)`: without it a silent
    server is noticed a whole interval later (at 30 s, not 25 s, with 10 s x 2)."""
    clock = task.Clock()
    conn, transport = _connection(clock, interval=10.0, max_outstanding=2)
    conn.dataReceived(b'INFO {"server_id":"x"}\r\n')
    conn.dataReceived(b"PONG\r\n")
    transport.clear()
    clock.advance(10)
    assert transport.value() == b"PING\r\n"
    conn.dataReceived(b"PONG\r\n")  # answered: the count starts over
    clock.advance(10)
    clock.advance(10)
    assert transport.value().count(b"PING\r\n") == 3 and not transport.disconnecting
    clock.advance(4.9)
    assert not transport.disconnecting
    clock.advance(0.2)
    assert transport.disconnecting  # 25 s after the last answer, not 30


# --- client.py: drain, in memory --------------------------------------------------------------
# A Client on a task.Clock, handed a Connection over a StringTransport as if its ClientService had
# dialled it: what drain writes, and when it finishes, byte by byte.


def _connected_client():
    clock = task.Clock()
    client = Client(ClientOptions("nats://127.0.0.1:4222", randomize=False), reactor=clock)
    conn = client._new_connection(client._pool.next())
    transport = StringTransport()
    conn.makeConnection(transport)
    conn.dataReceived(b'INFO {"server_id":"x","headers":true,"max_payload":1048576}\r\n')
    conn.dataReceived(b"PONG\r\n")
    client._connection_ready(conn)
    client.status = Status.CONNECTED
    transport.clear()
    return client, conn, transport, clock


def test_drain_unsubscribes_waits_for_messages_and_callbacks_then_flushes_and_closes():
    client, conn, transport, clock = _connected_client()
    app = defer.Deferred()
    got = []

    def callback(msg):
        got.append(msg.data)
        return app

    client.subscribe("a", callback)
    clock.advance(0)
    assert transport.value() == b"SUB a 1\r\n"
    transport.clear()
    drained = client.drain()
    assert client.status is Status.DRAINING
    clock.advance(0)
    assert transport.value() == b"UNSUB 1\r\nPING\r\n"
    transport.clear()
    conn.dataReceived(b"MSG a 1 2\r\nhi\r\n")  # sent before our UNSUB reached the server
    assert got == [b"hi"]
    conn.dataReceived(b"PONG\r\n")
    clock.advance(0)
    assert transport.value() == b"PING\r\n"  # a second round trip: another client's routing may lag
    transport.clear()
    conn.dataReceived(b"MSG a 1 2\r\nho\r\n")  # matched before the UNSUB, handed over after the PONG
    assert got == [b"hi", b"ho"]
    conn.dataReceived(b"PONG\r\n")
    clock.advance(0)
    assert not drained.called and transport.value() == b"" and not transport.disconnecting
    app.callback(None)  # the callback finishes: what it published is flushed, then we close
    clock.advance(0)
    assert transport.value() == b"PING\r\n" and not drained.called
    conn.dataReceived(b"PONG\r\n")
    assert result_of(drained) is None
    assert client.status is Status.CLOSED and transport.disconnecting


def test_drain_keeps_the_request_inbox_until_the_callbacks_are_done():
    client, conn, transport, clock = _connected_client()
    answers = []

    async def callback(msg):
        reply = await client.request("svc", b"q")
        answers.append(reply.data)

    client.subscribe("a", callback)
    earlier = client.request("svc", b"first")  # opens the shared inbox, sid 2
    clock.advance(0)
    inbox = transport.value().split(b"PUB svc ")[1].split(b" ")[0]
    assert transport.value() == b"SUB a 1\r\nSUB _INBOX.%s* 2\r\nPUB svc %s 5\r\nfirst\r\n" % (inbox[7:-1], inbox)
    conn.dataReceived(b"MSG %s 2 2\r\nok\r\n" % inbox)
    assert result_of(earlier).data == b"ok"
    transport.clear()
    drained = client.drain()
    clock.advance(0)
    assert transport.value() == b"UNSUB 1\r\nPING\r\n"  # not the inbox: callbacks may still need it
    conn.dataReceived(b"MSG a 1 2\r\nhi\r\n")
    clock.advance(0)
    second = inbox[:-1] + b"2"
    assert transport.value() == b"UNSUB 1\r\nPING\r\nPUB svc %s 1\r\nq\r\n" % second
    transport.clear()
    conn.dataReceived(b"PONG\r\n")  # the drain's first round trip; a second one follows
    clock.advance(0)
    assert transport.value() == b"PING\r\n"
    transport.clear()
    conn.dataReceived(b"PONG\r\n")  # subscription 1 is gone now
    conn.dataReceived(b"MSG %s 2 6\r\nanswer\r\n" % second)
    assert answers == [b"answer"]
    clock.advance(0)
    assert transport.value() == b"UNSUB 2\r\nPING\r\n"
    conn.dataReceived(b"PONG\r\n")
    assert result_of(drained) is None and client.status is Status.CLOSED


def test_drain_times_out_on_a_callback_that_never_finishes_and_closes_anyway():
    client, conn, transport, clock = _connected_client()
    app = defer.Deferred()
    client.subscribe("a", lambda msg: app)
    clock.advance(0)
    drained = client.drain(timeout=3)
    clock.advance(0)
    conn.dataReceived(b"MSG a 1 0\r\n\r\nPONG\r\n")
    clock.advance(2.9)
    assert not drained.called
    clock.advance(0.1)
    error = failure_of(drained)
    assert isinstance(error, NatsTimeoutError) and str(error) == "drain not finished within 3s"
    assert client.status is Status.CLOSED and not app.called


def test_cancelling_drain_leaves_the_applications_deferred_alone():
    client, conn, transport, clock = _connected_client()
    app = defer.Deferred()
    client.subscribe("a", lambda msg: app)
    clock.advance(0)
    drained = client.drain()
    clock.advance(0)
    conn.dataReceived(b"MSG a 1 0\r\n\r\nPONG\r\n")
    drained.cancel()
    assert isinstance(failure_of(drained), defer.CancelledError)
    assert not app.called and client.status is Status.CLOSED
    app.callback("done")
    assert result_of(app) == "done"


def test_drain_waits_for_the_callback_of_a_subscription_that_reached_max_msgs():
    client, conn, transport, clock = _connected_client()
    app = defer.Deferred()
    client.subscribe("a", lambda msg: app, max_msgs=1)
    clock.advance(0)
    assert transport.value() == b"SUB a 1\r\nUNSUB 1 1\r\n"
    conn.dataReceived(b"MSG a 1 0\r\n\r\n")  # its last message: the subscription is gone
    drained = client.drain()
    clock.advance(0)
    conn.dataReceived(b"PONG\r\n")
    clock.advance(0)
    conn.dataReceived(b"PONG\r\n")  # the drain's two round trips
    assert not drained.called
    app.callback(None)
    clock.advance(0)
    conn.dataReceived(b"PONG\r\n")
    assert result_of(drained) is None


def test_drain_while_disconnected_does_not_wait_for_a_pong():
    client, conn, transport, clock = _connected_client()
    client.subscribe("a", lambda msg: None)
    client._connection_lost(conn, ConnectionClosedError("gone"))
    drained = client.drain()
    assert result_of(drained) is None and client.status is Status.CLOSED


def test_a_second_drain_or_a_drain_after_close_just_closes():
    client, conn, transport, clock = _connected_client()
    first = client.drain()
    second = client.drain()
    assert client.status is Status.CLOSED and result_of(second) is None
    assert not first.called or result_of(first) is None

