"""Parser throughput: 200k MSG frames with 16-byte payloads in 64 KiB chunks, ours vs nats-py's.

Both parsers get the very same chunks in the same process. Each message reaches a consumer that
only counts it: for ours a loop over the events `feed()` returns, for nats-py the
`await nc._process_msg(...)` its parser makes per message. Repetitions alternate (ours, theirs,
ours, ...) so that drift on a shared machine hits both alike; the figures are medians of
messages per CPU second (time.process_time).
"""

from __future__ import annotations

import gc
import statistics
import time

from nats.protocol.parser import Parser as NatsPyParser

from bridge.nats.protocol import Msg, Parser

FRAMES = 200_000
PAYLOAD_SIZE = 16
CHUNK_SIZE = 64 * 1024
REPETITIONS = 7
TARGET_RATIO = 2


def make_chunks() -> list[bytes]:
    payload = bytes(range(65, 65 + PAYLOAD_SIZE))
    stream = b"MSG bench.parser.msgs 1 %d\r\n%s\r\n" % (PAYLOAD_SIZE, payload) * FRAMES
    return [stream[start : start + CHUNK_SIZE] for start in range(0, len(stream), CHUNK_SIZE)]


def ours(chunks: list[bytes]) -> float:
    parser = Parser()
    count = 0
    started = time.process_time()
    for chunk in chunks:
        for _ in parser.feed(chunk):
            count += 1
    elapsed = time.process_time() - started
    if count != FRAMES:
        raise RuntimeError(f"our parser produced {count} messages, expected {FRAMES}")
    return count / elapsed


class CountingConnection:
    """The part of nats-py's Client its parser calls for MSG frames."""

    def __init__(self):
        self.count = 0

    async def _process_msg(self, sid, subject, reply, data, headers):
        self.count += 1


def theirs(chunks: list[bytes]) -> float:
    connection = CountingConnection()
    parser = NatsPyParser(connection)
    started = time.process_time()
    for chunk in chunks:
        # What nats-py's reading task does with `await parser.parse(chunk)`: the coroutine never
        # suspends here, so one send() runs it to completion without an event loop in the way.
        step = parser.parse(chunk)
        try:
            step.send(None)
        except StopIteration:
            continue
        raise RuntimeError("nats-py's parser suspended; the benchmark cannot drive it")
    elapsed = time.process_time() - started
    if connection.count != FRAMES:
        raise RuntimeError(f"nats-py's parser produced {connection.count} messages, expected {FRAMES}")
    return connection.count / elapsed


def check_same_messages(chunks: list[bytes]) -> None:
    """Both parsers must read the stream the same way, or the race means nothing."""
    first = Parser().feed(chunks[0])[0]
    seen = []

    class Recorder:
        async def _process_msg(self, sid, subject, reply, data, headers):
            seen.append(Msg(subject.decode(), sid, reply.decode() or None, data))

    step = NatsPyParser(Recorder()).parse(chunks[0])
    try:
        step.send(None)
    except StopIteration:
        pass
    if seen[0] != first:
        raise RuntimeError(f"parsers disagree on the first frame: {first!r} vs {seen[0]!r}")


def run() -> dict:
    chunks = make_chunks()
    check_same_messages(chunks)
    ours(chunks), theirs(chunks)  # warm-up, discarded
    our_rates, their_rates = [], []
    for _ in range(REPETITIONS):
        gc.collect()
        our_rates.append(ours(chunks))
        gc.collect()
        their_rates.append(theirs(chunks))
    return {
        "ours": round(statistics.median(our_rates)),
        "baseline": round(statistics.median(their_rates)),
        "unit": "msgs/s",
        "target": TARGET_RATIO,
    }
