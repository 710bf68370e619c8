"""Parser throughput on several traffic shapes, ours vs nats-py's, in the same process.

Each shape is one stream cut into 64 KiB chunks; both parsers get the very same chunks. Every
frame reaches a consumer that only counts it: for ours a loop over the events `feed()` returns,
for nats-py the `await nc._process_msg(...)` / `_process_ping()` / `_process_pong()` its parser
makes per frame. nats-py's parser hands header blocks over as raw bytes, while ours returns them
parsed, so its stand-in connection parses each block with nats-py's own
`Client._process_headers`, the step its client takes before any callback sees a message.

Repetitions alternate (ours, theirs, ours, ...) so that drift on a shared machine hits both
alike; figures are medians of frames per CPU second (time.process_time). The row reports the
shape where ours compares worst; every shape's figures go to stderr and into `shapes`.
"""

from __future__ import annotations

import gc
import random
import statistics
import sys
import time

from nats.aio.client import Client as NatsPyClient
from nats.protocol.parser import Parser as NatsPyParser

from bridge.nats.protocol import Parser

CHUNK_SIZE = 64 * 1024
REPETITIONS = 7

PAYLOAD = b"0123456789abcdef"
HEADER_BLOCK = b"NATS/1.0\r\nTrace-Id: 4bf92f3577b34da6\r\nContent-Type: application/json\r\n\r\n"


def msg(subject: bytes, payload: bytes, sid: int = 1, reply: bytes | None = None) -> bytes:
    reply_field = reply + b" " if reply else b""
    return b"MSG %s %d %s%d\r\n%s\r\n" % (subject, sid, reply_field, len(payload), payload)


def hmsg(subject: bytes, payload: bytes, block: bytes = HEADER_BLOCK, sid: int = 2) -> bytes:
    return b"HMSG %s %d %d %d\r\n%s%s\r\n" % (subject, sid, len(block), len(block) + len(payload), block, payload)


def msg_only() -> list[bytes]:
    """One subscription's stream: the same subject, sid and 16-byte size every time."""
    return [msg(b"bench.parser.msgs", PAYLOAD)] * 200_000


def msg_with_reply() -> list[bytes]:
    """Requests: a different reply inbox on every message, so no control line repeats."""
    return [msg(b"bench.parser.requests", PAYLOAD, reply=b"_INBOX.kR2x9.%d" % i) for i in range(100_000)]


def hmsg_only() -> list[bytes]:
    return [hmsg(b"bench.parser.traced", PAYLOAD)] * 100_000


def msg_hmsg_alternating() -> list[bytes]:
    return [msg(b"bench.parser.msgs", PAYLOAD), hmsg(b"bench.parser.traced", PAYLOAD)] * 50_000


def mixed_sizes() -> list[bytes]:
    """Payloads from 0 B to 64 KiB, log-uniform, random bytes (the larger ones hold a CRLF now and then)."""
    rng = random.Random(7)
    sizes = [0] + [int(2 ** rng.uniform(0, 16)) for _ in range(9_999)]
    return [msg(b"bench.parser.sizes", rng.randbytes(size)) for size in sizes]


def payloads_with_crlf() -> list[bytes]:
    return [msg(b"bench.parser.lines", b"01234\r\n6789\r\nbcd")] * 200_000


def ping_pong_interleaved() -> list[bytes]:
    """A PING or PONG after every second MSG: a keepalive-heavy link at its worst."""
    message = msg(b"bench.parser.msgs", PAYLOAD)
    return [message, message, b"PING\r\n", message, message, b"PONG\r\n"] * 33_334


SHAPES = {
    "msg": msg_only,
    "msg_reply": msg_with_reply,
    "hmsg": hmsg_only,
    "msg_hmsg": msg_hmsg_alternating,
    "sizes_0_64k": mixed_sizes,
    "crlf_payloads": payloads_with_crlf,
    "ping_pong": ping_pong_interleaved,
}


def chunked(frames: list[bytes]) -> list[bytes]:
    stream = b"".join(frames)
    return [stream[start : start + CHUNK_SIZE] for start in range(0, len(stream), CHUNK_SIZE)]


def ours(chunks: list[bytes], frames: int) -> float:
    parser = Parser()
    count = 0
    started = time.process_time()
    for chunk in chunks:
        for _ in parser.feed(chunk):
            count += 1
    elapsed = time.process_time() - started
    if count != frames:
        raise RuntimeError(f"our parser produced {count} events, expected {frames}")
    return count / elapsed


