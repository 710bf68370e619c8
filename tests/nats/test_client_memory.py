"""client.py in memory: the backoff policy, and `Client.drain` over a StringTransport with a
`task.Clock` as its reactor. The behaviours against real nats-server processes are in
tests/nats/test_client_hardening.py."""

from __future__ import annotations

import random

from twisted.internet import defer, task
from twisted.internet.testing import StringTransport

from bridge.nats import Client, ConnectionClosedError, NatsTimeoutError
from bridge.nats.client import Status, backoff_delay
from bridge.nats.options import ClientOptions
from tests.nats.inmemory import failure_of, result_of


# --- client.py: the backoff policy ------------------------------------------------------------


# --- client.py / errors.py: pure decisions ----------------------------------------------------


def test_backoff_never_overflows_however_long_the_failures_last():
    """Guards `min(-untried, 32)` in backoff_delay: without it 2**9999 overflows a float."""
    rng = random.Random(0)
    assert backoff_delay(10_000, 1, initial=0.1, maximum=5.0, jitter=0.0, rng=rng) == 5.0
    assert backoff_delay(2, 3, initial=0.1, maximum=5.0, jitter=0.5, rng=rng) == 0.0  # one server untried


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


# --- client.py: batch subscriptions, in memory -------------------------------------------------


def _msg(subject: str, sid: int, payload: bytes) -> bytes:
    return b"MSG %s %d %d\r\n%s\r\n" % (subject.encode(), sid, len(payload), payload)


def test_a_batch_subscription_gets_each_reads_consecutive_messages_as_one_list_in_order():
    client, conn, _transport, _clock = _connected_client()
    calls = []
    client.subscribe("a", lambda msgs: calls.append(("a", [msg.data for msg in msgs])), batches=True)
    client.subscribe("b", lambda msg: calls.append(("b", msg.data)))
    conn.dataReceived(_msg("a", 1, b"1") + _msg("a", 1, b"2") + _msg("b", 2, b"x") + _msg("a", 1, b"3"))
    conn.dataReceived(_msg("a", 1, b"4"))
    assert calls == [("a", [b"1", b"2"]), ("b", b"x"), ("a", [b"3"]), ("a", [b"4"])]
    assert client.stats.msgs_in == 5


def test_two_batch_subscriptions_in_one_read_alternate_runs():
    client, conn, _transport, _clock = _connected_client()
    calls = []
    for subject in ("a", "b"):
        client.subscribe(subject, lambda msgs: calls.append([msg.data for msg in msgs]), batches=True)
    conn.dataReceived(_msg("a", 1, b"1") + _msg("b", 2, b"2") + _msg("b", 2, b"3") + _msg("a", 1, b"4"))
    assert calls == [[b"1"], [b"2", b"3"], [b"4"]]


def test_a_run_reaches_its_callback_before_a_pong_of_the_same_read_fires_a_flush():
    client, conn, _transport, clock = _connected_client()
    seen = []
    client.subscribe("a", lambda msgs: seen.append(len(msgs)), batches=True)
    flushed = client.flush()
    clock.advance(0)
    flushed.addCallback(lambda _: seen.append("flushed"))
    conn.dataReceived(_msg("a", 1, b"1") + _msg("a", 1, b"2") + b"PONG\r\n")
    assert seen == [2, "flushed"]


def test_a_batch_is_capped_at_max_batch_messages():
    from bridge.nats.client import MAX_BATCH

    client, conn, _transport, _clock = _connected_client()
    sizes = []
    client.subscribe("a", lambda msgs: sizes.append(len(msgs)), batches=True)
    conn.dataReceived(_msg("a", 1, b"x") * (MAX_BATCH + 3))
    assert sizes == [MAX_BATCH, 3]


def test_max_msgs_ends_a_batch_subscriptions_run_at_the_limit():
    client, conn, _transport, _clock = _connected_client()
    got = []
    client.subscribe("a", lambda msgs: got.extend(msg.data for msg in msgs), max_msgs=2, batches=True)
    conn.dataReceived(_msg("a", 1, b"1") + _msg("a", 1, b"2") + _msg("a", 1, b"3"))
    assert got == [b"1", b"2"]


def test_a_client_closed_by_a_callback_hands_on_no_later_run():
    client, conn, _transport, _clock = _connected_client()
    got = []

    def close_on_first(msg):
        got.append(msg.data)
        client.close()

    client.subscribe("a", lambda msgs: got.extend(msg.data for msg in msgs), batches=True)
    client.subscribe("b", close_on_first)
    conn.dataReceived(_msg("a", 1, b"1") + _msg("b", 2, b"x") + _msg("a", 1, b"2"))
    assert got == [b"1", b"x"]


def test_set_callback_switches_a_subscription_between_single_messages_and_runs_for_later_reads():
    client, conn, _transport, _clock = _connected_client()
    calls = []
    sub = client.subscribe("a", lambda msg: calls.append(msg.data))
    conn.dataReceived(_msg("a", 1, b"1") + _msg("a", 1, b"2"))
    sub.set_callback(lambda msgs: calls.append([msg.data for msg in msgs]), batches=True)
    conn.dataReceived(_msg("a", 1, b"3") + _msg("a", 1, b"4"))
    assert calls == [b"1", b"2", [b"3", b"4"]]


def test_a_malformed_message_inside_a_run_costs_only_itself():
    """An HMSG with an unreadable header block between two good messages: the run stays one batch
    in order, the bad one is delivered with its `problem` and counted, the connection stays up."""
    client, conn, _transport, _clock = _connected_client()
    batches = []
    client.subscribe("a", lambda msgs: batches.append([(msg.data, msg.problem is not None) for msg in msgs]),
                     batches=True)
    header = b"NOT A HEADER LINE\r\n\r\n"
    bad = b"HMSG a 1 %d %d\r\n%sbad\r\n" % (len(header), len(header) + 3, header)
    conn.dataReceived(_msg("a", 1, b"1") + bad + _msg("a", 1, b"2"))
    conn.dataReceived(_msg("a", 1, b"3"))
    assert batches == [[(b"1", False), (b"bad", True), (b"2", False)], [(b"3", False)]]
    assert client.stats.malformed_msgs == 1 and client.is_connected
