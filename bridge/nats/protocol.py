"""The NATS client protocol as bytes in, events out: no sockets, no reactor (in the spirit of h11).

`Parser.feed()` accepts any split of the server's byte stream and returns the complete frames it
now holds; the encoders build what a client sends. Everything here can be tested byte by byte.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping

CRLF = b"\r\n"
PING = b"PING\r\n"
PONG = b"PONG\r\n"
HEADER_VERSION = "NATS/1.0"

# nats-server's default limit for the control lines a *client* sends (its MAX_CONTROL_LINE_SIZE):
# the client checks outgoing lines against it.
SERVER_MAX_CONTROL_LINE = 4096
# The parser's bound on incoming control lines protects memory, not the server's rule: the server
# forwards long subjects and reply subjects it accepted from other clients. Settable per parser.
DEFAULT_MAX_CONTROL_LINE = 64 * 1024
# INFO is allowed more: in a large cluster its connect_urls alone outgrow other lines by far.
MAX_INFO_LINE = 1024 * 1024
# nats-server refuses a max_payload above 64 MB: a larger announced size is a broken or hostile
# peer, and waiting for it would buffer without bound.
MAX_MESSAGE_SIZE = 64 * 1024 * 1024
CACHE_ENTRIES = 1024  # per fast-path cache: a few dozen subscriptions fit many times over


class ProtocolError(Exception):
    """The byte stream is not NATS: the connection cannot be trusted any more."""


class Headers:
    """NATS message headers: ordered, case kept, repeated keys kept (nats-py collapses them)."""

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[tuple[str, str]] | Mapping[str, str | list[str]] | None = None):
        self._items: list[tuple[str, str]] = []
        if items is None:
            return
        self._items = _header_items(items)

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


def _header_items(items: Iterable[tuple[str, str]] | Mapping[str, str | list[str]]) -> list[tuple[str, str]]:
    """(key, value) pairs of what `Headers()` takes: a list value gives one pair per element."""
    if isinstance(items, Headers):
        return list(items._items)
    pairs = []
    for key, value in items.items() if isinstance(items, Mapping) else items:
        if isinstance(value, (list, tuple)):
            pairs.extend((key, str(v)) for v in value)
        else:
            pairs.append((key, str(value)))
    return pairs


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
    """A MSG or HMSG frame. `status`/`description` come from the header line (`NATS/1.0 503`).

    `problem` names what was wrong inside this one message (a header line that had to be
    skipped, a status that is not a number, a subject that is not UTF-8), None for a clean one:
    the server forwards subjects and header blocks unchecked, so such a message is delivered as
    far as it can be read instead of costing the connection. `client` is the client that
    delivers the message (what `respond` publishes through); the parser leaves it None.
    """

    __slots__ = ("subject", "sid", "reply", "payload", "headers", "status", "description", "problem", "client")

    def __init__(self, subject, sid, reply, payload, headers=None, status=None, description=None, problem=None):
        self.subject = subject
        self.sid = sid
        self.reply = reply
        self.payload = payload
        self.headers = headers
        self.status = status
        self.description = description
        self.problem = problem
        self.client = None

    @property
    def data(self) -> bytes:
        return self.payload

    def __repr__(self) -> str:
        names = ("subject", "sid", "reply", "payload", "headers", "status", "description", "problem")
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in names if getattr(self, name) is not None)
        return f"{type(self).__name__}({fields})"


def parse_headers(block: bytes) -> tuple[Headers, int | None, str | None, str | None]:
    """Parse `NATS/1.0[ status[ description]]\\r\\nKey: Value\\r\\n...\\r\\n` leniently.

    Returns headers, status, description and the problem found (None for a clean block). The
    server forwards header blocks unchecked, so a bad one must cost at most its message's
    headers: a line without a colon or with an empty or padded key is skipped, a status that is
    not three digits gives status None with the rest of the line kept as `description`, and a
    first line that is not `NATS/1.0...` is kept whole as `description`.
    """
    problem = None
    try:
        text = block.decode()
    except UnicodeDecodeError:
        text = block.decode("utf-8", "surrogateescape")
        problem = "header block is not UTF-8"
    first, *lines = text.split("\r\n")
    status = description = None
    version, _, rest = first.partition(" ")
    if version != HEADER_VERSION:
        description = first
        problem = problem or f"header block does not start with {HEADER_VERSION}: {first[:40]!r}"
    elif rest.strip():
        code, _, text_part = rest.strip().partition(" ")
        if len(code) == 3 and code.isascii() and code.isdigit():
            status = int(code)
            description = text_part.strip() or None
        else:
            description = rest
            problem = problem or f"header status is not a number: {rest[:40]!r}"
    items = []
    for line in lines:
        if not line:
            continue
        key, colon, value = line.partition(":")
        if colon and key and key == key.strip():
            items.append((key, value.strip()))
        else:
            problem = problem or f"header line skipped: {line[:40]!r}"
    headers = Headers()
    headers._items = items
    return headers, status, description, problem


class Parser:
    """Incremental parser of the server-to-client stream.

    `feed()` returns the events completed by the bytes given so far and keeps the rest. Only a
    broken frame structure raises `ProtocolError` (after which the parser is unusable and the
    caller closes the connection); anything wrong inside one message is named in its `problem`.

    The reference path (`_parse_frames`, `_parse_frame`) reads one frame at a time and is the
    oracle; `fast=True` adds the fast path (`_parse_frames_fast`), which must give the same
    events for any stream and any split.

    `max_control_line` bounds the memory a control line may take; the client raises it when the
    server announces a larger `max_control_line` in INFO. INFO lines may reach `MAX_INFO_LINE`.
    """

    __slots__ = ("_msg_class", "_parse", "_known_msg_lines", "_known_fields", "_pending", "_pending_size", "_frame_size",
                 "max_control_line")

    def __init__(self, msg_class: type[Msg] = Msg, fast: bool = True):
        self._msg_class = msg_class
        self._parse = self._parse_frames_fast if fast else self._parse_frames
        self._known_msg_lines: dict[bytes, tuple] = {}  # fast path: whole MSG/HMSG lines without reply
        self._known_fields: dict[tuple, tuple] = {}  # fast path: MSG/HMSG fields as bytes -> converted
        self._pending: list = []  # the start of a frame not complete yet
        self._pending_size = 0
        self._frame_size = 0  # that frame's size once its control line is read, else 0
        self.max_control_line = DEFAULT_MAX_CONTROL_LINE

    def feed(self, data: bytes) -> list:
        """The events completed by `data`; an incomplete frame's bytes are kept for the next call."""
        if not data:
            return []
        if self._pending:
            self._pending.append(data)
            self._pending_size += len(data)
            if not self._pending_frame_may_be_complete(data):
                return []
            data = b"".join(self._pending)
            self._pending, self._pending_size, self._frame_size = [], 0, 0
        events: list = []
        pos = self._parse(data, events)
        if pos < len(data):
            self._pending = [data[pos:]]
            self._pending_size = len(data) - pos
        return events

    def _pending_frame_may_be_complete(self, data: bytes) -> bool:
        """Whether joining the pending bytes may complete a frame: joining earlier would copy
        them for nothing, quadratically so for a long line fed in small pieces."""
        if self._frame_size:  # its control line was read: wait for the whole frame
            return self._pending_size >= self._frame_size
        if b"\n" in data:  # the unfinished control line may end in this piece
            return True
        head = b"".join(self._pending[:5])[:5]  # pieces are never empty: five hold the first 5 bytes
        self._check_unfinished_line(head, self._pending_size, data.endswith(b"\r"))
        return False

    # --- reference path ---------------------------------------------------------------------

    def _parse_frames(self, buf: bytes, events: list) -> int:
        """Parse the complete frames in `buf`; return where the first incomplete one starts
        (setting `_frame_size` when only its payload is missing)."""
        pos = 0
        while pos < len(buf):
            end = buf.find(CRLF, pos)
            if end < 0:
                self._check_unfinished_line(buf[pos : pos + 5], len(buf) - pos, buf.endswith(b"\r"))
                break
            if end - pos > self.max_control_line:
                self._check_line_length(buf[pos : pos + 5], end - pos)
            frame_end = self._parse_frame(buf, pos, end, events)
            if frame_end > len(buf):
                self._frame_size = frame_end - pos
                break
            pos = frame_end
        return pos

    def _parse_frame(self, buf: bytes, pos: int, end: int, events: list) -> int:
        """Parse the frame whose control line is `buf[pos:end]`; return where it ends, which is
        beyond `buf` (and no event is added) while its payload is still arriving."""
        parts = buf[pos:end].split(None, 1)
        op = parts[0].upper() if parts else b""
        args = parts[1] if len(parts) > 1 else b""
        if op == b"MSG":
            return self._parse_msg(buf, end, args, False, events)
        if op == b"HMSG":
            return self._parse_msg(buf, end, args, True, events)
        if op == b"PING":
            events.append(PING_EVENT)
        elif op == b"PONG":
            events.append(PONG_EVENT)
        elif op == b"+OK":
            events.append(OK_EVENT)
        elif op == b"-ERR":
            events.append(Err(args.strip().strip(b"'").decode("utf-8", "replace")))
        elif op == b"INFO":
            events.append(Info(_parse_info(args)))
        else:
            raise ProtocolError(f"unknown protocol operation {buf[pos:end][:40]!r}")
        return end + 2

    def _parse_msg(self, buf: bytes, end: int, argline: bytes, with_headers: bool, events: list) -> int:
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
        sid = _size(sid)
        if total > MAX_MESSAGE_SIZE:
            raise ProtocolError(f"message of {total} bytes announced; no server sends more than {MAX_MESSAGE_SIZE}")
        start = end + 2
        stop = start + total
        if stop + 2 > len(buf):
            return stop + 2
        if buf[stop : stop + 2] != CRLF:
            raise ProtocolError("message payload not followed by CRLF")
        subject, reply, problem = _decode_subjects(subject, reply)
        headers = status = description = None
        if with_headers:
            headers, status, description, header_problem = parse_headers(buf[start : start + hdr_len])
            problem = problem or header_problem
        payload = buf[start + hdr_len : stop]
        events.append(self._msg_class(subject, sid, reply, payload, headers, status, description, problem))
        return stop + 2

    def _check_unfinished_line(self, head: bytes, length: int, ends_with_cr: bool) -> None:
        if ends_with_cr:
            length -= 1  # the CR of a CRLF split across chunks is not part of the line
        if length > self.max_control_line:
            self._check_line_length(head, length)

    def _check_line_length(self, head: bytes, length: int) -> None:
        """The same limit whether the line is complete or still arriving, so splits never matter.
        `head` is the line's first five bytes, enough to tell INFO."""
        is_info = head[:4].upper() == b"INFO" and head[4:5] in (b" ", b"\t")
        if length > (MAX_INFO_LINE if is_info else self.max_control_line):
            raise ProtocolError("maximum control line exceeded")

    # --- fast path --------------------------------------------------------------------------
    # Most frames are MSG/HMSG, and a subscription sees the same control line (subject, sid,
    # sizes) again and again. The fast path reads MSG/HMSG control lines with one split and no
    # op dispatch, and remembers lines without a reply subject, so a repeat costs a dict lookup;
    # the payload is sliced by its announced size, so CRLFs inside it cost nothing. Any other
    # frame, and anything unusual in these (a bad number, a subject that is not UTF-8, a payload
    # still arriving or not followed by CRLF), goes to the reference's `_parse_frame`.

    def _parse_frames_fast(self, buf: bytes, events: list) -> int:
        """`_parse_frames` with MSG/HMSG control lines read by `_read_msg_line` or looked up."""
        lookup = self._known_msg_lines.get  # not [...]: a KeyError for every new line costs more
        read_msg_line = self._read_msg_line
        append = events.append
        new_msg = self._msg_class
        find = buf.find
        max_line = self.max_control_line
        n = len(buf)
        pos = 0
        while pos < n:
            end = find(CRLF, pos)
            if end < 0:
                self._check_unfinished_line(buf[pos : pos + 5], len(buf) - pos, buf.endswith(b"\r"))
                break
            if end - pos > max_line:
                self._check_line_length(buf[pos : pos + 5], end - pos)
            line = buf[pos:end]
            fields = lookup(line)
            if fields is None and line.startswith((b"MSG ", b"HMSG ")):
                fields = read_msg_line(line)
            if fields is not None:
                subject, sid, reply, header_size, size = fields
                start = end + 2
                stop = start + size
                if buf[stop : stop + 2] == CRLF:
                    if header_size:
                        payload = buf[start + header_size : stop]
                        headers, status, description, problem = parse_headers(buf[start : start + header_size])
                        append(new_msg(subject, sid, reply, payload, headers, status, description, problem))
                    else:
                        append(new_msg(subject, sid, reply, buf[start:stop]))
                    pos = stop + 2
                    continue
            frame_end = self._parse_frame(buf, pos, end, events)
            if frame_end > n:
                self._frame_size = frame_end - pos
                break
            pos = frame_end
        return pos

    def _read_msg_line(self, line: bytes) -> tuple | None:
        """(subject, sid, reply, header size, total size) of a well-formed `MSG`/`HMSG` line, as
        the reference reads it; None for anything the reference should judge itself.

        A line without a reply subject is remembered whole. A request stream's lines differ only
        in their reply inbox, so for those the other fields are remembered by their bytes:
        converting them is the costly part (`int()` of bytes alone takes ~150 ns).
        """
        args = line.split()
        verb, count = args[0], len(args)
        if verb == b"MSG" and count == 4:
            _, subject, sid, size = args
            return _remember(self._known_msg_lines, line, _msg_fields(subject, sid, None, size))
        if verb == b"HMSG" and count == 5:
            _, subject, sid, header_size, size = args
            return _remember(self._known_msg_lines, line, _msg_fields(subject, sid, header_size, size))
        if verb == b"MSG" and count == 5:
            _, subject, sid, reply, size = args
            header_size = None
        elif verb == b"HMSG" and count == 6:
            _, subject, sid, reply, header_size, size = args
        else:
            return None
        key = (subject, sid, header_size, size)
        fields = self._known_fields.get(key)
        if fields is None:
            fields = _remember(self._known_fields, key, _msg_fields(subject, sid, header_size, size))
            if fields is None:
                return None
        try:
            reply = reply.decode()
        except UnicodeDecodeError:
            return None
        subject, sid, _, header_size, size = fields
        return subject, sid, reply, header_size, size


