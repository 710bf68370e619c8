"""The NATS client protocol as bytes in, events out: no sockets, no reactor (in the spirit of h11).

`Parser.feed()` accepts any split of the server's byte stream and returns the complete frames it
now holds; the encoders build what a client sends. Everything here can be tested byte by byte.
"""

from __future__ import annotations

import json
from typing import Iterable, Iterator, Mapping

CRLF = b"\r\n"
PING = b"PING\r\n"
PONG = b"PONG\r\n"
HEADER_VERSION = "NATS/1.0"

# nats-server's MAX_CONTROL_LINE_SIZE. INFO is exempt up to MAX_INFO_LINE: in a large cluster its
# connect_urls alone outgrow 4 KiB, and refusing it would make the server unusable.
MAX_CONTROL_LINE = 4096
SERVER_MAX_CONTROL_LINE = 4096  # what nats-server accepts from a client unless configured otherwise
MAX_INFO_LINE = 1024 * 1024
# nats-server refuses a max_payload above 64 MB: a larger announced size is a broken or hostile
# peer, and waiting for it would buffer without bound.
MAX_MESSAGE_SIZE = 64 * 1024 * 1024
FAST_PATH_WINDOW = 16 * 1024
CACHE_SIZE = 1024  # entries per parser cache: a few dozen subscriptions fit many times over


class ProtocolError(Exception):
    """The byte stream is not NATS: the connection cannot be trusted any more."""


class Headers:
    """NATS message headers: ordered, case kept, repeated keys kept (nats-py collapses them)."""

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[tuple[str, str]] | Mapping[str, str | list[str]] | None = None):
        self._items: list[tuple[str, str]] = []
        if items is None:
            return
        if isinstance(items, Headers):
            self._items = list(items._items)
            return
        pairs = items.items() if isinstance(items, Mapping) else items
        for key, value in pairs:
            if isinstance(value, (list, tuple)):
                self._items.extend((key, str(v)) for v in value)
            else:
                self._items.append((key, str(value)))

    def add(self, key: str, value: str) -> None:
        self._items.append((key, value))

    def get(self, key: str, default: str | None = None) -> str | None:
        values = self.get_all(key)
        return values[0] if values else default

    def get_all(self, key: str) -> list[str]:
        exact = [v for k, v in self._items if k == key]
        if exact:
            return exact
        folded = key.lower()
        return [v for k, v in self._items if k.lower() == folded]

    def items(self) -> list[tuple[str, str]]:
        return list(self._items)

    def keys(self) -> list[str]:
        return list(dict.fromkeys(k for k, _ in self._items))

    def __getitem__(self, key: str) -> str:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and bool(self.get_all(key))

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Headers) and self._items == other._items

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"


class Info:
    __slots__ = ("options",)

    def __init__(self, options: dict):
        self.options = options

    def __repr__(self) -> str:
        return f"Info({self.options!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Info) and other.options == self.options


class Err:
    __slots__ = ("message",)

    def __init__(self, message: str):
        self.message = message

    def __repr__(self) -> str:
        return f"Err({self.message!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Err) and other.message == self.message


class Ping:
    def __repr__(self) -> str:
        return "Ping()"


class Pong:
    def __repr__(self) -> str:
        return "Pong()"


class Ok:
    def __repr__(self) -> str:
        return "Ok()"


PING_EVENT = Ping()
PONG_EVENT = Pong()
OK_EVENT = Ok()


class Msg:
    """A MSG or HMSG frame. `status`/`description` come from the header line (`NATS/1.0 503`)."""

    __slots__ = ("subject", "sid", "reply", "payload", "headers", "status", "description", "problem", "_client")

    def __init__(self, subject, sid, reply, payload, headers=None, status=None, description=None, problem=None):
        self.subject = subject
        self.sid = sid
        self.reply = reply
        self.payload = payload
        self.headers = headers
        self.status = status
        self.description = description
        self.problem = problem
        self._client = None

    @property
    def data(self) -> bytes:
        return self.payload

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__[:-1]
                           if getattr(self, name) is not None)
        return f"{type(self).__name__}({fields})"


