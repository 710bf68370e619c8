"""The serial device worker: order, results, overflow policies, stop, and batching of cheap work.

A gated device holds the worker inside a slow action for as long as a test needs, so what is
"waiting" and what is "running" is decided by the test, never by timing.
"""

from __future__ import annotations

import threading

import pytest
import pytest_twisted
from twisted.internet import defer, reactor, task
from twisted.python.failure import Failure

from bridge.actions import ActionFailed, parse_command
from bridge.devices.memory import MemoryDevice
from bridge.devices.worker import DeviceWorker, Dropped

WAIT = 10.0  # only bounds a broken test; nothing asserts on time


class GatedDevice(MemoryDevice):
    """show_message blocks until the test opens the gate; every call is logged in run order."""

    def __init__(self):
        super().__init__()
        self.log: list[str] = []
        self.scrolling = threading.Event()
        self.gate = threading.Event()

    def show_message(self, text, text_colour, back_colour, scroll_speed, interrupt=None):
        self.log.append(f"show_message {text}")
        self.scrolling.set()
        assert self.gate.wait(WAIT), "the test never opened the gate"
        super().show_message(text, text_colour, back_colour, scroll_speed)

    def set_pixel(self, x, y, colour):
        if x == 7 and y == 7:
            raise ValueError("this LED is broken")
        self.log.append(f"set_pixel {x} {y}")
        super().set_pixel(x, y, colour)

    def read(self, sensor):
        self.log.append(f"read {sensor}")
        return super().read(sensor)


class CountingReactor:
    """The real reactor, counting how often the worker thread hands results over."""

    def __init__(self):
        self.handovers = 0

    def callFromThread(self, fn, *args):
        self.handovers += 1
        reactor.callFromThread(fn, *args)

    def __getattr__(self, name):
        return getattr(reactor, name)


def pixel(x, y, red=255):
    return parse_command("set_pixel", b'{"x": %d, "y": %d, "color": [%d, 0, 0]}' % (x, y, red), {})


def message(text):
    return parse_command("show_message", text.encode(), {})


@pytest.fixture
def device():
    device = GatedDevice()
    yield device
    device.gate.set()  # never leave the worker thread stuck


@pytest.fixture
def worker(device):
    worker = DeviceWorker(device, reactor)
    worker.start()
    yield worker
    device.gate.set()
    pytest_twisted.blockon(worker.stop(WAIT))


def enqueued(worker, key, command, pending_limit, overflow, size=0, pending_bytes=None):
    """`worker.enqueue`, the runtime's path, with a Deferred that fires with the result or the exception."""
    deferred = defer.Deferred()

    def done(context, ok, value):
        if ok:
            deferred.callback(value)
        else:
            deferred.errback(Failure(value, type(value), value.__traceback__))

    worker.enqueue(key, command, pending_limit, overflow, done, None, size, pending_bytes)
    return deferred


def hold_in_show_message(worker, device, key="slow"):
    """Submit a show_message and return once the worker thread is inside it."""
    running = enqueued(worker, key, message("hold"), 1000, "queue")
    assert device.scrolling.wait(WAIT)
    return running


def failure_of(deferred):
    """The exception a Deferred already failed with (and consume it)."""
    failures = []
    deferred.addErrback(failures.append)
    assert failures, "expected the Deferred to have failed already"
    return failures[0].value


@pytest_twisted.inlineCallbacks
def test_results_come_back_and_follow_submission_order(worker, device):
    set_first = enqueued(worker, "k", pixel(2, 3), 1000, "queue")
    pixels = enqueued(worker, "k", parse_command("get_pixels", b"", {}), 1000, "queue")
    reading = worker.call(device.read, "pressure")
    assert (yield set_first) is None
    assert (yield pixels)[3 * 8 + 2] == [255, 0, 0]
    value, unit = yield reading
    assert unit == "hPa" and 900 < value < 1100


@pytest_twisted.inlineCallbacks
def test_one_thread_runs_everything_in_arrival_order_across_keys(worker, device):
    running = hold_in_show_message(worker, device)
    results = [
        enqueued(worker, "a", pixel(0, 0), 1000, "queue"),
        worker.call(device.read, "temperature"),
        enqueued(worker, "b", pixel(1, 1), 1000, "queue"),
        enqueued(worker, "a", message("second"), 1000, "queue"),
        enqueued(worker, "b", pixel(2, 2), 1000, "queue"),
    ]
    device.gate.set()
    yield running
    yield defer.gatherResults(results)
    assert device.log == [
        "show_message hold",
        "set_pixel 0 0",
        "read temperature",
        "set_pixel 1 1",
        "show_message second",
        "set_pixel 2 2",
    ]


