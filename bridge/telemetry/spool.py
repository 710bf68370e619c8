"""A durable publication's readings on disk until a stream has acked them. Plain file handling, no
Twisted: appends are cheap writes to the page cache; fsync and deletion run on another thread
(never the reactor's: fsync can take tens of milliseconds on an SD card).

Layout, one directory per publication (`directory_name(subject)`) in the state directory:

- segment files `<first sequence>.seg`, appended to; a record is framed as
  `length (4 bytes) | CRC32 (4 bytes) | body`, the body `sequence (8) | subject length (2) |
  msg id length (2) | subject | msg id | payload`;
- `floor`: the first sequence still wanted, written with `write_private_file`. Everything below it
  was acked by the stream or dropped to keep the spool within its bound.

A segment whose records are all below the floor is deleted. Past `limit` bytes the oldest
segments go, whatever they hold (`sync` says up to which sequence). A load reads each segment's
valid prefix: a torn or corrupt tail (a power cut mid-write) ends that segment's records, and new
records always go to a new segment, never after the damage.
"""

from __future__ import annotations

import os
import re
import struct
import threading
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from bridge.state import fsync_directory, write_private_file

FRAME = struct.Struct(">II")  # body length, CRC32 of the body
BODY_HEAD = struct.Struct(">QHH")  # sequence, subject length, msg id length
MAX_BODY = 16 * 1024 * 1024  # a larger length field can only be damage
SEGMENT_SUFFIX = ".seg"
FLOOR_FILE = "floor"


@dataclass(frozen=True)
class Record:
    """One reading as it will be published: `msg_id` becomes its `Nats-Msg-Id` header."""

    sequence: int
    subject: str
    msg_id: str
    payload: bytes

    def encode(self) -> bytes:
        subject, msg_id = self.subject.encode(), self.msg_id.encode()
        body = BODY_HEAD.pack(self.sequence, len(subject), len(msg_id)) + subject + msg_id + self.payload
        return FRAME.pack(len(body), zlib.crc32(body)) + body

    @property
    def size(self) -> int:
        """Bytes on disk."""
        return FRAME.size + BODY_HEAD.size + len(self.subject.encode()) + len(self.msg_id.encode()) + len(self.payload)


def decode_records(data: bytes) -> tuple[list[Record], int]:
    """The valid records at the start of `data`, and where they end (`len(data)` when all are valid)."""
    records: list[Record] = []
    offset = 0
    while offset + FRAME.size <= len(data):
        length, crc = FRAME.unpack_from(data, offset)
        start, end = offset + FRAME.size, offset + FRAME.size + length
        if length < BODY_HEAD.size or length > MAX_BODY or end > len(data):
            break
        body = data[start:end]
        if zlib.crc32(body) != crc:
            break
        sequence, subject_length, id_length = BODY_HEAD.unpack_from(body)
        if BODY_HEAD.size + subject_length + id_length > length:
            break
        position = BODY_HEAD.size
        try:
            subject = body[position:position + subject_length].decode()
            msg_id = body[position + subject_length:position + subject_length + id_length].decode()
        except UnicodeDecodeError:
            break
        records.append(Record(sequence, subject, msg_id, body[position + subject_length + id_length:]))
        offset = end
    return records, offset