class CountingConnection:
    """The part of nats-py's Client its parser calls, counting frames; header blocks are parsed
    by nats-py's own code, as its client does for every HMSG."""

    _process_headers = NatsPyClient._process_headers
    _parse_header_lines = staticmethod(NatsPyClient._parse_header_lines)

    def __init__(self):
        self.count = 0

    async def _error_cb(self, error):
        raise error

    async def _process_msg(self, sid, subject, reply, data, headers):
        if headers:
            await self._process_headers(headers)
        self.count += 1

    async def _process_ping(self):
        self.count += 1

    async def _process_pong(self):
        self.count += 1

    async def _process_info(self, info):
        self.count += 1

    async def _process_err(self, message):
        self.count += 1

    async def _process_op_err(self, error):
        raise error


def drive(parser: NatsPyParser, chunk: bytes) -> None:
    """What nats-py's reading task does with `await parser.parse(chunk)`: the coroutine never
    suspends here, so one send() runs it to completion without an event loop in the way."""
    step = parser.parse(chunk)
    try:
        step.send(None)
    except StopIteration:
        return
    raise RuntimeError("nats-py's parser suspended; the benchmark cannot drive it")


def theirs(chunks: list[bytes], frames: int) -> float:
    connection = CountingConnection()
    parser = NatsPyParser(connection)
    started = time.process_time()
    for chunk in chunks:
        drive(parser, chunk)
    elapsed = time.process_time() - started
    if connection.count != frames:
        raise RuntimeError(f"nats-py's parser produced {connection.count} events, expected {frames}")
    return connection.count / elapsed


class RecordingConnection(CountingConnection):
    def __init__(self):
        super().__init__()
        self.seen = []

    async def _process_msg(self, sid, subject, reply, data, headers):
        parsed = await self._process_headers(headers) if headers else None
        self.seen.append((subject.decode(), sid, reply.decode() or None, data, parsed))

    async def _process_ping(self):
        self.seen.append("PING")

    async def _process_pong(self):
        self.seen.append("PONG")


def check_same_events(shape: str, chunks: list[bytes]) -> None:
    """Both parsers must read the whole stream the same way, or the race means nothing."""
    recorder = RecordingConnection()
    parser = NatsPyParser(recorder)
    for chunk in chunks:
        drive(parser, chunk)
    mine = []
    our_parser = Parser()
    for chunk in chunks:
        for event in our_parser.feed(chunk):
            if hasattr(event, "payload"):
                headers = dict(event.headers.items()) if event.headers is not None else None
                mine.append((event.subject, event.sid, event.reply, event.payload, headers))
            else:
                mine.append(type(event).__name__.upper())
    if mine != recorder.seen:
        at = next((i for i, (a, b) in enumerate(zip(mine, recorder.seen)) if a != b), min(len(mine), len(recorder.seen)))
        raise RuntimeError(f"{shape}: parsers disagree at event {at} (ours {len(mine)}, nats-py {len(recorder.seen)})")


def measure_shape(shape: str) -> tuple[float, float]:
    frames = SHAPES[shape]()
    chunks = chunked(frames)
    check_same_events(shape, chunks)
    ours(chunks, len(frames)), theirs(chunks, len(frames))  # warm-up, discarded
    our_rates, their_rates = [], []
    for _ in range(REPETITIONS):
        gc.collect()
        our_rates.append(ours(chunks, len(frames)))
        gc.collect()
        their_rates.append(theirs(chunks, len(frames)))
    return statistics.median(our_rates), statistics.median(their_rates)


def run() -> dict:
    shapes = {}
    for shape in SHAPES:
        our_rate, their_rate = measure_shape(shape)
        shapes[shape] = {"ours": round(our_rate), "baseline": round(their_rate), "ratio": round(our_rate / their_rate, 2)}
        print(f"bench: parser {shape:>14}: {our_rate:>11,.0f} vs {their_rate:>9,.0f} frames/s, ratio {our_rate / their_rate:.2f}",
              file=sys.stderr, flush=True)  # fmt: skip
    worst = min(shapes, key=lambda shape: shapes[shape]["ratio"])
    return {
        "ours": shapes[worst]["ours"],
        "baseline": shapes[worst]["baseline"],
        "unit": "msgs/s",
        "worst_shape": worst,
        "shapes": shapes,
    }