@pytest_twisted.inlineCallbacks
def test_device_errors_fail_only_their_own_message(worker, device):
    before = enqueued(worker, "k", pixel(0, 0), 1000, "queue")
    broken = enqueued(worker, "k", pixel(7, 7), 1000, "queue")
    after = enqueued(worker, "k", pixel(1, 0), 1000, "queue")
    yield before
    with pytest.raises(ActionFailed, match=r"^set_pixel: this LED is broken$"):
        yield broken
    yield after
    assert device.log == ["set_pixel 0 0", "set_pixel 1 0"]


@pytest_twisted.inlineCallbacks
def test_call_failures_keep_their_exception(worker, device):
    with pytest.raises(KeyError):
        yield worker.call(device.read, "altitude")


@pytest_twisted.inlineCallbacks
def test_overflow_queue_rejects_the_new_message_at_the_limit(worker, device):
    running = hold_in_show_message(worker, device)
    kept = [enqueued(worker, "k", pixel(x, 0), 2, "queue") for x in range(2)]
    rejected = enqueued(worker, "k", pixel(5, 0), 2, "queue")
    error = failure_of(rejected)
    assert isinstance(error, Dropped)
    assert str(error) == "set_pixel: dropped, 2 messages already waiting (pending_limit, overflow queue)"
    other_key = enqueued(worker, "other", pixel(6, 0), 2, "queue")  # limits are per key
    device.gate.set()
    yield running
    yield defer.gatherResults(kept + [other_key])
    assert device.log[1:] == ["set_pixel 0 0", "set_pixel 1 0", "set_pixel 6 0"]


@pytest_twisted.inlineCallbacks
def test_limit_counts_only_waiting_messages_not_the_running_one(worker, device):
    running = hold_in_show_message(worker, device, key="k")
    waiting = enqueued(worker, "k", pixel(0, 0), 1, "queue")
    assert not waiting.called
    device.gate.set()
    yield running
    yield waiting


@pytest_twisted.inlineCallbacks
def test_overflow_latest_drops_what_waits_and_keeps_the_newest(worker, device):
    running = hold_in_show_message(worker, device)
    older = [enqueued(worker, "k", pixel(x, 0), 1000, "latest") for x in range(3)]
    other_key = enqueued(worker, "other", pixel(0, 5), 1000, "latest")
    newest = enqueued(worker, "k", pixel(4, 0), 1000, "latest")
    for deferred in older:
        error = failure_of(deferred)
        assert isinstance(error, Dropped)
        assert str(error) == "set_pixel: dropped, replaced by a newer message (overflow latest)"
    device.gate.set()
    yield running
    yield newest
    yield other_key
    assert device.log[1:] == ["set_pixel 0 5", "set_pixel 4 0"]


@pytest_twisted.inlineCallbacks
def test_stop_drops_what_waits_and_reports_the_running_scroll_as_interrupted(device):
    worker = DeviceWorker(device, reactor)
    worker.start()
    running = hold_in_show_message(worker, device)
    waiting = [enqueued(worker, "k", pixel(0, 0), 1000, "queue"), worker.call(device.read, "humidity")]
    stopped = worker.stop(WAIT)
    assert str(failure_of(waiting[0])) == "set_pixel: dropped, the device worker stopped before running it"
    assert str(failure_of(waiting[1])) == "read: dropped, the device worker stopped before running it"
    late = enqueued(worker, "k", pixel(1, 1), 1000, "queue")
    assert str(failure_of(late)) == "set_pixel: dropped, the device worker is stopping"
    assert isinstance(failure_of(worker.call(device.read, "humidity")), Dropped)
    assert not stopped.called  # still scrolling: this device does not watch the interrupt
    device.gate.set()
    assert str(failure_of((yield stopped) and running)) == "show_message: interrupted, the device worker is stopping"
    assert device.log == ["show_message hold"]
    assert worker.stop(WAIT) is stopped


@pytest_twisted.inlineCallbacks
def test_stop_gives_up_waiting_after_the_timeout(device):
    worker = DeviceWorker(device, reactor)
    worker.start()
    running = hold_in_show_message(worker, device)
    assert (yield worker.stop(0.01)) is False  # the gate stays shut until after this
    device.gate.set()
    yield _settled(running)


