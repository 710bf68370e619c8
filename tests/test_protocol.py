"""The sans-io wire layer, byte by byte: the parser must give the same events however TCP splits
the stream, and anything that is not NATS must end in ProtocolError and nothing else."""

from __future__ import annotations

import json
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.nats.protocol import (
    FAST_PATH_WINDOW,
    MAX_CONTROL_LINE,
    MAX_INFO_LINE,
    CACHE_SIZE,
    OK_EVENT,
    PING,
    PING_EVENT,
    PONG,
    PONG_EVENT,
    Err,
    Headers,
    Info,
    Msg,
    Parser,
    ProtocolError,
    encode_connect,
    encode_headers,
    encode_hpub,
    encode_pub,
    encode_sub,
    encode_unsub,
    parse_headers,
)

# Hypothesis' per-example deadline and its too-slow check are timing; the box is shared, so no timing.
untimed = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


def feed_chunks(chunks) -> list:
    parser = Parser()
    events = []
    for chunk in chunks:
        events.extend(parser.feed(chunk))
    return events


def parse(data: bytes) -> list:
    """Events from `data` fed whole, after checking that one byte at a time gives the same."""
    whole = feed_chunks([data])
    assert feed_chunks(data[i : i + 1] for i in range(len(data))) == whole
    return whole


def hmsg(subject: bytes, sid: int, block: bytes, payload: bytes, reply: bytes | None = None) -> bytes:
    args = [subject, b"%d" % sid] + ([reply] if reply else []) + [b"%d" % len(block), b"%d" % (len(block) + len(payload))]
    return b"HMSG " + b" ".join(args) + b"\r\n" + block + payload + b"\r\n"


# --- every server op --------------------------------------------------------------------------


def test_info_keeps_every_field_including_unknown_ones():
    options = {
        "server_id": "NABC",
        "version": "2.10.22",
        "proto": 1,
        "headers": True,
        "max_payload": 1048576,
        "connect_urls": ["10.0.0.1:4222", "10.0.0.2:4222"],
        "a_field_from_the_future": {"nested": [1, 2, {"deep": None}]},
    }
    data = b"INFO " + json.dumps(options).encode() + b"\r\n"
    assert parse(data) == [Info(options)]


def test_msg_without_reply():
    [msg] = parse(b"MSG sensors.temp 7 5\r\n21.50\r\n")
    assert msg == Msg("sensors.temp", 7, None, b"21.50")
    assert (msg.subject, msg.sid, msg.reply, msg.payload, msg.data) == ("sensors.temp", 7, None, b"21.50", b"21.50")
    assert (msg.headers, msg.status, msg.description) == (None, None, None)


def test_msg_with_reply():
    [msg] = parse(b"MSG device.get_pixels 3 _INBOX.abc.1 2\r\n{}\r\n")
    assert msg == Msg("device.get_pixels", 3, "_INBOX.abc.1", b"{}")
    assert msg.reply == "_INBOX.abc.1"


def test_hmsg_no_responders_status():
    block = b"NATS/1.0 503\r\n\r\n"
    [msg] = parse(hmsg(b"_INBOX.abc.1", 2, block, b""))
    assert (msg.status, msg.description, msg.payload, len(msg.headers)) == (503, None, b"", 0)


def test_hmsg_status_with_description():
    block = b"NATS/1.0 408 Request Timeout\r\n\r\n"
    [msg] = parse(hmsg(b"_INBOX.x", 1, block, b""))
    assert (msg.status, msg.description) == (408, "Request Timeout")


def test_hmsg_keeps_repeated_keys_in_order_with_their_case():
    block = b"NATS/1.0\r\nX-Trace: one\r\nAccept: a\r\nx-trace: two\r\nX-Trace: three\r\n\r\n"
    [msg] = parse(hmsg(b"orders", 9, block, b"body", reply=b"reply.to"))
    assert msg.reply == "reply.to"
    assert msg.payload == b"body"
    assert msg.status is None
    assert msg.headers.items() == [("X-Trace", "one"), ("Accept", "a"), ("x-trace", "two"), ("X-Trace", "three")]
    assert msg.headers.get_all("X-Trace") == ["one", "three"]


