"""Durable publications: every reading goes to the spool first, then to its stream with a publish-ack.

    reading -> DurablePublisher.publish -> Spool.append (page cache) -> memory queue
            -> JetStream.publish(msg_id) -> PubAck -> out of the queue, the floor raised
    once a second, on the spool's thread: Spool.sync (fsync, the floor on disk, acked segments deleted)

One record is in flight at a time and the oldest unacked one always goes first, so the stream
stores a publication's readings in the order they were taken, whatever failed in between. A
lost ack makes the record go again with the same `Nats-Msg-Id`: the stream drops the repeat.
The same subject carries the readings live: the stream captures them, subscribers see them.
"""

from __future__ import annotations

import collections
import json
from typing import Callable

from twisted.internet import defer, task
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.threadpool import ThreadPool

from bridge.nats.errors import (
    JetStreamApiError,
    NoStreamResponseError,
    PermissionViolationError,
    StreamNotFoundError,
)
from bridge.nats.jetstream import JetStream
from bridge.nats.repeats import RepeatSummary
from bridge.telemetry.spool import Loaded, Record, Spool

log = Logger(namespace="bridge")

FLUSH_INTERVAL = 1.0  # seconds of readings a power cut can take, at most
ACK_TIMEOUT = 2.0
RETRY_INITIAL = 0.1
RETRY_MAX = 5.0
MAX_AGE = 7 * 24 * 3600  # seconds a stream created here keeps a reading
DUPLICATE_WINDOW = 10 * 60  # seconds: a retry after a lost ack, even across a restart, is recognised
NANOSECONDS = 1_000_000_000


def retry_delay(failures: int, initial: float = RETRY_INITIAL, maximum: float = RETRY_MAX) -> float:
    """Seconds before the oldest unacked record goes again after `failures` failures in a row."""
    return min(maximum, initial * 2 ** min(max(failures - 1, 0), 32))


def message_id(device_id: str, subject: str, reading_time: str, repeat: int = 0) -> str:
    """The record's `Nats-Msg-Id`: the same reading always gets the same one; `repeat` tells apart
    readings of one publication taken within the same millisecond."""
    base = f"{device_id}:{subject}:{reading_time}"
    return f"{base}#{repeat}" if repeat else base


def reading_time_of(payload: bytes) -> str:
    """A reading document's `time` (bridge/runtime/documents.py sets it)."""
    return str(json.loads(payload)["time"])


def stream_subjects(subjects) -> list[str]:
    """What a stream created for these durable subjects captures: `sensors.>` when they all sit
    under it (one stream serves a whole fleet), else exactly them."""
    subjects = sorted(set(subjects))
    if all(subject.startswith("sensors.") for subject in subjects):
        return ["sensors.>"]
    return subjects


def stream_config(name: str, subjects, replicas: int) -> dict:
    """The stream for durable readings: old readings discarded after `MAX_AGE`, repeats within
    `DUPLICATE_WINDOW` dropped."""
    return {
        "name": name,
        "subjects": stream_subjects(subjects),
        "retention": "limits",
        "storage": "file",
        "discard": "old",
        "num_replicas": replicas,
        "max_age": MAX_AGE * NANOSECONDS,
        "duplicate_window": DUPLICATE_WINDOW * NANOSECONDS,
    }


@defer.inlineCallbacks
def ensure_stream(jetstream: JetStream, name: str, subjects, replicas: int):
    """Create the stream unless it exists; fires with "exists" or "created". Raises what the
    server said (a `PermissionViolationError` or `JetStreamApiError` when this user may not)."""
    try:
        yield jetstream.stream_info(name)
        return "exists"
    except StreamNotFoundError:
        pass
    yield jetstream.add_stream(stream_config(name, subjects, replicas))
    return "created"


def describe_stream_failure(name: str, error: Exception) -> str:
    """One sentence for a stream that could not be created."""
    if isinstance(error, (PermissionViolationError, JetStreamApiError)):
        return (f"could not create stream {name} ({error}); readings stay in the spool until someone with "
                f"permission creates it (bridge deploy does)")
    return f"could not check stream {name} ({error}); will try again on the next connection"


def spool_thread(reactor) -> Callable:
    """One thread for the spools' fsyncs and deletions, started now and stopped with the reactor;
    returns `run(function, *args)` -> Deferred, calls run in the order made."""
    pool = ThreadPool(minthreads=1, maxthreads=1, name="spool")
    pool.start()
    reactor.addSystemEventTrigger("during", "shutdown", pool.stop)
    return lambda function, *args: deferToThreadPool(reactor, pool, function, *args)