@pytest_twisted.inlineCallbacks
def test_stop_before_start_finishes_at_once():
    worker = DeviceWorker(MemoryDevice(), reactor)
    assert (yield worker.stop(WAIT)) is True


@pytest_twisted.inlineCallbacks
def test_waiting_cheap_actions_run_as_one_batch_with_one_handover(device):
    counting = CountingReactor()
    worker = DeviceWorker(device, counting)
    worker.start()
    try:
        running = hold_in_show_message(worker, device)
        pixels = [enqueued(worker, "k", pixel(x, y), 1000, "queue") for y in range(7) for x in range(8)]
        device.gate.set()
        yield running
        yield defer.gatherResults(pixels)
        # one for the show_message, one for all 56 pixels
        assert counting.handovers == 2
    finally:
        device.gate.set()
        yield worker.stop(WAIT)


@pytest_twisted.inlineCallbacks
def test_slow_work_is_never_batched_with_cheap_work(device):
    counting = CountingReactor()
    worker = DeviceWorker(device, counting)
    worker.start()
    try:
        running = hold_in_show_message(worker, device)
        device.scrolling.clear()
        work = [enqueued(worker, "k", pixel(x, 0), 1000, "queue") for x in range(3)]
        work.append(enqueued(worker, "k", message("again"), 1000, "queue"))
        work += [enqueued(worker, "k", pixel(x, 1), 1000, "queue") for x in range(2)]
        work.append(worker.call(device.read, "pressure"))
        work.append(enqueued(worker, "k", pixel(0, 2), 1000, "queue"))
        device.gate.set()
        yield running
        yield defer.gatherResults(work)
        # hold | 3 pixels | "again" | 2 pixels | read | 1 pixel
        assert counting.handovers == 6
    finally:
        device.gate.set()
        yield worker.stop(WAIT)


class ScrollingDevice(MemoryDevice):
    """show_message scrolls until the interrupt is set (or WAIT passes), like the real drivers."""

    def __init__(self):
        super().__init__()
        self.scrolling = threading.Event()
        self.scrolls: list[tuple[str, bool]] = []  # (text, whether it was cut short)

    def show_message(self, text, text_colour, back_colour, scroll_speed, interrupt=None):
        self.scrolling.set()
        cut = interrupt.wait(WAIT) if interrupt is not None else False
        self.scrolls.append((text, cut))
        super().show_message(text, text_colour, back_colour, scroll_speed)


@pytest_twisted.inlineCallbacks
def test_stop_cuts_a_running_scroll_short():
    device = ScrollingDevice()
    worker = DeviceWorker(device, reactor)
    worker.start()
    running = enqueued(worker, "k", message("long"), 1000, "queue")
    assert device.scrolling.wait(WAIT)
    assert (yield worker.stop(WAIT)) is True  # without the interrupt: only after WAIT, and False
    assert device.scrolls == [("long", True)]
    assert str(failure_of(running)) == "show_message: interrupted, the device worker is stopping"


@pytest_twisted.inlineCallbacks
def test_overflow_latest_interrupts_the_running_scroll_of_its_key_only():
    device = ScrollingDevice()
    worker = DeviceWorker(device, reactor)
    worker.start()
    try:
        old = enqueued(worker, "k", message("old"), 1000, "latest")
        assert device.scrolling.wait(WAIT)
        device.scrolling.clear()
        other = enqueued(worker, "other", pixel(0, 0), 1000, "latest")  # another key: no interrupt
        yield task.deferLater(reactor, 0.2)  # an interrupt would end the scroll at once
        assert device.scrolls == [] and not other.called
        new = enqueued(worker, "k", message("new"), 1000, "latest")
        assert str((yield _settled(old))) == "show_message: interrupted, replaced by a newer message (overflow latest)"
        yield other
        while not device.scrolling.is_set():  # the reactor must keep turning to hand "new" over
            yield task.deferLater(reactor, 0.01)
        assert device.scrolls == [("old", True)]
    finally:
        yield worker.stop(WAIT)
    assert str((yield _settled(new))) == "show_message: interrupted, the device worker is stopping"


def _settled(deferred):
    """Fires with the result, or with the exception `deferred` failed with (consumed)."""
    return deferred.addErrback(lambda failure: failure.value)