def directory_name(subject: str) -> str:
    """A file name for a publication's spool: the subject's safe characters and a hash that keeps
    two subjects differing only in unsafe characters apart."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", subject).strip(".") or "subject"
    return f"{safe[:80]}-{zlib.crc32(subject.encode()):08x}"


@dataclass
class Segment:
    first: int  # the sequence its name says: every record in it has this or a later one
    path: Path
    size: int


@dataclass
class Loaded:
    """What `Spool.load` found: the records still wanted, in order, and the damage it skipped."""

    records: list[Record]
    damaged: list[str] = field(default_factory=list)  # "<file>: <n> bytes after offset <m>"


class Spool:
    """The files of one durable publication; `limit` bounds the bytes its segments hold.

    `append` runs on the caller's thread: it only writes to the page cache, so a killed process
    loses nothing appended. `load`, `sync` and `close` run on one other thread: they fsync and
    delete. A lock keeps the two apart; no fsync happens under it.
    """

    def __init__(self, directory: Path, limit: int, segment_size: int | None = None):
        if limit <= 0:
            raise ValueError("a spool needs a positive limit")
        self.directory = Path(directory)
        self.limit = limit
        self.segment_size = segment_size or max(limit // 8, 1)
        self.floor = 0
        self.next_sequence = 0
        self.segments: list[Segment] = []
        self._lock = threading.Lock()
        self._fd: int | None = None  # the segment being appended to, opened by the first append after a load
        self._retired: list[int] = []  # descriptors of full segments, closed once synced
        self._new_entries = False  # a segment file was created since the last sync

    @property
    def size(self) -> int:
        return sum(segment.size for segment in self.segments)

    def load(self) -> Loaded:
        """Read what a previous run left; afterwards `next_sequence` continues after it."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.floor = self._read_floor()
        self.segments = sorted(
            (Segment(int(path.stem), path, path.stat().st_size) for path in self.directory.glob("*" + SEGMENT_SUFFIX)
             if path.stem.isdigit()),
            key=lambda segment: segment.first,
        )
        loaded = Loaded([])
        last = self.floor - 1
        for segment in self.segments:
            data = segment.path.read_bytes()
            records, valid = decode_records(data)
            if valid < len(data):
                loaded.damaged.append(f"{segment.path.name}: {len(data) - valid} bytes after offset {valid}")
            for record in records:
                if record.sequence > last:  # in order; a record below the floor was acked or dropped
                    loaded.records.append(record)
                    last = record.sequence
        self.next_sequence = max(last + 1, self.floor)
        for path in self._trimmed():
            path.unlink(missing_ok=True)
        return loaded

    def append(self, records: list[Record]) -> None:
        """Add `records` (sequences increasing, above any appended before) at the end."""
        if not records:
            return
        data = b"".join(record.encode() for record in records)
        with self._lock:
            if self._fd is None or self.segments[-1].size >= self.segment_size:
                self._start_segment(records[0].sequence)
            os.write(self._fd, data)
            self.segments[-1].size += len(data)
            self.next_sequence = records[-1].sequence + 1

    def sync(self, floor: int | None = None) -> int:
        """fsync what was appended; with `floor`, everything below it is done with (acked): delete
        the segments it empties. Past `limit` the oldest segments go too. The floor afterwards."""
        with self._lock:
            retired, self._retired = self._retired, []
            current, new_entries, self._new_entries = self._fd, self._new_entries, False
        for descriptor in retired:
            os.fsync(descriptor)
            os.close(descriptor)
        if current is not None:
            os.fsync(current)
        if new_entries:
            fsync_directory(self.directory)
        with self._lock:
            before = self.floor
            if floor is not None and floor > self.floor:
                self.floor = floor
            doomed = self._trimmed() + self._over_bound()
        for path in doomed:
            path.unlink(missing_ok=True)
        if self.floor > before:
            write_private_file(self.directory / FLOOR_FILE, str(self.floor).encode())
        return self.floor

    def close(self) -> None:
        """After the last `sync`."""
        with self._lock:
            descriptors = self._retired + ([self._fd] if self._fd is not None else [])
            self._retired, self._fd = [], None
        for descriptor in descriptors:
            os.close(descriptor)

    def _trimmed(self) -> list[Path]:
        """Take out the segments whose records are all below the floor; the one appended to stays."""
        gone = []
        while len(self.segments) > 1 and self.segments[1].first <= self.floor:
            gone.append(self.segments.pop(0).path)
        if len(self.segments) == 1 and self._fd is None and self.next_sequence <= self.floor:
            gone.append(self.segments.pop(0).path)
        return gone

    def _over_bound(self) -> list[Path]:
        """Take out the oldest segments until the rest fit in `limit`; the floor moves past them."""
        gone = []
        if self.size > self.limit and len(self.segments) == 1:  # one segment alone over: start a fresh one
            self._start_segment(self.next_sequence)
        while self.size > self.limit and len(self.segments) > 1:
            gone.append(self.segments.pop(0).path)
            self.floor = max(self.floor, self.segments[0].first)
        return gone

    def _start_segment(self, first: int) -> None:
        """Under the lock."""
        if self._fd is not None:
            self._retired.append(self._fd)
        path = self.directory / f"{first:020d}{SEGMENT_SUFFIX}"
        self.segments = [segment for segment in self.segments if segment.path != path]  # a damaged one, no records
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
        self._new_entries = True
        self.segments.append(Segment(first, path, 0))

    def _read_floor(self) -> int:
        try:
            text = (self.directory / FLOOR_FILE).read_text().strip()
        except FileNotFoundError:
            return 0
        return int(text) if text.isdigit() else 0