def test_ping_pong_ok_err():
    data = b"PING\r\nPONG\r\n+OK\r\n-ERR 'Permissions Violation for Publish to \"secret\"'\r\n"
    assert parse(data) == [PING_EVENT, PONG_EVENT, OK_EVENT, Err('Permissions Violation for Publish to "secret"')]


def test_ops_are_case_insensitive_and_fields_may_be_tab_separated():
    block = b"NATS/1.0\r\nK: v\r\n\r\n"
    data = (
        b'info\t{"server_id":"x"}\r\n'
        b"msg\tfoo\t1\t3\r\nabc\r\n"
        b"Msg foo  2\treply  3\r\nabc\r\n"
        b"hmsg\tfoo\t1\t%d\t%d\r\n" % (len(block), len(block)) + block + b"\r\n"
        b"ping\r\npong\r\n+ok\r\n-err\t'stale connection'\r\n"
    )
    events = parse(data)
    assert events[:3] == [Info({"server_id": "x"}), Msg("foo", 1, None, b"abc"), Msg("foo", 2, "reply", b"abc")]
    assert events[3].headers.items() == [("K", "v")]
    assert events[4:] == [PING_EVENT, PONG_EVENT, OK_EVENT, Err("stale connection")]


@pytest.mark.parametrize("payload", [b"a\r\nb", b"\r\n", b"\r\n\r\n", b"PING\r\n", b"MSG x 1 3\r\nabc\r\n", b"\r", b"\n"])
def test_payloads_may_contain_crlf_and_look_like_frames(payload):
    data = b"MSG a 1 %d\r\n%s\r\nPING\r\n" % (len(payload), payload)
    assert parse(data) == [Msg("a", 1, None, payload), PING_EVENT]


def test_zero_byte_payloads():
    data = b"MSG a 1 0\r\n\r\n" + hmsg(b"b", 2, b"NATS/1.0\r\n\r\n", b"") + b"MSG c 3 r 0\r\n\r\n"
    events = parse(data)
    assert [(m.subject, m.payload) for m in events] == [("a", b""), ("b", b""), ("c", b"")]
    assert len(events[1].headers) == 0


def test_a_run_of_messages_longer_than_the_fast_path_window():
    frames = [b"MSG s.%d %d %d\r\n%s\r\n" % (i, i, len(b"p%d" % i), b"p%d" % i) for i in range(3000)]
    data = b"".join(frames)
    assert len(data) > 2 * FAST_PATH_WINDOW
    expected = [Msg("s.%d" % i, i, None, b"p%d" % i) for i in range(3000)]
    assert feed_chunks([data]) == expected
    assert feed_chunks(data[i : i + 1000] for i in range(0, len(data), 1000)) == expected


def test_fast_path_and_general_path_agree():
    """Upper-case MSG runs take the split-based fast path, lower-case ones the general loop."""
    frames = b"MSG a.b 1 3\r\nabc\r\nMSG a.c 22 _INBOX.x 0\r\n\r\nMSG \xc3\xa9t\xc3\xa9 3 2\r\nhi\r\n"
    fast = feed_chunks([frames])
    general = feed_chunks([frames.replace(b"MSG ", b"msg ")])
    assert fast == general == [Msg("a.b", 1, None, b"abc"), Msg("a.c", 22, "_INBOX.x", b""), Msg("été", 3, None, b"hi")]


def test_a_known_control_line_still_checks_its_payload():
    frame = b"MSG a 1 3\r\nabc\r\n"
    data = frame + b"MSG a 1 3\r\n\r\nx\r\n" + frame + b"MSG a 1 _INBOX.1 3\r\nabc\r\n" * 2 + frame
    assert feed_chunks([data]) == [Msg("a", 1, None, p) for p in (b"abc", b"\r\nx", b"abc")] + [
        Msg("a", 1, "_INBOX.1", b"abc")
    ] * 2 + [Msg("a", 1, None, b"abc")]


