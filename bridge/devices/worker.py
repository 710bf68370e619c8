"""The serial device worker: one thread per device runs its blocking calls in arrival order.

The reactor thread never touches the device. It submits work and gets Deferreds that fire back on
the reactor thread. Cheap actions do not pay a thread hop each: the worker takes every waiting
cheap item in one go, runs them back to back and hands all their results to the reactor in one
callFromThread. A slow item (scrolling text, a sensor read) is taken alone, so what waits behind
it can still be dropped by overflow or by stop().
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any, Callable, Hashable

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from bridge.actions import Command, execute


log = Logger(namespace="bridge.devices.worker")


class Dropped(Exception):
    """Work that was never run (overflow or shutdown); str() says why."""


# done(context, ok, value): how a result (or the exception) reaches the reactor thread.
Done = Callable[[Any, bool, Any], None]


class _Work:
    __slots__ = ("key", "fn", "args", "done", "context", "cheap", "dropped")

    def __init__(self, key: Hashable, fn: Callable, args: tuple, done: Done, context: Any, cheap: bool):
        self.key = key
        self.fn = fn
        self.args = args
        self.done = done
        self.context = context
        self.cheap = cheap
        self.dropped = False

    def fail(self, error: Exception) -> None:
        self.done(self.context, False, error)


def _fire(deferred: Deferred, ok: bool, value: Any) -> None:
    if ok:
        deferred.callback(value)
    else:
        deferred.errback(Failure(value, type(value), value.__traceback__))


class DeviceWorker:
    def __init__(self, device, reactor, role: str = "device"):
        self.device = device
        self.role = role
        self._reactor = reactor
        self._lock = threading.Lock()
        self._condition = threading.Condition(self._lock)
        self._sleeping = False  # guarded by _lock: the thread waits for work and needs a notify
        # Both guarded by _condition: every waiting item in arrival order, and per queue key the
        # same items again so overflow can count and drop them without a scan.
        self._waiting: deque[_Work] = deque()
        self._waiting_by_key: dict[Hashable, deque[_Work]] = {}
        # Reactor thread only: what arrived during this reactor turn, handed to the thread in one
        # lock hold at the end of the turn. A lock round trip per message cost more than parsing it.
        self._staged: list[_Work] = []
        self._staged_by_key: dict[Hashable, list[_Work]] = {}
        self._hand_over_call = None
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._thread_done = Deferred()
        self._stopped: Deferred | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._serve, name=f"{self.device.driver}-{self.role}", daemon=True)
        self._thread.start()

    # -- reactor side ---------------------------------------------------------------------

    def submit(self, queue_key: Hashable, command: Command, pending_limit: int, overflow: str) -> Deferred:
        """`enqueue` with a Deferred: fires with the result, or fails with ActionFailed or Dropped."""
        deferred = Deferred()
        self.enqueue(queue_key, command, pending_limit, overflow, _fire, deferred)
        return deferred

    def enqueue(self, queue_key: Hashable, command: Command, pending_limit: int, overflow: str,
                done: Done, context: Any) -> None:
        """Queue an action; `done(context, ok, value)` runs on the reactor thread when it is over.

        The per-message path of every subscription, so no Deferred. At most `pending_limit` items
        wait per queue_key: overflow "queue" rejects a new item when that many wait; "latest" drops
        whatever waits for the key and keeps only the new one. Rejections are reported at once.
        """
        if self._stopping:
            done(context, False, Dropped(f"{command.action}: dropped, the device worker is stopping"))
            return
        if overflow == "latest":
            self._drop_waiting(queue_key)
        else:
            # The thread only ever shortens the handed-over queue, so reading its length without
            # the lock can only overstate what waits.
            if self.pending(queue_key) >= pending_limit:
                done(context, False, Dropped(
                    f"{command.action}: dropped, {pending_limit} messages already waiting (pending_limit, overflow queue)"
                ))
                return
        self._stage(_Work(queue_key, execute, (self.device, command), done, context, command.cheap))

    def _drop_waiting(self, queue_key: Hashable) -> None:
        """overflow "latest": whatever waits for this key, staged or handed over, is dropped."""
        replaced = self._staged_by_key.pop(queue_key, [])
        with self._lock:
            handed_over = self._waiting_by_key.pop(queue_key, None)
            if handed_over:
                replaced.extend(handed_over)
            for work in replaced:
                work.dropped = True
        for work in replaced:
            work.fail(Dropped(f"{work.args[1].action}: dropped, replaced by a newer message (overflow latest)"))

    def _stage(self, work: _Work) -> None:
        self._staged.append(work)
        if work.key is not None:
            same_key = self._staged_by_key.get(work.key)
            if same_key is None:
                self._staged_by_key[work.key] = [work]
            else:
                same_key.append(work)
        if self._sleeping:
            self._hand_over()  # nothing to contend with: wake the thread now
        elif self._hand_over_call is None:
            self._hand_over_call = self._reactor.callLater(0, self._hand_over)

    def _hand_over(self) -> None:
        if self._hand_over_call is not None:
            if self._hand_over_call.active():
                self._hand_over_call.cancel()
            self._hand_over_call = None
        staged, self._staged = self._staged, []
        self._staged_by_key = {}
        with self._lock:
            waiting = self._waiting
            by_key = self._waiting_by_key
            for work in staged:
                if work.dropped:
                    continue
                waiting.append(work)
                if work.key is not None:
                    same_key = by_key.get(work.key)
                    if same_key is None:
                        by_key[work.key] = deque((work,))
                    else:
                        same_key.append(work)
            if self._sleeping:
                self._condition.notify()

    def call(self, fn: Callable, *args: Any) -> Deferred:
        """Run fn(*args) on the device thread, in order with the actions (sensor reads and the like)."""
        deferred = Deferred()
        if self._stopping:
            deferred.errback(Dropped(f"{getattr(fn, '__name__', 'call')}: dropped, the device worker is stopping"))
            return deferred
        self._stage(_Work(None, fn, args, _fire, deferred, False))
        return deferred

    def pending(self, queue_key: Hashable) -> int:
        """How many items of this key wait (not counting one that runs)."""
        staged = self._staged_by_key.get(queue_key)
        return len(self._waiting_by_key.get(queue_key, ())) + (len(staged) if staged else 0)

    @property
    def idle(self) -> bool:
        """Nothing runs and nothing waits: a query answered now cannot overtake an earlier action."""
        return self._sleeping and not self._waiting and not self._staged

    def stop(self, timeout: float) -> Deferred:
        """Take no more work, fail what waits with Dropped, let the running item finish.

        Fires with True once the thread is done, or with False if it is still busy after
        `timeout` seconds (a long scroll); the thread then ends when that item does.
        """
        if self._stopped is not None:
            return self._stopped
        self._stopped = stopped = Deferred()
        if self._hand_over_call is not None:
            self._hand_over_call.cancel()
            self._hand_over_call = None
        with self._condition:
            self._stopping = True
            pending = [work for work in self._waiting if not work.dropped]
            self._waiting.clear()
            self._waiting_by_key.clear()
            self._condition.notify()
        pending += [work for work in self._staged if not work.dropped]
        self._staged = []
        self._staged_by_key = {}
        for work in pending:
            work.fail(Dropped(f"{_name_of(work)}: dropped, the device worker stopped before running it"))
        if self._thread is None:
            stopped.callback(True)
            return stopped

        def finished(_):
            if not stopped.called:
                timer.cancel()
                stopped.callback(True)

        def timed_out():
            if not stopped.called:
                stopped.callback(False)

        timer = self._reactor.callLater(timeout, timed_out)
        self._thread_done.addCallback(finished)
        return stopped

    @staticmethod
    def _deliver(results: list) -> None:
        for done, context, ok, value in results:
            try:
                done(context, ok, value)
            except Exception:  # one broken completion must not cost the others theirs
                log.failure("handling the result of a device action failed")

    # -- device thread --------------------------------------------------------------------

    def _take(self) -> list[_Work]:
        """Under the lock: one slow item, or every cheap item at the front of the line."""
        batch: list[_Work] = []
        waiting = self._waiting
        by_key = self._waiting_by_key
        while waiting:
            work = waiting[0]
            if work.dropped:
                waiting.popleft()
                continue
            if batch and not work.cheap:
                break
            waiting.popleft()
            if work.key is not None:
                same_key = by_key[work.key]
                same_key.popleft()
                if not same_key:
                    del by_key[work.key]
            batch.append(work)
            if not work.cheap:
                break
        return batch

    def _serve(self) -> None:
        condition = self._condition
        call_from_thread = self._reactor.callFromThread
        try:
            while True:
                with condition:
                    while not self._waiting and not self._stopping:
                        self._sleeping = True
                        condition.wait()
                        self._sleeping = False
                    if self._stopping:
                        return
                    batch = self._take()
                results = []
                for work in batch:
                    try:
                        results.append((work.done, work.context, True, work.fn(*work.args)))
                    except Exception as error:
                        results.append((work.done, work.context, False, error))
                if results:
                    call_from_thread(self._deliver, results)
        finally:
            call_from_thread(self._thread_done.callback, None)


def _name_of(work: _Work) -> str:
    if work.fn is execute:
        return work.args[1].action
    return getattr(work.fn, "__name__", "call")