@pytest_twisted.inlineCallbacks
def test_pending_bytes_bounds_what_waits_by_size(worker, device):
    running = hold_in_show_message(worker, device)
    first = enqueued(worker, "k", pixel(0, 0), 1000, "queue", size=600, pending_bytes=1000)
    assert worker.pending_bytes("k") == 600
    over = enqueued(worker, "k", pixel(1, 0), 1000, "queue", size=500, pending_bytes=1000)
    fits = enqueued(worker, "k", pixel(2, 0), 1000, "queue", size=400, pending_bytes=1000)
    assert "(pending_bytes, overflow queue)" in str(failure_of(over))
    assert worker.pending_bytes("k") == 1000
    lone = enqueued(worker, "other", pixel(3, 0), 1000, "queue", size=5000, pending_bytes=1000)  # one may always wait
    device.gate.set()
    yield defer.gatherResults([running, first, fits, lone])
    assert worker.pending_bytes("k") == 0


class CountingCondition:
    """A stand-in for the worker's condition that counts the wake-ups it is asked for."""

    def __init__(self, lock):
        self.lock = lock
        self.notified = 0

    def __enter__(self):
        return self.lock.__enter__()

    def __exit__(self, *exc):
        return self.lock.__exit__(*exc)

    def notify(self):
        self.notified += 1


def test_a_sleeping_thread_is_woken_once_for_a_run_of_work_from_one_reactor_turn():
    """White-box: the thread is asleep (no thread runs, so it cannot wake in between); ten items
    enqueued in one turn must cost one notify, not one each."""
    clock = task.Clock()
    worker = DeviceWorker(MemoryDevice(), clock)
    worker._condition = CountingCondition(worker._lock)
    worker._sleeping = True
    for _ in range(10):
        worker.call(lambda: None)
    clock.advance(0)  # the hand-over of the items staged after the first
    assert len(worker._waiting) == 10
    assert worker._condition.notified == 1


# --- batches: a run of one subscription's messages as one item --------------------------------


def batched(worker, key, positions, pending_limit=1000, sizes=None, pending_bytes=None):
    """`worker.enqueue_batch` of set_pixel at `positions`; a Deferred firing with every message's
    outcome by index ("ok" or the error's text) once all are reported."""
    calls = [pixel(x, y).args for x, y in positions]
    outcomes: dict = {}
    everything = defer.Deferred()
    mine = object()

    def done(context, indices, ok, value):
        assert context is mine, "a batch's report must carry the context it was queued with"
        failed = dict(value) if ok else {}
        for index in indices:
            assert index not in outcomes, f"message {index} reported twice"
            error = failed.get(index) if ok else value
            outcomes[index] = "ok" if error is None else str(error)
        if len(outcomes) == len(calls):
            everything.callback(dict(sorted(outcomes.items())))

    worker.enqueue_batch(key, "set_pixel", calls, sizes or [10] * len(calls), pending_limit, pending_bytes, done,
                         mine)
    return everything


def dropped_at_the_door(worker, key, sizes, pending_limit=1000, pending_bytes=None) -> dict:
    """{index: why} of the messages of a set_pixel batch that `enqueue_batch` dropped at once."""
    dropped: dict = {}

    def done(_context, indices, ok, value):
        assert not ok
        dropped.update((index, str(value)) for index in indices)

    calls = [pixel(index % 8, 0).args for index in range(len(sizes))]
    worker.enqueue_batch(key, "set_pixel", calls, sizes, pending_limit, pending_bytes, done, None)
    return dropped


def test_a_batch_counts_the_messages_waiting_for_its_key_staged_and_handed_over():
    """White-box, no thread: what the thread was handed and what is staged since both wait."""
    clock = task.Clock()
    worker = DeviceWorker(MemoryDevice(), clock)
    assert dropped_at_the_door(worker, "k", [10, 10]) == {}
    clock.advance(0)  # handed over to the (not started) thread
    assert dropped_at_the_door(worker, "k", [10, 10], pending_limit=4) == {}  # just fits: 2 + 2
    clock.advance(0)
    assert dropped_at_the_door(worker, "k", [10]) == {}  # staged
    assert worker.pending("k") == 5
    dropped = "set_pixel: dropped, 6 messages already waiting (pending_limit, overflow queue)"
    assert dropped_at_the_door(worker, "k", [10, 10], pending_limit=6) == {1: dropped}