def _msg_fields(subject: bytes, sid: bytes, header_size: bytes | None, size: bytes) -> tuple | None:
    """The fast path's reading of MSG/HMSG fields, or None where the reference must judge: a
    field that is not a small number, sizes that do not fit, a subject that is not UTF-8."""
    if not (sid.isdigit() and size.isdigit() and len(size) < 10 and len(sid) < 20):
        return None  # the reference words the error
    size = int(size)
    if header_size is None:
        header_size = 0
    elif header_size.isdigit() and len(header_size) < 10:
        header_size = int(header_size)
        if not 0 < header_size <= size:  # an empty header block lacks NATS/1.0: the reference says so
            return None
    else:
        return None
    if size > MAX_MESSAGE_SIZE:
        return None
    try:
        return subject.decode(), int(sid), None, header_size, size
    except UnicodeDecodeError:
        return None


def _remember(cache: dict, key, value):
    """Store `value` (unless None) in a bounded cache, and return it."""
    if value is not None:
        if len(cache) >= CACHE_ENTRIES:
            cache.clear()
        cache[key] = value
    return value


def _decode_subjects(subject: bytes, reply: bytes | None) -> tuple[str, str | None, str | None]:
    """Subject and reply as text, and the problem if either is not UTF-8. Undecodable bytes
    survive as surrogates, so encoding back with "surrogateescape" gives the very same bytes."""
    try:
        return subject.decode(), (reply.decode() if reply is not None else None), None
    except UnicodeDecodeError:
        pass
    text = subject.decode("utf-8", "surrogateescape")
    reply_text = reply.decode("utf-8", "surrogateescape") if reply is not None else None
    if not _is_utf8(subject):
        return text, reply_text, "subject is not UTF-8"
    return text, reply_text, "reply subject is not UTF-8"


