"""The serial device worker: one thread per device runs its blocking calls in arrival order.

The reactor thread never touches the device. It enqueues actions with a callback, or `call`s
anything else for a Deferred; both results come back on the reactor thread. Cheap actions do not
pay a thread hop each: the worker takes every waiting cheap item in one go, runs them back to
back and hands all their results to the reactor in one callFromThread. A slow item (scrolling
text, a sensor read) is taken alone, so what waits behind it can still be dropped by overflow or
by stop(). A busy subscription hands over a run of messages of one cheap action as one batch
item (`enqueue_batch`): one device call for all of them, while pending counts and bytes stay per
message.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any, Callable, Hashable, Sequence

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from bridge.actions import Command, execute, execute_batch

log = Logger(namespace="bridge.devices.worker")


class Dropped(Exception):
    """Work that was never run (overflow or shutdown); str() says why."""


# done(context, ok, value): how a result (or the exception) reaches the reactor thread.
Done = Callable[[Any, bool, Any], None]
# done(context, indices, ok, value) of a batch: on the messages at `indices` of the batch, either
# ok with the (index, exception) of each call that failed (the others were applied), or not ok
# with the one exception (Dropped) that befell all of them.
BatchDone = Callable[[Any, Sequence[int], bool, Any], None]


class _Work:
    __slots__ = ("key", "fn", "args", "done", "context", "cheap", "dropped", "size", "count", "interrupted")

    def __init__(self, key: Hashable, fn: Callable, args: tuple, done: Done, context: Any, cheap: bool,
                 size: int = 0):
        self.key = key
        self.fn = fn
        self.args = args
        self.done = done
        self.context = context
        self.cheap = cheap
        self.dropped = False
        self.size = size  # bytes it stands for while it waits (its payloads'), for pending_bytes
        self.count = 1  # messages it stands for, for pending_limit
        self.interrupted: str | None = None  # why it was cut short, set under the lock while it runs

    def finish(self, ok: bool, value: Any) -> None:
        self.done(self.context, ok, value)

    def fail(self, error: Exception) -> None:
        self.finish(False, error)


class _BatchWork(_Work):
    """Calls of one cheap action for the messages at `indices` of a batch, run as one device call."""

    __slots__ = ("indices",)

    def finish(self, ok: bool, value: Any) -> None:
        indices = self.indices
        if ok and value:
            value = [(indices[position], error) for position, error in value]
        self.done(self.context, indices, ok, value)


class _Line(deque):
    """The items of one queue key, in order, with the messages and bytes they stand for.

    No `__init__` of its own: deque's C one is what a new line per key and reactor turn costs.
    """

    __slots__ = ("bytes", "count")

    def add(self, work: _Work) -> None:
        self.append(work)
        self.bytes += work.size
        self.count += work.count

    def take(self) -> None:
        work = self.popleft()
        self.bytes -= work.size
        self.count -= work.count


def _new_line(work: _Work) -> _Line:
    line = _Line((work,))
    line.bytes = work.size
    line.count = work.count
    return line


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
        self._waiting_by_key: dict[Hashable, _Line] = {}
        # Reactor thread only: what arrived during this reactor turn, handed to the thread in one
        # lock hold at the end of the turn. A lock round trip per message costs more than parsing it.
        self._staged: list[_Work] = []
        self._staged_by_key: dict[Hashable, _Line] = {}
        # Guarded by _lock: the slow item the thread runs now, and the Event that cuts it short.
        # The thread clears the Event (under the lock) before each slow item, and the reactor
        # sets it (under the lock) only while `_running` is the item it means to interrupt.
        self._running: _Work | None = None
        self._interrupt = threading.Event()
        self._hand_over_call = None
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._thread_done = Deferred()
        self._stopped: Deferred | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._serve, name=f"{self.device.driver}-{self.role}", daemon=True)
        self._thread.start()

    # -- reactor side ---------------------------------------------------------------------

    def enqueue(self, queue_key: Hashable, command: Command, pending_limit: int, overflow: str,
                done: Done, context: Any, size: int = 0, pending_bytes: int | None = None) -> None:
        """Queue an action; `done(context, ok, value)` runs on the reactor thread when it is over.

        The per-message path of every subscription, so no Deferred; `context` should be small (the
        reply subject, not the message with its payload): it is kept while the item waits.
        Overflow "queue": a new item is rejected when `pending_limit` messages of its queue_key wait,
        or when the `size`s of those that wait plus its own would pass `pending_bytes` (one item
        may always wait). Overflow "latest": whatever waits for the key is dropped, and a slow
        item of the key that runs (a scroll) is cut short at its next frame, so only the new one
        remains. Rejections are reported at once.
        """
        if self._stopping:
            done(context, False, Dropped(f"{command.action}: dropped, the device worker is stopping"))
            return
        if overflow == "latest":
            self._drop_waiting(queue_key)
            self._interrupt_running(queue_key, "replaced by a newer message (overflow latest)")
        else:
            # The thread only ever shortens the handed-over queue, so reading its length and
            # bytes without the lock can only overstate what waits.
            staged, handed_over = self._staged_by_key.get(queue_key), self._waiting_by_key.get(queue_key)
            if staged is None and handed_over is None:
                pass  # nothing waits: the common case on a busy subscription, checked in one step
            elif (staged.count if staged else 0) + (handed_over.count if handed_over else 0) >= pending_limit:
                done(context, False, Dropped(
                    f"{command.action}: dropped, {pending_limit} messages already waiting (pending_limit, overflow queue)"
                ))
                return
            elif pending_bytes is not None:
                waiting = (staged.bytes if staged else 0) + (handed_over.bytes if handed_over else 0)
                if waiting and waiting + size > pending_bytes:
                    done(context, False, Dropped(
                        f"{command.action}: dropped, {waiting} bytes of messages already waiting and this one's "
                        f"{size} would pass {pending_bytes} (pending_bytes, overflow queue)"
                    ))
                    return
        self._stage(_Work(queue_key, execute, (self.device, command, self._interrupt), done, context,
                          command.cheap, size))

    def enqueue_batch(self, queue_key: Hashable, action: str, calls: list, sizes: list, pending_limit: int,
                      pending_bytes: int | None, done: BatchDone, context: Any) -> None:
        """Queue the argument tuples of a run of messages of one cheap action as one item.

        Each message is admitted or rejected (overflow "queue") as `enqueue` would judge it alone
        after the ones before it; rejections are reported at once. The admitted ones run as one
        device call (`Device.run_batch`): they wait, are dropped by stop() and reported together.
        `done(context, indices, ok, value)` (see `BatchDone`) runs on the reactor thread.
        """
        count = len(calls)
        if self._stopping:
            done(context, range(count), False, Dropped(f"{action}: dropped, the device worker is stopping"))
            return
        staged, handed_over = self._staged_by_key.get(queue_key), self._waiting_by_key.get(queue_key)
        waiting = (staged.count if staged else 0) + (handed_over.count if handed_over else 0)
        waiting_bytes = (staged.bytes if staged else 0) + (handed_over.bytes if handed_over else 0)
        size = sum(sizes)
        if waiting + count <= pending_limit and (
                pending_bytes is None or (waiting_bytes + size <= pending_bytes or not waiting_bytes and count == 1)):
            indices: Sequence[int] = range(count)
        else:
            indices, size = self._admit(action, sizes, pending_limit, pending_bytes, waiting, waiting_bytes, done,
                                        context)
            if not indices:
                return
            calls = [calls[index] for index in indices]
        work = _BatchWork(queue_key, execute_batch, (self.device, action, calls), done, context, True, size)
        work.count = len(indices)
        work.indices = indices
        self._stage(work)

    @staticmethod
    def _admit(action: str, sizes: list, pending_limit: int, pending_bytes: int | None, waiting: int,
               waiting_bytes: int, done: BatchDone, context: Any) -> tuple[list[int], int]:
        """The indices of the messages that may wait and their bytes; the others are reported dropped."""
        admitted = []
        waiting_before = waiting_bytes
        for index, size in enumerate(sizes):
            if waiting >= pending_limit:
                error = Dropped(f"{action}: dropped, {pending_limit} messages already waiting "
                                f"(pending_limit, overflow queue)")
            elif pending_bytes is not None and waiting_bytes and waiting_bytes + size > pending_bytes:
                error = Dropped(f"{action}: dropped, {waiting_bytes} bytes of messages already waiting and this "
                                f"one's {size} would pass {pending_bytes} (pending_bytes, overflow queue)")
            else:
                admitted.append(index)
                waiting += 1
                waiting_bytes += size
                continue
            done(context, (index,), False, error)
        return admitted, waiting_bytes - waiting_before

    def _drop_waiting(self, queue_key: Hashable) -> None:
        """overflow "latest": whatever waits for this key, staged or handed over, is dropped."""
        replaced = list(self._staged_by_key.pop(queue_key, ()))
        with self._lock:
            handed_over = self._waiting_by_key.pop(queue_key, None)
            if handed_over:
                replaced.extend(handed_over)
            for work in replaced:
                work.dropped = True
        for work in replaced:
            work.fail(Dropped(f"{_name_of(work)}: dropped, replaced by a newer message (overflow latest)"))

    def interrupt_running(self, why: str) -> None:
        """Cut a running scroll short, whatever its key: it ends as Dropped(why)."""
        self._interrupt_running(None, why)

    def _interrupt_running(self, queue_key: Hashable | None, why: str) -> None:
        """Cut the running slow item short (any key when queue_key is None): it ends as Dropped(why)."""
        with self._lock:
            running = self._running
            if running is not None and _can_interrupt(running) and (queue_key is None or running.key == queue_key):
                running.interrupted = why
                self._interrupt.set()

    def _stage(self, work: _Work) -> None:
        self._staged.append(work)
        if work.key is not None:
            same_key = self._staged_by_key.get(work.key)
            if same_key is None:
                self._staged_by_key[work.key] = _new_line(work)
            else:
                same_key.add(work)
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
                        by_key[work.key] = _new_line(work)
                    else:
                        same_key.add(work)
            if self._sleeping:
                self._condition.notify()
                # Cleared here, not only by the thread once it holds the GIL again: until then every
                # message of the same read would see it set and take the lock to notify once more.
                self._sleeping = False

    def call(self, fn: Callable, *args: Any) -> Deferred:
        """Run fn(*args) on the device thread, in order with the actions (sensor reads and the like)."""
        deferred = Deferred()
        if self._stopping:
            deferred.errback(Dropped(f"{getattr(fn, '__name__', 'call')}: dropped, the device worker is stopping"))
            return deferred
        self._stage(_Work(None, fn, args, _fire, deferred, False))
        return deferred

    def pending(self, queue_key: Hashable) -> int:
        """How many messages of this key wait (not counting what runs)."""
        staged = self._staged_by_key.get(queue_key)
        waiting = self._waiting_by_key.get(queue_key)
        return (waiting.count if waiting else 0) + (staged.count if staged else 0)

    def pending_bytes(self, queue_key: Hashable) -> int:
        """The sizes of the items of this key that wait, added up."""
        staged = self._staged_by_key.get(queue_key)
        waiting = self._waiting_by_key.get(queue_key)
        return (waiting.bytes if waiting else 0) + (staged.bytes if staged else 0)

    @property
    def idle(self) -> bool:
        """Nothing runs and nothing waits: a query answered now cannot overtake an earlier action."""
        return self._sleeping and not self._waiting and not self._staged

    def stop(self, timeout: float) -> Deferred:
        """Take no more work, fail what waits with Dropped, cut a running scroll short.

        A scroll ends at its next frame (as Dropped); anything else that runs is let finish.
        Fires with True once the thread is done, or with False if it is still busy after
        `timeout` seconds (a hung device call); the thread then ends when that item does.
        """
        if self._stopped is not None:
            return self._stopped
        self._stopped = stopped = Deferred()
        if self._hand_over_call is not None:
            self._hand_over_call.cancel()
            self._hand_over_call = None
        self._interrupt_running(None, "the device worker is stopping")
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
        for work, ok, value in results:
            try:
                work.finish(ok, value)
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
                same_key.take()
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
                    slow = batch[0] if len(batch) == 1 and not batch[0].cheap else None
                    if slow is not None:
                        self._running = slow
                        self._interrupt.clear()
                results = []
                for work in batch:
                    try:
                        results.append((work, True, work.fn(*work.args)))
                    except Exception as error:
                        results.append((work, False, error))
                if slow is not None:
                    with self._lock:
                        self._running = None
                    if slow.interrupted is not None:
                        results[0] = (slow, False, Dropped(f"{_name_of(slow)}: interrupted, {slow.interrupted}"))
                if results:
                    call_from_thread(self._deliver, results)
        finally:
            call_from_thread(self._thread_done.callback, None)


def _name_of(work: _Work) -> str:
    if work.fn is execute:
        return work.args[1].action
    if work.fn is execute_batch:
        return work.args[1]
    return getattr(work.fn, "__name__", "call")


def _can_interrupt(work: _Work) -> bool:
    """Only a scroll watches the interrupt; any other item would run to its end anyway."""
    return work.fn is execute and work.args[1].action == "show_message"