def test_a_single_message_batch_passing_pending_bytes_waits_only_when_nothing_else_does():
    clock = task.Clock()
    worker = DeviceWorker(MemoryDevice(), clock)
    assert dropped_at_the_door(worker, "k", [1500], pending_bytes=1000) == {}
    assert dropped_at_the_door(worker, "other", [600, 600], pending_bytes=1000) == {
        1: "set_pixel: dropped, 600 bytes of messages already waiting and this one's 600 would pass 1000 "
           "(pending_bytes, overflow queue)"}
    assert dropped_at_the_door(worker, "other", [500], pending_bytes=1000) == {
        0: "set_pixel: dropped, 600 bytes of messages already waiting and this one's 500 would pass 1000 "
           "(pending_bytes, overflow queue)"}


def test_a_batch_that_fits_whole_is_admitted_without_judging_each_message(monkeypatch):
    """White-box: `_admit` is the slow path, for a batch that does not fit whole."""
    clock = task.Clock()
    worker = DeviceWorker(MemoryDevice(), clock)
    dropped_at_the_door(worker, "k", [300])
    monkeypatch.setattr(DeviceWorker, "_admit", staticmethod(lambda *_: pytest.fail("a batch that fits was judged")))
    assert dropped_at_the_door(worker, "k", [300, 400], pending_limit=3, pending_bytes=1000) == {}
    assert dropped_at_the_door(worker, "other", [700, 300], pending_limit=2, pending_bytes=1000) == {}
    assert worker.pending("k") == 3 and worker.pending_bytes("k") == 1000


def test_a_batch_is_cheap_work_taken_with_the_cheap_items_around_it():
    """White-box, no thread: the thread takes a batch in one go with the cheap work before and after it."""
    clock = task.Clock()
    worker = DeviceWorker(MemoryDevice(), clock)
    worker.enqueue("single", pixel(0, 0), 1000, "queue", lambda *_: None, None)
    dropped_at_the_door(worker, "k", [10, 10])
    dropped_at_the_door(worker, "other", [10, 10, 10])
    clock.advance(0)
    with worker._lock:
        taken = worker._take()
    assert [work.count for work in taken] == [1, 2, 3]


def test_a_batch_counts_the_bytes_waiting_for_its_key_staged_and_handed_over():
    clock = task.Clock()
    worker = DeviceWorker(MemoryDevice(), clock)
    dropped_at_the_door(worker, "k", [300, 300])
    clock.advance(0)  # handed over to the (not started) thread
    dropped_at_the_door(worker, "k", [100])  # staged
    assert worker.pending_bytes("k") == 700
    assert dropped_at_the_door(worker, "k", [350, 50], pending_bytes=1000) == {
        0: "set_pixel: dropped, 700 bytes of messages already waiting and this one's 350 would pass 1000 "
           "(pending_bytes, overflow queue)"}
    assert worker.pending_bytes("k") == 750 and worker.pending("k") == 4


@pytest_twisted.inlineCallbacks
def test_a_batch_is_one_watched_device_call_and_a_bad_call_fails_only_its_message(device):
    from bridge.runtime.watchdog import WatchedDevice

    armed = []
    worker = DeviceWorker(WatchedDevice(device, "display", lambda: armed.append(1) or 0.0), reactor)
    worker.start()
    try:
        outcomes = yield batched(worker, "k", [(0, 0), (7, 7), (1, 0)])
    finally:
        yield worker.stop(WAIT)
    assert outcomes == {0: "ok", 1: "set_pixel: this LED is broken", 2: "ok"}
    assert device.log == ["set_pixel 0 0", "set_pixel 1 0"]
    assert len(armed) == 1


@pytest_twisted.inlineCallbacks
def test_pending_limit_is_reached_inside_a_batch_the_rest_of_it_is_dropped(worker, device):
    running = hold_in_show_message(worker, device)
    single = enqueued(worker, "k", pixel(5, 5), 3, "queue")
    outcomes = batched(worker, "k", [(0, 0), (1, 0), (2, 0), (3, 0)], pending_limit=3)
    assert worker.pending("k") == 3
    device.gate.set()
    yield defer.gatherResults([running, single])
    dropped = "set_pixel: dropped, 3 messages already waiting (pending_limit, overflow queue)"
    assert (yield outcomes) == {0: "ok", 1: "ok", 2: dropped, 3: dropped}
    assert device.log[1:] == ["set_pixel 5 5", "set_pixel 0 0", "set_pixel 1 0"]


