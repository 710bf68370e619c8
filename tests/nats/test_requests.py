"""requests.py in memory: the request mux on one shared inbox, its timeouts and failures."""

from __future__ import annotations

import pytest
from twisted.internet import defer, task
from twisted.python.failure import Failure

from bridge.nats import ConnectionClosedError, NatsTimeoutError
from bridge.nats.errors import NoRespondersError, PermissionViolationError
from bridge.nats.requests import RequestMux, new_inbox, timeout_as
from bridge.nats.subscriptions import Msg
from tests.nats.inmemory import failure_of, result_of


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


def test_a_refused_publish_fails_the_requests_on_that_subject_at_once():
    mux, subscriber, clock = _mux()
    _, denied = mux.open("$JS.API.STREAM.CREATE.x", 2)
    _, also_denied = mux.open("$JS.API.STREAM.CREATE.x", 2)
    _, other = mux.open("$JS.API.INFO", 2)
    error = PermissionViolationError('Permissions Violation for Publish to "$JS.API.STREAM.CREATE.x"')
    mux.refused(error)
    assert failure_of(denied) is error and failure_of(also_denied) is error
    assert not other.called and len(mux) == 1
    clock.advance(2)
    assert isinstance(failure_of(other), NatsTimeoutError)


def test_a_refused_inbox_subscription_fails_every_request_and_another_one_none():
    mux, subscriber, clock = _mux()
    reply_subject, waiting = mux.open("svc.a", 2)
    inbox = subscriber.calls[0][0]
    mux.refused(PermissionViolationError('Permissions Violation for Subscription to "other.>"'))
    assert not waiting.called
    error = PermissionViolationError(f'Permissions Violation for Subscription to "{inbox}"')
    mux.refused(error)
    assert failure_of(waiting) is error and len(mux) == 0


def test_a_permission_error_without_a_subject_fails_nothing():
    mux, _, _ = _mux()
    _, waiting = mux.open("svc.a", 2)
    mux.refused(PermissionViolationError("Permissions Violation"))
    assert not waiting.called and len(mux) == 1