def test_more_distinct_control_lines_than_the_cache_holds():
    count = CACHE_SIZE + 50
    data = b"".join(b"MSG s %d %d\r\n%s\r\n" % (sid, sid % 7, b"x" * (sid % 7)) for sid in range(count))
    events = feed_chunks([data])
    assert [(m.sid, m.payload) for m in events] == [(sid, b"x" * (sid % 7)) for sid in range(count)]


def test_large_payload_in_many_small_chunks():
    payload = bytes(range(256)) * 4096 + b"\r\n" * 100  # 1 MiB and a bit, with CRLFs inside
    data = b"MSG big 1 %d\r\n%s\r\nPONG\r\n" % (len(payload), payload)
    head, tail = data[:-10], data[-10:]  # the payload's own CRLF is in the tail
    parser = Parser()
    events = []
    for start in range(0, len(head), 1000):
        events.extend(parser.feed(head[start : start + 1000]))
    assert events == []
    assert parser.feed(tail) == [Msg("big", 1, None, payload), PONG_EVENT]


def test_parser_keeps_going_after_a_large_payload():
    payload = b"z" * 100_000
    parser = Parser()
    assert parser.feed(b"MSG big 1 %d\r\n" % len(payload) + payload[:10]) == []
    assert parser.feed(payload[10:] + b"\r\nMSG small 2 1\r\n") == [Msg("big", 1, None, payload)]
    assert parser.feed(b"x\r\n") == [Msg("small", 2, None, b"x")]


# --- control line limits ----------------------------------------------------------------------


def msg_line_of_length(length: int) -> bytes:
    line = b"MSG " + b"s" * (length - len(b"MSG  1 0")) + b" 1 0"
    assert len(line) == length
    return line


def test_control_line_of_max_length_is_accepted():
    line = msg_line_of_length(MAX_CONTROL_LINE)
    [msg] = parse(line + b"\r\n\r\n")
    assert msg.subject == "s" * (MAX_CONTROL_LINE - 8)
    # Split right after the CR: the line is still 4096 bytes, not 4097.
    assert feed_chunks([line + b"\r", b"\n\r\n"]) == [msg]


def test_control_line_one_byte_too_long_is_a_protocol_error():
    line = msg_line_of_length(MAX_CONTROL_LINE + 1)
    with pytest.raises(ProtocolError, match="maximum control line exceeded"):
        Parser().feed(line + b"\r\n\r\n")


def test_overlong_line_is_refused_before_its_end_arrives():
    """No unbounded buffering: the parser gives up as soon as the line cannot be valid."""
    parser = Parser()
    assert parser.feed(b"MSG " + b"s" * (MAX_CONTROL_LINE - 4)) == []  # 4096 bytes: may still end here
    with pytest.raises(ProtocolError, match="maximum control line exceeded"):
        parser.feed(b"s")


