"""Everything on its way to the server, bounded: frames not yet handed to the transport.

Theory of operation: publishes are appended to one queue whether or not a connection is up.
While a transport is attached and not paused, the queue is written at the end of each reactor
turn (one write per turn, not one per publish). The queue registers as a streaming producer, so
when the kernel stops taking bytes (a slow or frozen server) the transport pauses it and frames
stay here, where they count against `limit`; past it `publish()` raises. On a lost connection
the frames never written stay queued for the next one; what was already written and not
confirmed by a PONG may be lost, and is counted in `possibly_lost`.

A publish loop that never returns to the reactor (a burst from one callback) would queue all of
it before the first byte leaves, leaving the server idle meanwhile: while `SEND_EARLY` bytes or
more wait here, each publish hands them to the transport (unless it paused us) and asks a TCP
transport to send what the socket takes now (a non-blocking send), so the server forwards while
we encode.
"""

from __future__ import annotations

from twisted.internet.interfaces import IPushProducer
from zope.interface import implementer

from bridge.nats.errors import OutboundBufferFullError

# Largest single transport write while catching up: the transport holds at most one of these
# beyond its own buffer (`connection.TRANSPORT_BUFFER`), so nearly all unsent data is counted here.
WRITE_CHUNK = 64 * 1024
# How much may wait before a publish sends it itself (see above). bench pubsub_mixed, 7 alternating
# rounds: 33.7k msgs/s without, 37.0k with 256 KiB; sending only once per 256 KiB published while
# the transport holds us paused (29.2k) leaves the socket idle behind a growing queue.
SEND_EARLY = 256 * 1024


class Control(bytes):
    """A SUB/UNSUB/PING frame: meaningful only on the connection it was queued for."""


@implementer(IPushProducer)
class _Producer:
    """Registered with one transport; a stale one (after a reconnect) changes nothing."""

    def __init__(self, queue: "OutboundQueue", transport):
        self._queue = queue
        self._transport = transport

    def pauseProducing(self) -> None:
        self._queue.pause(self._transport)

    def resumeProducing(self) -> None:
        self._queue.resume(self._transport)

    def stopProducing(self) -> None:
        pass  # the connection's loss reaches the client through connectionLost


class OutboundQueue:
    def __init__(self, limit: int, reactor):
        self.limit = limit
        self._reactor = reactor
        self._frames: list[bytes] = []
        self._size = 0  # bytes in _frames
        self._queued_msgs = 0  # publishes in _frames (the rest are Control frames)
        self._transport = None
        self._paused = False
        self._write_call = None
        # Publishes handed to the current transport, and how many of them a PONG confirmed.
        self._written_msgs = 0
        self._confirmed_msgs = 0
        self.possibly_lost = 0

    @property
    def pending_bytes(self) -> int:
        return self._size

    @property
    def paused(self) -> bool:
        return self._paused

    def pause(self, transport) -> None:
        """`transport` takes no more bytes for now: frames stay queued. Ignored from a stale one."""
        if transport is self._transport:
            self._paused = True

    def resume(self, transport) -> None:
        """`transport` takes bytes again: write what is queued. Ignored from a stale one."""
        if transport is self._transport:
            self._paused = False
            self.write()

    def publish(self, frame: bytes) -> None:
        size = len(frame)
        if self._size + size > self.limit:
            state = "disconnected" if self._transport is None else "the server is not taking data"
            raise OutboundBufferFullError(
                f"outbound buffer full ({self._size} of {self.limit} bytes waiting; {state}); "
                f"this {size}-byte message was not queued"
            )
        self._frames.append(frame)
        self._size += size
        self._queued_msgs += 1
        if self._transport is None:
            return
        if self._write_call is None and not self._paused:
            self._write_call = self._reactor.callLater(0, self.write)
        if self._size >= SEND_EARLY:
            self._send_early()

    def _send_early(self) -> None:
        """Write what is queued and let the socket take what it can now, without waiting for
        the end of the reactor turn. Only TCP transports can send outside the reactor's poll
        (`doWrite`, a non-blocking send); others get the bytes and send them at the turn's end.
        A send that finds the connection broken leaves it to the reactor, whose next poll of
        the socket reports the loss as usual."""
        transport = self._transport
        if not self._paused:
            self.write()
        send_now = getattr(transport, "doWrite", None)
        if send_now is not None and not transport.disconnecting:
            send_now()

    def control(self, frame: bytes) -> None:
        """Queue a frame for the current connection only; dropped if it is lost first."""
        if self._transport is None:
            return
        self._frames.append(Control(frame))
        self._size += len(frame)
        if self._write_call is None and not self._paused:
            self._write_call = self._reactor.callLater(0, self.write)

    def confirm(self, mark: int) -> None:
        """A PONG arrived for a PING queued when `mark` publishes had been queued."""
        self._confirmed_msgs = max(self._confirmed_msgs, mark)

    def mark(self) -> int:
        """How many publishes precede a frame queued now (for `confirm`)."""
        return self._written_msgs + self._queued_msgs

    def attach(self, transport, first: bytes) -> None:
        """A new connection: `first` (the subscriptions) goes out ahead of everything queued."""
        self._transport = transport
        self._paused = False
        self._written_msgs = self._confirmed_msgs = 0
        transport.registerProducer(_Producer(self, transport), True)
        if first:
            transport.write(first)
        self.write()

    def detach(self, *, lost: bool) -> None:
        """The connection is gone (`lost`) or being closed by us: keep what was never written."""
        if self._write_call is not None and self._write_call.active():
            self._write_call.cancel()
        self._write_call = None
        if lost:
            self.possibly_lost += self._written_msgs - self._confirmed_msgs
        transport, self._transport = self._transport, None
        if transport is not None:
            try:
                transport.unregisterProducer()
            except RuntimeError:
                pass  # the transport already dropped it (connection lost)
        kept = [frame for frame in self._frames if type(frame) is bytes]
        self._frames = kept
        self._size = sum(map(len, kept))
        self._queued_msgs = len(kept)

    def discard(self) -> tuple[int, int]:
        """Drop everything queued (the client is closing); return (messages, bytes) dropped."""
        dropped = (self._queued_msgs, self._size)
        self._frames = []
        self._size = self._queued_msgs = 0
        return dropped

    def write(self) -> None:
        """Hand queued frames to the transport, in chunks, until it pauses us or all is written."""
        if self._write_call is not None:
            if self._write_call.active():
                self._write_call.cancel()
            self._write_call = None
        transport = self._transport
        frames = self._frames
        if transport is None or not frames:
            return
        if self._size <= WRITE_CHUNK and not self._paused:
            self._frames = []
            self._size = 0
            self._written_msgs += self._queued_msgs
            self._queued_msgs = 0
            transport.write(frames[0] if len(frames) == 1 else b"".join(frames))
            return
        while frames and not self._paused and self._transport is transport:
            end, taken = 0, 0
            while end < len(frames) and (taken < WRITE_CHUNK or end == 0):
                taken += len(frames[end])
                end += 1
            chunk = frames[:end]
            del frames[:end]  # before the write: it may pause us or lose the connection
            published = sum(1 for frame in chunk if type(frame) is bytes)
            self._written_msgs += published
            self._queued_msgs -= published
            self._size -= taken
            transport.write(b"".join(chunk))