def _is_utf8(field: bytes) -> bool:
    try:
        field.decode()
    except UnicodeDecodeError:
        return False
    return True


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


def _wire(text: str) -> bytes:
    """UTF-8, except that surrogates from undecodable received bytes become those bytes again,
    so answering a message whose reply subject is not UTF-8 reaches the subject it came from."""
    return text.encode("utf-8", "surrogateescape")


def encode_connect(options: dict) -> bytes:
    return b"CONNECT " + json.dumps(options, separators=(",", ":")).encode() + CRLF


def encode_pub(subject: str, payload: bytes, reply: str | None = None) -> bytes:
    if reply:
        return b"PUB %s %s %d\r\n%s\r\n" % (_wire(subject), _wire(reply), len(payload), payload)
    return b"PUB %s %d\r\n%s\r\n" % (_wire(subject), len(payload), payload)


_BAD_KEY_CHARS = re.compile("[: \r\n\t]")
_valid_keys: set[str] = set()  # header keys that passed the check (str: they cannot change)


def encode_headers(headers: Headers | Mapping | Iterable[tuple[str, str]], status: int | None = None) -> bytes:
    items = headers._items if type(headers) is Headers else _header_items(headers)
    lines = [HEADER_VERSION if status is None else f"{HEADER_VERSION} {status}"]
    for key, value in items:
        if type(key) is not str or key not in _valid_keys:
            if not key or _BAD_KEY_CHARS.search(key):
                raise ValueError(f"invalid header {key!r}: {value!r}")
            if type(key) is str:
                _remember_key(key)
        if "\r" in value or "\n" in value:
            raise ValueError(f"invalid header {key!r}: {value!r}")
        lines.append(f"{key}: {value}")
    lines.append("\r\n")
    return _wire("\r\n".join(lines))


def _remember_key(key: str) -> None:
    if len(_valid_keys) >= CACHE_ENTRIES:
        _valid_keys.clear()
    _valid_keys.add(key)


def encode_hpub(subject: str, payload: bytes, headers, reply: str | None = None) -> bytes:
    block = encode_headers(headers)
    size = len(block)
    if reply:
        return b"HPUB %s %s %d %d\r\n%s%s\r\n" % (_wire(subject), _wire(reply), size, size + len(payload), block, payload)
    return b"HPUB %s %d %d\r\n%s%s\r\n" % (_wire(subject), size, size + len(payload), block, payload)


def encode_sub(subject: str, sid: int, queue: str | None = None) -> bytes:
    if queue:
        return b"SUB %s %s %d\r\n" % (_wire(subject), _wire(queue), sid)
    return b"SUB %s %d\r\n" % (_wire(subject), sid)


def encode_unsub(sid: int, max_msgs: int | None = None) -> bytes:
    if max_msgs:
        return b"UNSUB %d %d\r\n" % (sid, max_msgs)
    return b"UNSUB %d\r\n" % sid