def test_info_is_exempt_from_the_control_line_limit_up_to_max_info_line():
    options = {"server_id": "x", "connect_urls": ["10.0.%d.%d:4222" % (i // 256, i % 256) for i in range(8000)]}
    data = b"INFO " + json.dumps(options).encode() + b"\r\n"
    assert MAX_CONTROL_LINE < len(data) < MAX_INFO_LINE
    assert feed_chunks([data]) == [Info(options)]
    assert feed_chunks(data[i : i + 4096] for i in range(0, len(data), 4096)) == [Info(options)]


def test_info_longer_than_max_info_line_is_refused_whole_or_split():
    data = b'INFO {"x":"' + b"y" * MAX_INFO_LINE + b'"}\r\n'
    with pytest.raises(ProtocolError, match="maximum control line exceeded"):
        Parser().feed(data)
    parser = Parser()
    with pytest.raises(ProtocolError, match="maximum control line exceeded"):
        for start in range(0, len(data), 65536):
            parser.feed(data[start : start + 65536])


def test_info_exemption_needs_the_info_op_itself():
    with pytest.raises(ProtocolError):
        Parser().feed(b"INFOX" + b"y" * MAX_CONTROL_LINE)


# --- what is not NATS -------------------------------------------------------------------------

BAD_STREAMS = {
    "unknown op": b"HELLO world\r\n",
    "empty line": b"\r\n",
    "MSG too few args": b"MSG a 3\r\nabc\r\n",
    "MSG too many args": b"MSG a 1 r x 3\r\nabc\r\n",
    "MSG size not a number": b"MSG a 1 three\r\nabc\r\n",
    "MSG size with a sign": b"MSG a 1 +3\r\nabc\r\n",
    "MSG size with an underscore": b"MSG a 1 1_0\r\n0123456789\r\n",
    "MSG negative sid": b"MSG a -1 3\r\nabc\r\n",
    "MSG payload longer than announced": b"MSG a 1 2\r\nabc\r\n",
    "MSG subject not UTF-8": b"MSG \xff 1 3\r\nabc\r\n",
    "MSG reply not UTF-8": b"msg a 1 \xff 3\r\nabc\r\n",
    "HMSG too few args": b"HMSG a 1 3\r\nabc\r\n",
    "HMSG header larger than total": b"HMSG a 1 20 10\r\n0123456789\r\n",
    "HMSG without NATS/1.0": hmsg(b"a", 1, b"HTTP/1.1\r\n\r\n", b""),
    "HMSG version glued to status": hmsg(b"a", 1, b"NATS/1.0503\r\n\r\n", b""),
    "HMSG status not a number": hmsg(b"a", 1, b"NATS/1.0 abc\r\n\r\n", b""),
    "HMSG status not ASCII digits": hmsg(b"a", 1, "NATS/1.0 ²\r\n\r\n".encode(), b""),
    "HMSG status with 5000 digits": hmsg(b"a", 1, b"NATS/1.0 " + b"1" * 5000 + b"\r\n\r\n", b""),
    "HMSG header line without colon": hmsg(b"a", 1, b"NATS/1.0\r\nnocolon\r\n\r\n", b""),
    "HMSG header key with spaces around": hmsg(b"a", 1, b"NATS/1.0\r\n K: v\r\n\r\n", b""),
    "HMSG header block not UTF-8": hmsg(b"a", 1, b"NATS/1.0\r\nK: \xff\r\n\r\n", b""),
    "INFO not JSON": b"INFO {nope\r\n",
    "INFO not an object": b"INFO [1, 2]\r\n",
    "INFO nested too deep": b"INFO " + b"[" * 100_000 + b"\r\n",
}


@pytest.mark.parametrize("data", BAD_STREAMS.values(), ids=BAD_STREAMS.keys())
def test_malformed_streams_raise_protocol_error(data):
    with pytest.raises(ProtocolError):
        Parser().feed(data)
    step = 1 + len(data) // 1000  # byte by byte, but without feeding 100 kB one byte at a time
    parser = Parser()
    with pytest.raises(ProtocolError):
        for i in range(0, len(data), step):
            parser.feed(data[i : i + step])



@pytest.mark.parametrize("frame", [b"MSG a %s 1\r\nx\r\n", b"MSG a 1 %s\r\nx\r\n", b"msg a %s 1\r\nx\r\n"])
def test_numbers_beyond_ints_digit_limit_are_protocol_errors(frame):
    """Only reachable with a raised control line limit; int() refuses more than 4300 digits."""
    with pytest.raises(ProtocolError, match="expected a number"):
        Parser(max_control_line=10_000).feed(frame % (b"1" * 5000))

# --- headers ----------------------------------------------------------------------------------


def test_headers_lookup_prefers_exact_case_then_folds():
    headers = Headers([("Content-Type", "a"), ("content-type", "b"), ("X", "1"), ("X", "2")])
    assert headers.get_all("content-type") == ["b"]
    assert headers.get_all("CONTENT-TYPE") == ["a", "b"]
    assert headers.get("X") == "1"
    assert headers["x"] == "1"
    assert headers.get("missing") is None and headers.get("missing", "d") == "d"
    with pytest.raises(KeyError):
        headers["missing"]
    assert "x" in headers and "missing" not in headers and 1 not in headers
    assert headers.keys() == list(headers) == ["Content-Type", "content-type", "X"]
    assert len(headers) == 4


def test_headers_construction():
    assert Headers({"A": ["1", "2"], "B": 3}).items() == [("A", "1"), ("A", "2"), ("B", "3")]
    original = Headers([("A", "1")])
    copy = Headers(original)
    copy.add("B", "2")
    assert original.items() == [("A", "1")] and copy.items() == [("A", "1"), ("B", "2")]
    assert Headers() == Headers([]) != Headers([("A", "1")])


def test_parse_headers_trims_values_and_keeps_colons_inside_them():
    headers, status, description = parse_headers(b"NATS/1.0 100 Idle Heartbeat\r\nUrl:  http://x:80/  \r\n\r\n")
    assert headers.items() == [("Url", "http://x:80/")]
    assert (status, description) == (100, "Idle Heartbeat")


# --- encoders ---------------------------------------------------------------------------------


def test_encode_connect_is_one_compact_json_line():
    options = {"verbose": False, "pedantic": False, "protocol": 1, "headers": True, "name": "pi é"}
    line = encode_connect(options)
    assert line == b'CONNECT {"verbose":false,"pedantic":false,"protocol":1,"headers":true,"name":"pi \\u00e9"}\r\n'
    assert json.loads(line[len(b"CONNECT ") :]) == options


def test_encode_pub_sub_unsub_exact_bytes():
    assert encode_pub("a.b", b"hi") == b"PUB a.b 2\r\nhi\r\n"
    assert encode_pub("a.b", b"", reply="_INBOX.1") == b"PUB a.b _INBOX.1 0\r\n\r\n"
    assert encode_pub("a.b", b"x\r\ny") == b"PUB a.b 4\r\nx\r\ny\r\n"
    assert encode_sub("a.*", 5) == b"SUB a.* 5\r\n"
    assert encode_sub("a.>", 6, queue="workers") == b"SUB a.> workers 6\r\n"
    assert encode_unsub(5) == b"UNSUB 5\r\n"
    assert encode_unsub(5, max_msgs=10) == b"UNSUB 5 10\r\n"
    assert (PING, PONG) == (b"PING\r\n", b"PONG\r\n")


def test_encode_hpub_exact_bytes():
    block = b"NATS/1.0\r\nA: 1\r\nA: 2\r\n\r\n"
    assert encode_headers([("A", "1"), ("A", "2")]) == block
    assert encode_hpub("s", b"hi", [("A", "1"), ("A", "2")]) == b"HPUB s 24 26\r\n" + block + b"hi\r\n"
    assert encode_hpub("s", b"", {"A": ["1", "2"]}, reply="r") == b"HPUB s r 24 24\r\n" + block + b"\r\n"
    assert encode_headers({}, status=503) == b"NATS/1.0 503\r\n\r\n"


@pytest.mark.parametrize(
    "pair", [("", "v"), ("a:b", "v"), ("a b", "v"), ("a\tb", "v"), ("k", "line\r\nbreak"), ("k", "\n"), ("k\r", "v")]
)
def test_encode_headers_refuses_what_would_corrupt_the_block(pair):
    with pytest.raises(ValueError):
        encode_headers([pair])


def reframe_hpub_as_hmsg(frame: bytes, sid: int) -> bytes:
    """What the server does with an HPUB: same block and payload, an HMSG line with our sid."""
    line, _, rest = frame.partition(b"\r\n")
    verb, subject, *tail = line.split(b" ")
    assert verb == b"HPUB"
    return b" ".join([b"HMSG", subject, b"%d" % sid, *tail]) + b"\r\n" + rest


def test_hpub_round_trip_through_the_parser():
    headers = Headers([("Trace", "a"), ("trace", "b"), ("Trace", "c"), ("Empty", "")])
    frame = encode_hpub("dev.pixels", b"\x00\r\n\xff", headers, reply="_INBOX.q")
    [msg] = parse(reframe_hpub_as_hmsg(frame, 4))
    assert msg == Msg("dev.pixels", 4, "_INBOX.q", b"\x00\r\n\xff", headers)


# --- properties -------------------------------------------------------------------------------

# Subjects and header keys: no ASCII whitespace (the field separator), some non-ASCII letters.
token_text = st.text(alphabet=string.ascii_letters + string.digits + "-_$*>éλ中", min_size=1, max_size=8)
subjects = st.lists(token_text, min_size=1, max_size=4).map(".".join)
sids = st.integers(min_value=0, max_value=2**64)
replies = st.none() | subjects
payloads = st.binary(max_size=40) | st.lists(st.sampled_from([b"\r\n", b"\r", b"\n", b"MSG a 1 3", b" ", b"x"]), max_size=8).map(b"".join)
header_keys = st.sampled_from(["X-Trace", "x-trace", "Accept", "K"]) | st.text(
    alphabet=string.ascii_letters + string.digits + "-_.é", min_size=1, max_size=10
)
# Values are trimmed on the wire (like MIME), so generate them already trimmed.
header_values = st.text(alphabet=string.printable.replace("\r", "").replace("\n", "") + "é中", max_size=20).map(
    lambda v: v.strip(" \t\x0b\x0c")
)
header_lists = st.lists(st.tuples(header_keys, header_values), max_size=6)
statuses = st.none() | st.tuples(st.integers(100, 999), st.none() | st.text(string.ascii_letters + " ", max_size=20))
separators = st.sampled_from([b" ", b"\t", b"  ", b" \t"])
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=10,
)


@st.composite
def op_names(draw, op: bytes) -> bytes:
    return draw(st.sampled_from([op, op.lower(), op.capitalize()]))


@st.composite
def frames(draw):
    """One server frame as bytes, and the event it must produce (built independently of the parser)."""
    kind = draw(st.sampled_from(["MSG", "HMSG", "PING", "PONG", "+OK", "-ERR", "INFO"]))
    sep = draw(separators)
    if kind == "MSG":
        subject, sid, reply, payload = draw(subjects), draw(sids), draw(replies), draw(payloads)
        fields = [draw(op_names(b"MSG")), subject.encode(), b"%d" % sid] + ([reply.encode()] if reply else [])
        line = sep.join(fields + [b"%d" % len(payload)])
        return line + b"\r\n" + payload + b"\r\n", Msg(subject, sid, reply, payload)
    if kind == "HMSG":
        subject, sid, reply, payload = draw(subjects), draw(sids), draw(replies), draw(payloads)
        pairs, status = draw(header_lists), draw(statuses)
        first = "NATS/1.0"
        code = description = None
        if status:
            code, description = status[0], (status[1] or "").strip() or None
            first += f" {code}" + (f" {description}" if description else "")
        block = (first + "\r\n" + "".join(f"{k}: {v}\r\n" for k, v in pairs) + "\r\n").encode()
        fields = [draw(op_names(b"HMSG")), subject.encode(), b"%d" % sid] + ([reply.encode()] if reply else [])
        line = sep.join(fields + [b"%d" % len(block), b"%d" % (len(block) + len(payload))])
        return line + b"\r\n" + block + payload + b"\r\n", Msg(subject, sid, reply, payload, Headers(pairs), code, description)
    if kind == "INFO":
        options = draw(st.dictionaries(st.text(max_size=8), json_values, max_size=5))
        return draw(op_names(b"INFO")) + sep + json.dumps(options).encode() + b"\r\n", Info(options)
    if kind == "-ERR":
        text = draw(st.text(alphabet=string.ascii_letters + string.digits + ' ."/_-', max_size=40)).strip()
        return draw(op_names(b"-ERR")) + sep + b"'" + text.encode() + b"'\r\n", Err(text)
    event = {"PING": PING_EVENT, "PONG": PONG_EVENT, "+OK": OK_EVENT}[kind]
    return draw(op_names(kind.encode())) + b"\r\n", event


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *sorted(cuts), len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:])]