def parse_headers(block: bytes) -> tuple[Headers, int | None, str | None]:
    """Parse `NATS/1.0[ status[ description]]\\r\\nKey: Value\\r\\n...\\r\\n`."""
    try:
        text = block.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"header block is not UTF-8: {exc}") from None
    lines = text.split("\r\n")
    first = lines[0]
    version, _, rest = first.partition(" ")
    if version != HEADER_VERSION:
        raise ProtocolError(f"header block does not start with {HEADER_VERSION}: {first[:40]!r}")
    status = description = None
    rest = rest.strip()
    if rest:
        code, _, text_part = rest.partition(" ")
        if len(code) != 3 or not code.isascii() or not code.isdigit():
            raise ProtocolError(f"bad header status {code[:20]!r}")
        status = int(code)
        description = text_part.strip() or None
    headers = Headers()
    for line in lines[1:]:
        if not line:
            continue
        key, sep, value = line.partition(":")
        if not sep or not key or key != key.strip():
            raise ProtocolError(f"bad header line {line[:60]!r}")
        headers._items.append((key, value.strip()))
    return headers, status, description


class Parser:
    """Incremental parser of the server-to-client stream.

    `feed()` returns the events completed by the bytes given so far and keeps the rest. After a
    `ProtocolError` the parser is unusable: the caller closes the connection.
    """

    __slots__ = ("_buf", "_chunks", "_buffered", "_need", "_msg", "_control_lines", "_numbers", "max_control_line")

    def __init__(self, msg_class=Msg, max_control_line: int = MAX_CONTROL_LINE):
        self._buf = b""
        self._chunks: list[bytes] = []
        self._buffered = 0
        self._need = 0  # bytes required before parsing again is worthwhile (a large payload in flight)
        self._msg = msg_class
        # MSG control line -> (subject, sid, None, size): a subscriber sees the same subject, sid and
        # payload size again and again, so most lines are parsed once and then looked up.
        self._control_lines: dict[bytes, tuple[str, int, None, int]] = {}
        # sid and size fields -> int, for lines with a reply inbox, which differ every time.
        self._numbers: dict[bytes, int] = {}
        self.max_control_line = max_control_line

    def feed(self, data: bytes) -> list:
        if self._need:
            self._chunks.append(data)
            self._buffered += len(data)
            if self._buffered < self._need:
                return []
            buf = b"".join(self._chunks)
            self._chunks = []
            self._need = 0
        elif self._buf:
            buf = self._buf + data
        else:
            buf = data
        events: list = []
        append = events.append
        find = buf.find
        pos = 0
        n = len(buf)
        while pos < n:
            end = find(CRLF, pos)
            if end < 0:
                self._check_partial_line(buf, pos)
                break
            if end - pos > self.max_control_line:
                self._check_line_length(buf, pos, end - pos)
            if buf.startswith(b"MSG ", pos):
                # Only when the first payload line has the announced size: a payload holding a
                # CRLF stops the fast path at once, and splitting its window for nothing on every
                # such frame made binary traffic 60 times slower.
                first_payload = find(CRLF, end + 2) - end - 2
                if b"%d" % first_payload == buf[pos:end].rsplit(None, 1)[-1]:
                    done = self._simple_msgs(buf, pos, events)
                    if done != pos:
                        pos = done
                        continue
            parts = buf[pos:end].split(None, 1)
            op = parts[0].upper() if parts else b""
            rest = parts[1] if len(parts) > 1 else b""
            if op == b"MSG":
                consumed = self._parse_msg(buf, end, rest, False, append)
            elif op == b"HMSG":
                consumed = self._parse_msg(buf, end, rest, True, append)
            elif op == b"PING":
                append(PING_EVENT)
                consumed = end + 2
            elif op == b"PONG":
                append(PONG_EVENT)
                consumed = end + 2
            elif op == b"+OK":
                append(OK_EVENT)
                consumed = end + 2
            elif op == b"-ERR":
                append(Err(rest.strip().strip(b"'").decode("utf-8", "replace")))
                consumed = end + 2
            elif op == b"INFO":
                append(Info(_parse_info(rest)))
                consumed = end + 2
            else:
                raise ProtocolError(f"unknown protocol operation {buf[pos:end][:40]!r}")
            if consumed < 0:
                self._wait_for(buf, pos, -consumed)
                return events
            pos = consumed
        self._buf = buf[pos:] if pos < n else b""
        return events

    def _simple_msgs(self, buf: bytes, pos: int, events: list) -> int:
        """Fast path: a run of complete MSG frames whose payloads hold no CRLF.

        One C-level split of a window turns the run into alternating control/payload lines, and
        a control line seen before costs one dict lookup, so each message is a handful of C
        calls. Returns where the run ended; anything unusual (another op, a payload with CRLF in
        it, an incomplete frame) is left to the general loop.
        """
        lines = buf[pos : pos + FAST_PATH_WINDOW].split(CRLF)
        del lines[-1]  # cut by the window or the chunk, or empty: not a complete line
        pairs = iter(lines)
        known = self._control_lines
        lookup = known.get  # not known[...]: raising KeyError on every reply line costs more
        numbers = self._numbers
        append = events.append
        cls = self._msg
        before = len(events)
        for control, payload in zip(pairs, pairs):
            parsed = lookup(control)
            if parsed is not None:
                subject, sid, reply, size = parsed
            else:
                args = control.split()
                if len(args) == 4:
                    verb, subject, sid, size = args
                    reply = None
                elif len(args) == 5:
                    verb, subject, sid, reply, size = args
                else:
                    break
                if verb != b"MSG" or len(control) > self.max_control_line:
                    break
                try:
                    sid, size = numbers[sid], numbers[size]
                except KeyError:
                    if not (sid.isdigit() and size.isdigit()):
                        break
                    if len(numbers) >= CACHE_SIZE:
                        numbers.clear()
                    try:
                        sid = numbers.setdefault(sid, int(sid))
                        size = numbers.setdefault(size, int(size))
                    except ValueError:  # more digits than int() takes
                        break  # the general loop re-reads this frame and names the problem
                try:
                    subject = subject.decode()
                    reply = reply.decode() if reply is not None else None
                except UnicodeDecodeError:
                    break
                if reply is None:  # replies are one-off inboxes: caching them would only churn
                    if len(known) >= CACHE_SIZE:
                        known.clear()
                    known[control] = (subject, sid, None, size)
            if len(payload) != size:
                break
            append(cls(subject, sid, reply, payload))
        done = len(events) - before
        if done:
            pos += len(CRLF.join(lines[: 2 * done])) + 2
        return pos

    def _wait_for(self, buf: bytes, pos: int, needed_end: int) -> None:
        rest = buf[pos:]
        self._buf = b""
        self._chunks = [rest]
        self._buffered = len(rest)
        self._need = needed_end - pos

    def _check_partial_line(self, buf: bytes, pos: int) -> None:
        pending = len(buf) - pos
        if buf.endswith(b"\r"):
            pending -= 1  # the CR of a CRLF split across chunks is not part of the line
        if pending > self.max_control_line:
            self._check_line_length(buf, pos, pending)

    def _check_line_length(self, buf: bytes, pos: int, length: int) -> None:
        """The same limit whether the line is complete or still arriving, so splits never matter."""
        is_info = buf[pos : pos + 4].upper() == b"INFO" and buf[pos + 4 : pos + 5] in (b" ", b"\t")
        if length > (MAX_INFO_LINE if is_info else self.max_control_line):
            raise ProtocolError("maximum control line exceeded")

    def _parse_msg(self, buf: bytes, end: int, argline: bytes, with_headers: bool, append) -> int:
        """Parse a MSG/HMSG whose control line ends at `end`; return where the next frame starts,
        or minus the end offset still needed when the payload is incomplete."""
        args = argline.split()
        if with_headers:
            if len(args) == 4:
                subject, sid, hdr_size, size = args
                reply = None
            elif len(args) == 5:
                subject, sid, reply, hdr_size, size = args
            else:
                raise ProtocolError(f"bad HMSG arguments: {argline[:80]!r}")
            hdr_len = _size(hdr_size)
            total = _size(size)
            if hdr_len > total:
                raise ProtocolError("HMSG header size larger than total size")
        else:
            if len(args) == 3:
                subject, sid, size = args
                reply = None
            elif len(args) == 4:
                subject, sid, reply, size = args
            else:
                raise ProtocolError(f"bad MSG arguments: {argline[:80]!r}")
            hdr_len = 0
            total = _size(size)
        if total > MAX_MESSAGE_SIZE:
            raise ProtocolError(f"message of {total} bytes announced; no server sends more than {MAX_MESSAGE_SIZE}")
        start = end + 2
        stop = start + total
        if stop + 2 > len(buf):
            return -(stop + 2)
        if buf[stop : stop + 2] != CRLF:
            raise ProtocolError("message payload not followed by CRLF")
        headers = status = description = None
        if with_headers:
            headers, status, description = parse_headers(buf[start : start + hdr_len])
        try:
            subject_text = subject.decode()
            reply_text = reply.decode() if reply is not None else None
        except UnicodeDecodeError:
            raise ProtocolError("subject is not UTF-8") from None
        payload = buf[start + hdr_len : stop]
        append(self._msg(subject_text, _size(sid), reply_text, payload, headers, status, description))
        return stop + 2