@pytest_twisted.inlineCallbacks
def test_a_batch_that_just_fits_pending_limit_is_admitted_whole_and_one_more_is_not(worker, device):
    running = hold_in_show_message(worker, device)
    single = enqueued(worker, "k", pixel(5, 5), 3, "queue")
    fits = batched(worker, "k", [(0, 0), (1, 0)], pending_limit=3)
    over = batched(worker, "other", [(0, 1), (1, 1), (2, 1), (3, 1)], pending_limit=3)
    device.gate.set()
    yield defer.gatherResults([running, single])
    assert (yield fits) == {0: "ok", 1: "ok"}
    assert (yield over)[3] == "set_pixel: dropped, 3 messages already waiting (pending_limit, overflow queue)"


@pytest_twisted.inlineCallbacks
def test_pending_bytes_judges_each_message_of_a_batch_as_if_it_came_alone(worker, device):
    running = hold_in_show_message(worker, device)
    outcomes = batched(worker, "k", [(0, 0), (1, 0), (7, 7)], sizes=[600, 500, 400], pending_bytes=1000)
    assert worker.pending_bytes("k") == 1000 and worker.pending("k") == 2
    device.gate.set()
    yield running
    result = yield outcomes
    assert result[0] == "ok" and "(pending_bytes, overflow queue)" in result[1]
    assert result[2] == "set_pixel: this LED is broken"  # the device's failure, reported on its own message
    assert worker.pending_bytes("k") == 0 and worker.pending("k") == 0


def test_what_waits_counts_the_messages_of_batches_left_behind_a_slow_item():
    """White-box, no thread: the thread takes the first batch; the second still waits behind the scroll."""
    clock = task.Clock()
    worker = DeviceWorker(MemoryDevice(), clock)
    for item in (lambda: batched(worker, "k", [(0, 0), (1, 0)]),
                 lambda: worker.enqueue("slow", message("hi"), 1000, "queue", lambda *_: None, None),
                 lambda: batched(worker, "k", [(2, 0), (3, 0), (4, 0)])):
        item()
    clock.advance(0)
    assert worker.pending("k") == 5 and worker.pending_bytes("k") == 50
    with worker._lock:
        taken = worker._take()
    assert [work.count for work in taken] == [2] and worker.pending("k") == 3 and worker.pending_bytes("k") == 30


@pytest_twisted.inlineCallbacks
def test_order_is_kept_across_batches_and_single_messages(worker, device):
    running = hold_in_show_message(worker, device)
    first = batched(worker, "k", [(0, 0), (1, 0)])
    single = enqueued(worker, "k", pixel(2, 0), 1000, "queue")
    last = batched(worker, "other", [(3, 0)])
    device.gate.set()
    yield defer.gatherResults([running, first, single, last])
    assert device.log[1:] == ["set_pixel 0 0", "set_pixel 1 0", "set_pixel 2 0", "set_pixel 3 0"]


@pytest_twisted.inlineCallbacks
def test_stop_drops_every_message_of_a_waiting_batch_and_of_a_late_one(device):
    worker = DeviceWorker(device, reactor)
    worker.start()
    running = hold_in_show_message(worker, device)
    waiting = batched(worker, "k", [(0, 0), (1, 0)])
    stopped = worker.stop(WAIT)
    late = batched(worker, "k", [(2, 0)])
    device.gate.set()
    yield stopped
    yield _settled(running)
    gone = "set_pixel: dropped, the device worker stopped before running it"
    assert (yield waiting) == {0: gone, 1: gone}
    assert (yield late) == {0: "set_pixel: dropped, the device worker is stopping"}
    assert device.log == ["show_message hold"]


class GatedPixelDevice(GatedDevice):
    """set_pixel at (6, 6) blocks until the gate opens: the thread is then inside a batch."""

    def set_pixel(self, x, y, colour):
        if (x, y) == (6, 6):
            self.scrolling.set()
            assert self.gate.wait(WAIT), "the test never opened the gate"
        super().set_pixel(x, y, colour)


@pytest_twisted.inlineCallbacks
def test_a_batch_that_runs_when_stop_comes_is_finished_and_reported_applied():
    """Stop (SIGINT) does not cut a running batch: each of its messages is applied and says so."""
    device = GatedPixelDevice()
    worker = DeviceWorker(device, reactor)
    worker.start()
    outcomes = batched(worker, "k", [(0, 0), (6, 6), (1, 0)])
    assert device.scrolling.wait(WAIT)
    stopped = worker.stop(WAIT)
    assert not stopped.called
    device.gate.set()
    assert (yield stopped) is True
    assert (yield outcomes) == {0: "ok", 1: "ok", 2: "ok"}
    assert device.log == ["set_pixel 0 0", "set_pixel 6 6", "set_pixel 1 0"]
