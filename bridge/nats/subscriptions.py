"""Subscription bookkeeping: sids, `max_msgs` across reconnects, and callbacks still running.

The invariant kept here: a sid is in the table exactly while the server may still send messages
for it that we want; callbacks that returned a Deferred or coroutine stay in `in_flight` until
they finish, whether or not their subscription still exists, so `drain()` can wait for them.
"""

from __future__ import annotations

import inspect
from typing import Callable

from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure

from bridge.nats import protocol as wire
from bridge.nats.errors import NatsError

log = Logger()


class Msg(wire.Msg):
    """A received message: `subject`, `reply`, `data` (alias `payload`), `headers`, `status`,
    and `problem` (what was wrong inside it, e.g. an unreadable header line, or None)."""

    __slots__ = ()

    def respond(self, payload: bytes = b"", headers=None) -> None:
        if not self.reply:
            raise NatsError(f"message on {self.subject!r} has no reply subject to respond to")
        self.client.publish(self.reply, payload, headers=headers)


class Subscription:
    """Handle returned by `Client.subscribe`; counts deliveries to honour `max_msgs` across reconnects."""

    def __init__(self, table: "Subscriptions", sid: int, subject: str, queue: str | None, callback,
                 max_msgs: int | None, unsubscribe: Callable, drain: Callable | None = None):
        self._table = table
        self._unsubscribe = unsubscribe
        self._drain = drain
        self.sid = sid
        self.subject = subject
        self.queue = queue
        self.callback = callback
        self.batches = False  # the callback takes a list of messages (`Client.subscribe(batches=True)`)
        self.max_msgs = max_msgs
        self.delivered = 0
        # Deliveries counted before the SUB was (re)sent on the current connection: the server
        # counts `UNSUB <sid> <max>` from its SUB, we count from the first subscribe.
        self.delivered_at_sub = 0

    @property
    def is_active(self) -> bool:
        return self._table.get(self.sid) is self

    def unsubscribe(self, max_msgs: int | None = None) -> None:
        self._unsubscribe(self, max_msgs)

    def set_callback(self, callback, batches: bool = False) -> None:
        """Deliver the messages of later reads to `callback` instead, as lists if `batches`
        (see `Client.subscribe`)."""
        self.callback = callback
        self.batches = batches

    def drain(self, timeout: float = 2.0):
        """`Client.drain_subscription(self)`: stop without losing messages already sent to it."""
        return self._drain(self, timeout)

    def __repr__(self) -> str:
        queue = f" queue={self.queue!r}" if self.queue else ""
        return f"<Subscription sid={self.sid} {self.subject!r}{queue} delivered={self.delivered}>"


class Subscriptions:
    """The client's subscriptions by sid, and the callbacks of any of them still running."""

    def __init__(self):
        self._subs: dict[int, Subscription] = {}
        self._next_sid = 1
        self.in_flight: set[defer.Deferred] = set()

    def add(self, subject: str, queue: str | None, callback, max_msgs: int | None, unsubscribe,
            drain=None) -> Subscription:
        sub = Subscription(self, self._next_sid, subject, queue, callback, max_msgs, unsubscribe, drain)
        self._next_sid += 1
        self._subs[sub.sid] = sub
        return sub

    def get(self, sid: int) -> Subscription | None:
        return self._subs.get(sid)

    def remove(self, sub: Subscription) -> None:
        if self._subs.get(sub.sid) is sub:
            del self._subs[sub.sid]

    def all(self) -> list[Subscription]:
        return list(self._subs.values())

    def __len__(self) -> int:
        return len(self._subs)

    def sub_frames(self, sub: Subscription) -> bytes:
        """SUB (and UNSUB with what is left of `max_msgs`) for a new connection."""
        sub.delivered_at_sub = sub.delivered
        frame = wire.encode_sub(sub.subject, sub.sid, sub.queue)
        if sub.max_msgs is not None:
            frame += wire.encode_unsub(sub.sid, sub.max_msgs - sub.delivered)
        return frame

    def resubscribe_frames(self) -> bytes:
        return b"".join(self.sub_frames(sub) for sub in self._subs.values())

    def receive(self, msg: Msg) -> Subscription | None:
        """Count `msg` against its subscription; None if that subscription is gone."""
        sub = self._subs.get(msg.sid)
        if sub is None:
            return None  # unsubscribed while the message was in flight
        sub.delivered += 1
        if sub.max_msgs is not None and sub.delivered >= sub.max_msgs:
            del self._subs[sub.sid]  # the server dropped it too (UNSUB with max)
        return sub

    def run_callback(self, sub: Subscription, msg_or_batch) -> None:
        try:
            result = sub.callback(msg_or_batch)
        except Exception:
            log.failure("callback for {subject!r} raised", subject=sub.subject)
            return
        if result is not None:
            self._track(sub, result)

    def _track(self, sub: Subscription, result) -> None:
        if inspect.iscoroutine(result):
            result = defer.Deferred.fromCoroutine(result)
        if not isinstance(result, defer.Deferred):
            return
        if not result.called:
            self.in_flight.add(result)

            def finished(value):
                self.in_flight.discard(result)
                return value

            result.addBoth(finished)
        result.addErrback(_log_callback_failure, sub)

    def callbacks_done(self) -> defer.Deferred:
        """Fires when every callback now in flight has finished. Cancelling it cancels nothing
        of the application's: it only stops waiting."""
        pending = list(self.in_flight)
        done: defer.Deferred = defer.Deferred()
        if not pending:
            done.callback(None)
            return done
        remaining = [len(pending)]

        def one_finished(value):
            remaining[0] -= 1
            if remaining[0] == 0 and not done.called:
                done.callback(None)
            return value

        for deferred in pending:
            deferred.addBoth(one_finished)
        return done


def _log_callback_failure(failure: Failure, sub: Subscription) -> None:
    log.failure("callback for {subject!r} failed", failure, subject=sub.subject)