def _size(field: bytes) -> int:
    """A non-negative decimal field; anything else is a protocol error, not a ValueError."""
    if field.isdigit():
        try:
            return int(field)
        except ValueError:  # longer than int()'s digit limit
            pass
    raise ProtocolError(f"expected a number, got {field[:20]!r}")


def _parse_info(raw: bytes) -> dict:
    try:
        options = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(f"INFO is not valid JSON: {exc}") from None
    if not isinstance(options, dict):
        raise ProtocolError("INFO is not a JSON object")
    return options


# --- encoders -------------------------------------------------------------------------------


def encode_connect(options: dict) -> bytes:
    return b"CONNECT " + json.dumps(options, separators=(",", ":")).encode() + CRLF


def encode_pub(subject: str, payload: bytes, reply: str | None = None) -> bytes:
    if reply:
        return b"PUB %s %s %d\r\n%s\r\n" % (subject.encode(), reply.encode(), len(payload), payload)
    return b"PUB %s %d\r\n%s\r\n" % (subject.encode(), len(payload), payload)


def encode_headers(headers: Headers | Mapping | Iterable[tuple[str, str]], status: int | None = None) -> bytes:
    if not isinstance(headers, Headers):
        headers = Headers(headers)
    lines = [HEADER_VERSION if status is None else f"{HEADER_VERSION} {status}"]
    for key, value in headers._items:
        if not key or any(c in key for c in ": \r\n\t") or "\r" in value or "\n" in value:
            raise ValueError(f"invalid header {key!r}: {value!r}")
        lines.append(f"{key}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def encode_hpub(subject: str, payload: bytes, headers, reply: str | None = None) -> bytes:
    block = encode_headers(headers)
    total = len(block) + len(payload)
    if reply:
        line = b"HPUB %s %s %d %d\r\n" % (subject.encode(), reply.encode(), len(block), total)
    else:
        line = b"HPUB %s %d %d\r\n" % (subject.encode(), len(block), total)
    return line + block + payload + CRLF


def encode_sub(subject: str, sid: int, queue: str | None = None) -> bytes:
    if queue:
        return b"SUB %s %s %d\r\n" % (subject.encode(), queue.encode(), sid)
    return b"SUB %s %d\r\n" % (subject.encode(), sid)


def encode_unsub(sid: int, max_msgs: int | None = None) -> bytes:
    if max_msgs:
        return b"UNSUB %d %d\r\n" % (sid, max_msgs)
    return b"UNSUB %d\r\n" % sid
