"""outbound.py in memory: the bounded queue, writes per reactor turn, pausing, and what a lost connection keeps."""

from __future__ import annotations

import pytest
from twisted.internet import task
from twisted.internet.testing import StringTransport

from bridge.nats import OutboundBufferFullError
from bridge.nats.outbound import SEND_EARLY, WRITE_CHUNK, Control, OutboundQueue


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


class _SocketTransport(_Transport):
    """A TCP transport's `doWrite` (the reactor's "the socket is writable"), counted."""

    connected = True
    disconnecting = False

    def __init__(self):
        super().__init__()
        self.sends = 0
        self.on_send = None

    def doWrite(self):
        self.sends += 1
        if self.on_send is not None:
            self.on_send()


def _attached(limit=1000, first=b"SUB a 1\r\n", transport_type=_Transport):
    """A queue on a task.Clock attached to a fresh `transport_type()`, `first` written at attach."""
    clock = task.Clock()
    queue = OutboundQueue(limit, clock)
    transport = transport_type()
    queue.attach(transport, first)
    return queue, transport, clock


def _queue(limit=1000):
    return _attached(limit, transport_type=StringTransport)


def test_outbound_queue_holds_frames_while_the_transport_is_paused_and_bounds_them():
    """Guards OutboundQueue.pause (what the transport's pauseProducing calls) and write() honouring
    it: without them the queue hands everything to a transport that asked it to stop, and never fills."""
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
    queue.control(b"PING\r\n")
    clock.advance(0)  # ... and goes out at the end of this very turn
    assert transport.writes[-1] == b"PING\r\n"


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


def _attached_to_socket(limit=16 * SEND_EARLY):
    return _attached(limit, b"", _SocketTransport)


def test_a_publish_loop_that_never_yields_hands_its_bytes_over_every_send_early_bytes():
    """Guards OutboundQueue._send_early: without it a burst published in one reactor turn leaves
    nothing to the socket until the turn ends."""
    queue, transport, clock = _attached_to_socket()
    frame = b"x" * 1024
    per_send = SEND_EARLY // len(frame)
    for _ in range(per_send - 1):
        queue.publish(frame)
    assert transport.writes == [] and transport.sends == 0
    queue.publish(frame)
    assert len(b"".join(transport.writes)) == SEND_EARLY and transport.sends == 1
    assert queue.pending_bytes == 0 and not clock.getDelayedCalls()
    for _ in range(per_send + 3):
        queue.publish(frame)
    assert transport.sends == 2 and queue.pending_bytes == 3 * len(frame)
    clock.advance(0)  # the rest goes at the end of the turn, as always
    assert len(b"".join(transport.writes)) == (2 * per_send + 3) * len(frame) and queue.pending_bytes == 0


def test_while_paused_with_send_early_bytes_waiting_each_publish_asks_the_socket_and_its_resume_writes():
    """Paused, the queue keeps its frames and every publish lets the socket send; once a send
    empties the transport it resumes the queue (as Twisted's doWrite does), which writes what waited."""
    queue, transport, clock = _attached_to_socket()
    transport.producer.pauseProducing()
    for _ in range(SEND_EARLY // 1024 - 1):
        queue.publish(b"x" * 1024)
    assert transport.sends == 0
    queue.publish(b"x" * 1024)
    queue.publish(b"x" * 1024)
    assert transport.sends == 2 and transport.writes == [] and queue.pending_bytes == SEND_EARLY + 1024
    transport.on_send = transport.producer.resumeProducing
    queue.publish(b"x" * 1024)
    assert transport.sends == 3 and len(b"".join(transport.writes)) == SEND_EARLY + 2048 and queue.pending_bytes == 0


def test_no_early_send_on_a_transport_that_is_closing_or_cannot_send_by_itself():
    queue, transport, clock = _attached_to_socket()
    transport.disconnecting = True
    queue.publish(b"x" * SEND_EARLY)
    assert transport.sends == 0 and len(b"".join(transport.writes)) == SEND_EARLY
    queue, transport, clock = _attached(limit=2 * SEND_EARLY, first=b"")
    queue.publish(b"y" * SEND_EARLY)  # no doWrite (TLS, a test transport): written, sent at the turn's end
    assert transport.writes == [b"y" * SEND_EARLY]


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