@settings(untimed, max_examples=300)
@given(st.lists(frames(), min_size=1, max_size=30), st.data())
def test_any_split_of_a_valid_stream_gives_the_same_events(stream, data):
    raw = b"".join(frame for frame, _ in stream)
    expected = [event for _, event in stream]
    assert feed_chunks([raw]) == expected
    cuts = data.draw(st.lists(st.integers(0, len(raw)), max_size=40))
    assert feed_chunks(split_at(raw, cuts)) == expected


# Few subjects, sids, sizes and replies, so that control lines repeat and the parser's caches hit.
repeating_messages = st.tuples(
    st.sampled_from(["s", "t.u", "é"]) | subjects,
    st.integers(0, 3) | sids,
    st.none() | st.sampled_from(["r", "_INBOX.1"]),
    st.sampled_from([b"", b"0123456789abcdef", b"\r\n"]) | payloads,
)


@untimed
@given(st.lists(repeating_messages, min_size=1, max_size=200), st.integers(1, 70000))
def test_msg_runs_in_fixed_size_chunks(messages, chunk):
    """The shape the fast path sees in production: long MSG runs cut every `chunk` bytes."""
    raw = b"".join(
        b"MSG %s %d %s%d\r\n%s\r\n" % (s.encode(), sid, (r + " ").encode() if r else b"", len(p), p)
        for s, sid, r, p in messages
    )
    expected = [Msg(s, sid, r, p) for s, sid, r, p in messages]
    assert feed_chunks(raw[i : i + chunk] for i in range(0, len(raw), chunk)) == expected


