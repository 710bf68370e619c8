"""subscriptions.py in memory: the subscription table, max_msgs across reconnects, callbacks and their results."""

from __future__ import annotations

import pytest
from twisted.internet import defer

from bridge.nats.errors import NatsError
from bridge.nats.subscriptions import Msg, Subscription, Subscriptions
from tests.nats.inmemory import logged, texts, failure_of, result_of


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


def test_a_subscription_takes_single_messages_until_set_callback_asks_for_batches():
    table, _, unsubscribe = _table()
    sub = table.add("a", None, print, None, unsubscribe)
    assert sub.batches is False
    got = []
    sub.set_callback(got.append, batches=True)
    assert (sub.callback, sub.batches) == (got.append, True)
    table.run_callback(sub, ["m1", "m2"])
    assert got == [["m1", "m2"]]
    sub.set_callback(print)
    assert (sub.callback, sub.batches) == (print, False)


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