class DurablePublisher:
    """One durable publication: `publish(subject, payload, reading_time=None)` never raises for
    a missing server; the reading waits in the spool until its stream acks it."""

    def __init__(self, client, spool: Spool, *, device_id: str, subject: str, stream: str, reactor,
                 run_io: Callable, jetstream: JetStream | None = None, ack_timeout: float = ACK_TIMEOUT,
                 flush_interval: float = FLUSH_INTERVAL):
        self.client = client
        self.spool = spool
        self.device_id = device_id
        self.subject = subject
        self.stream = stream
        self._reactor = reactor
        self._run_io = run_io
        self._jetstream = jetstream or JetStream(client, timeout=ack_timeout)
        self._flush_interval = flush_interval
        self._queue: collections.deque[Record] = collections.deque()  # unacked, oldest first
        self._queued_bytes = 0
        self._early: list[tuple[str, bytes, str]] = []  # published before the spool was loaded
        self._next_sequence: int | None = None  # known once the spool is loaded
        self._floor = 0  # first sequence not yet acked or dropped
        self._last_time: tuple[str, int] = ("", 0)  # (reading time, repeats of it) for message ids
        self._in_flight: defer.Deferred | None = None
        self._generation = 0  # bumped to disown an in-flight publish (reconnect, drop, stop)
        self._failures = 0
        self._retry = None
        self._io_busy = False
        self._flushing: defer.Deferred | None = None
        self._loop: task.LoopingCall | None = None
        self.stopped = False
        self.acked = 0
        self.duplicates = 0  # acks the stream marked as a repeat: an earlier attempt had been stored
        self.dropped = 0  # unacked readings the spool's bound pushed out
        self.spool_bytes = 0
        self._failed_log = RepeatSummary(log, "durable {subject}: publish not acked ({n}x): {error}", reactor)
        self._io_log = RepeatSummary(log, "durable {subject}: spool not written ({n}x): {error}", reactor)

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> defer.Deferred:
        """Load the spool (off the reactor thread) and start sending what it holds."""
        self.client.add_listener("connected", self._on_connected)
        self.client.add_listener("reconnected", self._on_connected)
        self.client.add_listener("disconnected", self._on_disconnected)
        self._loop = task.LoopingCall(self.flush)
        self._loop.clock = self._reactor
        self._loop.start(self._flush_interval, now=False)
        return self._run_io(self.spool.load).addCallbacks(self._loaded, self._load_failed)

    def _loaded(self, loaded) -> None:
        for damage in loaded.damaged:
            log.warn("spool {directory}: skipped a damaged tail ({damage}); the readings before it are kept",
                     directory=str(self.spool.directory), damage=damage)
        self._queue.extend(loaded.records)
        self._queued_bytes = sum(record.size for record in loaded.records)
        self._floor = self.spool.floor
        self._next_sequence = self.spool.next_sequence
        self.spool_bytes = self.spool.size
        if loaded.records:
            log.info("durable {subject}: {n} reading(s) from the spool to send", subject=self.subject,
                     n=len(loaded.records))
        early, self._early = self._early, []
        for subject, payload, reading_time in early:
            self.publish(subject, payload, reading_time)
        self._send_next()

    def _load_failed(self, failure) -> None:
        log.error("spool {directory} could not be read ({error}); starting an empty one",
                  directory=str(self.spool.directory), error=failure.getErrorMessage())
        self._loaded(Loaded([]))

    @defer.inlineCallbacks
    def stop(self):
        """Sync the spool and close it; the unacked records wait there for the next start."""
        self.stopped = True
        for event, callback in (("connected", self._on_connected), ("reconnected", self._on_connected),
                                ("disconnected", self._on_disconnected)):
            self.client.remove_listener(event, callback)
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
        self._disown_in_flight()
        while self._flushing is not None:
            yield self._flushing
        yield self.flush(final=True)
        self._failed_log.flush(again=False)
        self._io_log.flush(again=False)

    # -- readings in -------------------------------------------------------------------------

    def publish(self, subject: str, payload: bytes, reading_time: str | None = None) -> None:
        if reading_time is None:
            reading_time = reading_time_of(payload)
        if self._next_sequence is None:
            self._early.append((subject, payload, reading_time))
            return
        repeat = self._last_time[1] + 1 if self._last_time[0] == reading_time else 0
        self._last_time = (reading_time, repeat)
        record = Record(self._next_sequence, subject, message_id(self.device_id, subject, reading_time, repeat),
                        payload)
        self._next_sequence += 1
        self._queue.append(record)
        self._queued_bytes += record.size
        while self._queued_bytes > self.spool.limit and len(self._queue) > 1:  # also when the disk fails
            self._drop_below(self._queue[1].sequence)
        try:
            self.spool.append([record])
        except OSError as error:  # a full disk: the reading still goes out while the bridge runs
            self._io_log.add(subject=subject, error=str(error))
        self._send_next()

    # -- the spool ---------------------------------------------------------------------------

    def flush(self, final: bool = False) -> defer.Deferred:
        """On the spool's thread: fsync what was appended, record the floor, trim; one at a time."""
        if self._io_busy or self._next_sequence is None:
            return defer.succeed(None)
        self._io_busy = True
        self._flushing = self._run_io(self._sync, self._floor, final)
        self._flushing.addCallbacks(self._synced, self._sync_failed)
        return self._flushing

    def _sync(self, floor: int, final: bool) -> tuple[int, int]:
        """On the spool's thread."""
        floor = self.spool.sync(floor)
        if final:
            self.spool.close()
        return floor, self.spool.size

    def _synced(self, result) -> None:
        self._io_busy = False
        self._flushing = None
        floor, self.spool_bytes = result
        if floor > self._floor:
            self._drop_below(floor)

    def _sync_failed(self, failure) -> None:
        self._io_busy = False
        self._flushing = None
        self._io_log.add(subject=self.subject, error=failure.getErrorMessage())

    def _drop_below(self, floor: int) -> None:
        """The spool's bound pushed out everything below `floor`: so does the queue."""
        self._floor = floor
        if self._queue and self._queue[0].sequence < floor and self._in_flight is not None:
            self._disown_in_flight()
        while self._queue and self._queue[0].sequence < floor:
            self._queued_bytes -= self._queue.popleft().size
            self.dropped += 1
        self._send_next()

    # -- readings out ------------------------------------------------------------------------

    def _on_connected(self, *_) -> None:
        self._disown_in_flight()
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
        self._retry = None
        self._send_next()

    def _on_disconnected(self, *_) -> None:
        self._disown_in_flight()

    def _disown_in_flight(self) -> None:
        self._generation += 1
        in_flight, self._in_flight = self._in_flight, None
        if in_flight is not None:
            in_flight.cancel()

    def _send_next(self) -> None:
        if (self.stopped or self._in_flight is not None or not self._queue
                or (self._retry is not None and self._retry.active()) or not self.client.is_connected):
            return
        record = self._queue[0]
        generation = self._generation
        sent = self._jetstream.publish(record.subject, record.payload, msg_id=record.msg_id)
        self._in_flight = sent
        sent.addCallbacks(self._acked, self._publish_failed, callbackArgs=(record, generation),
                          errbackArgs=(record, generation))

    def _acked(self, ack, record: Record, generation: int) -> None:
        if generation != self._generation:
            return
        self._in_flight = None
        self._failures = 0
        if self._queue and self._queue[0] is record:
            self._queued_bytes -= self._queue.popleft().size
            self._floor = record.sequence + 1
            self.acked += 1
            self.duplicates += ack.duplicate
        self._send_next()

    def _publish_failed(self, failure, record: Record, generation: int) -> None:
        if generation != self._generation:
            return None  # disowned: cancelled on purpose
        self._in_flight = None
        self._failures += 1
        error = failure.value
        if isinstance(error, NoStreamResponseError):
            text = f"no stream takes {record.subject} (is {self.stream} created?)"
        else:
            text = str(error) or type(error).__name__
        self._failed_log.add(subject=record.subject, error=text)
        self._retry = self._reactor.callLater(retry_delay(self._failures), self._retry_now)

    def _retry_now(self) -> None:
        self._retry = None
        self._send_next()

    # -- reporting ---------------------------------------------------------------------------

    def info(self) -> dict:
        """The `spool` figure of a durable publication in `info`, `$SRV` and the web view."""
        return {
            "stream": self.stream,
            "unacked": len(self._queue) + len(self._early),
            "bytes": self.spool_bytes,
            "acked": self.acked,
            "duplicates": self.duplicates,
            "dropped": self.dropped,
        }