@untimed
@given(header_lists, subjects, payloads, replies, st.integers(0, 2**32))
def test_header_encoding_round_trips_through_the_parser(pairs, subject, payload, reply, sid):
    frame = encode_hpub(subject, payload, Headers(pairs), reply=reply)
    assert feed_chunks([reframe_hpub_as_hmsg(frame, sid)]) == [Msg(subject, sid, reply, payload, Headers(pairs))]


# Garbage that gets past the first byte: NATS-like fragments mixed with random bytes.
fragments = st.sampled_from(
    [b"MSG ", b"HMSG ", b"msg\t", b"INFO ", b"PING", b"PONG", b"+OK", b"-ERR ", b"\r\n", b"\r", b"\n", b" ", b"\t",
     b"NATS/1.0", b"NATS/1.0 503", b": ", b"{", b"}", b"[", b'"', b"0", b"1", b"17", b"4096", b"+1", b"-1", b"\xff", b"a.b"]
)  # fmt: skip
garbage = st.binary(max_size=200) | st.lists(fragments | st.binary(max_size=5), max_size=60).map(b"".join)


@settings(untimed, max_examples=500)
@given(garbage, st.data())
def test_garbage_gives_events_or_protocol_error_and_nothing_else(raw, data):
    cuts = data.draw(st.lists(st.integers(0, len(raw)), max_size=20))
    parser = Parser()
    try:
        for chunk in split_at(raw, cuts):
            for event in parser.feed(chunk):
                assert isinstance(event, (Msg, Info, Err)) or event in (PING_EVENT, PONG_EVENT, OK_EVENT)
    except ProtocolError:
        pass


@untimed
@given(st.lists(frames(), min_size=1, max_size=10), st.data())
def test_corrupted_valid_streams_give_events_or_protocol_error(stream, data):
    raw = bytearray(b"".join(frame for frame, _ in stream))
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(raw)))
        action = data.draw(st.sampled_from(["insert", "delete", "replace"]))
        byte = data.draw(st.binary(min_size=1, max_size=3))
        if action == "insert":
            raw[at:at] = byte
        elif action == "delete":
            del raw[at : at + len(byte)]
        else:
            raw[at : at + len(byte)] = byte
    cuts = data.draw(st.lists(st.integers(0, len(raw)), max_size=10))
    parser = Parser()
    try:
        for chunk in split_at(bytes(raw), cuts):
            parser.feed(chunk)
    except ProtocolError:
        pass


def test_an_announced_size_beyond_any_server_limit_is_refused_before_buffering():
    from bridge.nats.protocol import MAX_MESSAGE_SIZE

    with pytest.raises(ProtocolError, match="announced"):
        Parser().feed(b"MSG a 1 %d\r\nxx" % (MAX_MESSAGE_SIZE + 1))
