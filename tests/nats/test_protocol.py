"""The sans-io wire layer, byte by byte: the parser must give the same events however TCP splits
the stream, the fast path the same events as the reference path, anything wrong inside one message
must cost only that message (named in `Msg.problem`), and only a broken frame structure may end in
ProtocolError."""

from __future__ import annotations

import json
import re
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.nats.protocol import (
    CACHE_ENTRIES,
    DEFAULT_MAX_CONTROL_LINE,
    MAX_INFO_LINE,
    MAX_MESSAGE_SIZE,
    OK_EVENT,
    PING,
    PING_EVENT,
    PONG,
    PONG_EVENT,
    SERVER_MAX_CONTROL_LINE,
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


def fields(event):
    """An event as a comparable value: `Msg` compares by identity, so it becomes its field tuple."""
    if isinstance(event, Msg):
        return ("Msg", event.subject, event.sid, event.reply, event.payload, event.headers, event.status,
                event.description, event.problem)  # fmt: skip
    return event


def msg_tuple(subject, sid, reply, payload, headers=None, status=None, description=None, problem=None):
    """The field tuple of the message the parser should produce."""
    return fields(Msg(subject, sid, reply, payload, headers, status, description, problem))


def feed_chunks(chunks, fast: bool = True) -> list:
    """Field tuples of the events from feeding `chunks` in turn."""
    parser = Parser(fast=fast)
    events = []
    for chunk in chunks:
        events.extend(parser.feed(chunk))
    return [fields(event) for event in events]


def parse(data: bytes) -> list:
    """Events from `data` fed whole to the fast path, after checking that the reference path, and
    both fed one byte at a time, give the same."""
    events = Parser().feed(data)
    whole = [fields(event) for event in events]
    assert feed_chunks([data], fast=False) == whole
    for fast in (True, False):
        assert feed_chunks((data[i : i + 1] for i in range(len(data))), fast=fast) == whole
    return events


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
    assert fields(msg) == ("Msg", "sensors.temp", 7, None, b"21.50", None, None, None, None)
    assert (msg.subject, msg.sid, msg.reply, msg.payload, msg.data) == ("sensors.temp", 7, None, b"21.50", b"21.50")
    assert (msg.headers, msg.status, msg.description, msg.problem) == (None, None, None, None)


def test_msg_with_reply():
    [msg] = parse(b"MSG device.get_pixels 3 _INBOX.abc.1 2\r\n{}\r\n")
    assert fields(msg) == msg_tuple("device.get_pixels", 3, "_INBOX.abc.1", b"{}")


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
    assert [fields(e) for e in parse(data)] == [PING_EVENT, PONG_EVENT, OK_EVENT, Err('Permissions Violation for Publish to "secret"')]


def test_err_text_is_unquoted_trimmed_and_read_however_it_is_encoded():
    data = b"-ERR  'Authorization Violation'  \r\n-ERR\r\n-ERR 'caf\xc3\xa9 \xff'\r\n-ERR no quotes\r\n"
    assert parse(data) == [Err("Authorization Violation"), Err(""), Err("café \ufffd"), Err("no quotes")]


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
    assert [fields(e) for e in events[:3]] == [
        Info({"server_id": "x"}), msg_tuple("foo", 1, None, b"abc"), msg_tuple("foo", 2, "reply", b"abc")
    ]
    assert events[3].headers.items() == [("K", "v")]
    assert events[4:] == [PING_EVENT, PONG_EVENT, OK_EVENT, Err("stale connection")]


@pytest.mark.parametrize("payload", [b"a\r\nb", b"\r\n", b"\r\n\r\n", b"PING\r\n", b"MSG x 1 3\r\nabc\r\n", b"\r", b"\n"])
def test_payloads_may_contain_crlf_and_look_like_frames(payload):
    data = b"MSG a 1 %d\r\n%s\r\nPING\r\n" % (len(payload), payload)
    assert [fields(e) for e in parse(data)] == [msg_tuple("a", 1, None, payload), PING_EVENT]


def test_zero_byte_payloads():
    data = b"MSG a 1 0\r\n\r\n" + hmsg(b"b", 2, b"NATS/1.0\r\n\r\n", b"") + b"MSG c 3 r 0\r\n\r\n"
    events = parse(data)
    assert [(m.subject, m.payload) for m in events] == [("a", b""), ("b", b""), ("c", b"")]
    assert len(events[1].headers) == 0


def test_a_long_run_of_messages_whole_and_in_chunks():
    frames = [b"MSG s.%d %d %d\r\n%s\r\n" % (i, i, len(b"p%d" % i), b"p%d" % i) for i in range(3000)]
    data = b"".join(frames)
    expected = [msg_tuple("s.%d" % i, i, None, b"p%d" % i) for i in range(3000)]
    for fast in (True, False):
        assert feed_chunks([data], fast=fast) == expected
        assert feed_chunks((data[i : i + 1000] for i in range(0, len(data), 1000)), fast=fast) == expected


def test_fast_path_and_reference_path_agree_on_every_kind_of_msg():
    frames = (
        b"MSG a.b 1 3\r\nabc\r\nMSG a.c 22 _INBOX.x 0\r\n\r\nMSG \xc3\xa9t\xc3\xa9 3 2\r\nhi\r\n"
        + hmsg(b"h", 4, b"NATS/1.0 503\r\n\r\n", b"") + hmsg(b"h", 4, b"NATS/1.0\r\nK: v\r\n\r\n", b"x", reply=b"r")
        + b"msg a.b 1 3\r\nabc\r\nMSG a.b 1 3\r\nabc\r\n"
    )
    expected = [
        msg_tuple("a.b", 1, None, b"abc"), msg_tuple("a.c", 22, "_INBOX.x", b""), msg_tuple("été", 3, None, b"hi"),
        msg_tuple("h", 4, None, b"", Headers(), 503), msg_tuple("h", 4, "r", b"x", Headers([("K", "v")])),
        msg_tuple("a.b", 1, None, b"abc"), msg_tuple("a.b", 1, None, b"abc"),
    ]  # fmt: skip
    assert feed_chunks([frames], fast=True) == feed_chunks([frames], fast=False) == expected


def test_fast_path_and_reference_agree_on_an_hmsg_with_an_empty_header_block():
    """Found by mutation testing: the fast path once read it as a MSG without headers."""
    data = b"HMSG a 1 0 3\r\nabc\r\n"
    assert feed_chunks([data], fast=True) == feed_chunks([data], fast=False) == [
        msg_tuple("a", 1, None, b"abc", Headers(), None, "", "header block does not start with NATS/1.0: ''")
    ]


def test_the_fast_path_reads_and_remembers_the_common_lines_itself():
    """The fast path declining a line is never wrong (the reference reads it), only slow: these
    lines are the traffic it exists for, so it must read them itself, and remember them."""
    parser = Parser()
    read = parser._read_msg_line
    assert read(b"MSG a.b 1 3") == ("a.b", 1, None, 0, 3)
    assert read(b"HMSG a 2 12 12") == ("a", 2, None, 12, 12)  # headers only: a status message
    assert parser._known_msg_lines == {b"MSG a.b 1 3": ("a.b", 1, None, 0, 3), b"HMSG a 2 12 12": ("a", 2, None, 12, 12)}
    assert read(b"MSG a 3 _INBOX.x.1 5") == ("a", 3, "_INBOX.x.1", 0, 5)
    assert read(b"HMSG a 4 _INBOX.x.2 12 20") == ("a", 4, "_INBOX.x.2", 12, 20)
    assert read(b"MSG a 3 _INBOX.x.3 5") == ("a", 3, "_INBOX.x.3", 0, 5)  # the fields again, another inbox
    assert parser._known_fields == {(b"a", b"3", None, b"5"): ("a", 3, None, 0, 5),
                                    (b"a", b"4", b"12", b"20"): ("a", 4, None, 12, 20)}  # fmt: skip
    assert len(parser._known_msg_lines) == 2  # lines with a reply are not remembered whole
    # The largest numbers it reads itself; one digit more and the reference reads them.
    assert read(b"MSG a %s %d" % (b"9" * 19, MAX_MESSAGE_SIZE)) == ("a", 10**19 - 1, None, 0, MAX_MESSAGE_SIZE)
    assert read(b"HMSG a 1 %s %s" % (b"0" * 8 + b"1", b"0" * 8 + b"2")) == ("a", 1, None, 1, 2)
    for declined in (b"MSG a %s 1" % (b"1" * 20), b"MSG a 1 %s" % (b"0" * 9 + b"1"), b"HMSG a 1 %s 2" % (b"0" * 9 + b"1"),
                     b"MSG a 1 %d" % (MAX_MESSAGE_SIZE + 1), b"HMSG a 1 3 2", b"MSG a 1 x", b"MSG a x 1",
                     b"HMSG a 1 x 1", b"MSG \xff 1 1", b"MSG a 1 \xff 1", b"MSG a 1 r 1 1", b"msg a 1 1", b"PUB a 1"):
        assert read(declined) is None, declined
    assert None not in parser._known_msg_lines.values() and None not in parser._known_fields.values()


def test_the_fast_paths_caches_are_bounded():
    parser = Parser()
    parser.feed(b"".join(b"MSG s %d 0\r\n\r\n" % sid for sid in range(CACHE_ENTRIES)))
    assert len(parser._known_msg_lines) == CACHE_ENTRIES
    parser.feed(b"MSG s 0 0\r\n\r\n")  # known: no new entry
    assert len(parser._known_msg_lines) == CACHE_ENTRIES
    parser.feed(b"MSG s %d 0\r\n\r\n" % CACHE_ENTRIES)  # one more: the cache starts over
    assert len(parser._known_msg_lines) == 1
    parser.feed(b"".join(b"MSG s %d _INBOX.%d 0\r\n\r\n" % (sid, sid) for sid in range(CACHE_ENTRIES)))
    assert len(parser._known_fields) == CACHE_ENTRIES
    parser.feed(b"MSG s %d _INBOX.x 0\r\n\r\n" % CACHE_ENTRIES)
    assert len(parser._known_fields) == 1 and len(parser._known_msg_lines) == 1


def test_a_known_control_line_still_checks_its_payload():
    frame = b"MSG a 1 3\r\nabc\r\n"
    data = frame + b"MSG a 1 3\r\n\r\nx\r\n" + frame + b"MSG a 1 _INBOX.1 3\r\nabc\r\n" * 2 + frame
    assert feed_chunks([data]) == [msg_tuple("a", 1, None, p) for p in (b"abc", b"\r\nx", b"abc")] + [
        msg_tuple("a", 1, "_INBOX.1", b"abc")
    ] * 2 + [msg_tuple("a", 1, None, b"abc")]
    with pytest.raises(ProtocolError, match="not followed by CRLF"):
        Parser().feed(frame + b"MSG a 1 3\r\nabcd\r\n")


def test_more_distinct_control_lines_than_the_caches_hold():
    count = CACHE_ENTRIES + 50
    data = b"".join(b"MSG s %d %d\r\n%s\r\n" % (sid, sid % 7, b"x" * (sid % 7)) for sid in range(count))
    data += b"".join(b"MSG s %d _INBOX.%d %d\r\n%s\r\n" % (sid, sid, sid % 7, b"x" * (sid % 7)) for sid in range(count))
    expected = [msg_tuple("s", sid, None, b"x" * (sid % 7)) for sid in range(count)]
    expected += [msg_tuple("s", sid, "_INBOX.%d" % sid, b"x" * (sid % 7)) for sid in range(count)]
    assert feed_chunks([data]) == expected


def test_large_payload_in_many_small_chunks():
    payload = bytes(range(256)) * 4096 + b"\r\n" * 100  # 1 MiB and a bit, with CRLFs inside
    data = b"MSG big 1 %d\r\n%s\r\nPONG\r\n" % (len(payload), payload)
    head, tail = data[:-10], data[-10:]  # the payload's own CRLF is in the tail
    for fast in (True, False):
        parser = Parser(fast=fast)
        events = []
        for start in range(0, len(head), 1000):
            events.extend(parser.feed(head[start : start + 1000]))
        assert events == []
        assert [fields(e) for e in parser.feed(tail)] == [msg_tuple("big", 1, None, payload), PONG_EVENT]


def test_parser_keeps_going_after_a_large_payload():
    payload = b"z" * 100_000
    parser = Parser()
    assert parser.feed(b"MSG big 1 %d\r\n" % len(payload) + payload[:10]) == []
    assert [fields(e) for e in parser.feed(payload[10:] + b"\r\nMSG small 2 1\r\n")] == [msg_tuple("big", 1, None, payload)]
    assert [fields(e) for e in parser.feed(b"x\r\n")] == [msg_tuple("small", 2, None, b"x")]


@pytest.mark.parametrize("fast", [True, False])
def test_feeding_nothing_gives_nothing_and_keeps_what_is_pending(fast):
    parser = Parser(fast=fast)
    assert parser.feed(b"") == []
    assert parser.feed(b"MSG a 1 3\r\nab") == []
    assert parser.feed(b"") == []
    assert [fields(e) for e in parser.feed(b"c\r\n")] == [msg_tuple("a", 1, None, b"abc")]
    assert parser.feed(b"PI") == [] and parser.feed(b"") == [] and parser.feed(b"NG\r\n") == [PING_EVENT]


def test_a_frame_completed_by_the_start_of_a_chunk_leaves_the_rest_of_the_chunk_parsed():
    parser = Parser()
    assert parser.feed(b"MSG a 1 10\r\n01234") == []
    events = parser.feed(b"56789\r\nPING\r\nMSG b 2 1\r\nx\r\nMSG c 3 5\r\nab")
    assert [fields(e) for e in events] == [msg_tuple("a", 1, None, b"0123456789"), PING_EVENT, msg_tuple("b", 2, None, b"x")]
    assert [fields(e) for e in parser.feed(b"cde\r\n")] == [msg_tuple("c", 3, None, b"abcde")]


# --- Msg ----------------------------------------------------------------------------------------


def test_msg_is_a_plain_object_with_slots_not_a_tuple():
    message = Msg("a", 1, "r", b"x")
    assert not isinstance(message, tuple)
    assert (message.headers, message.status, message.description, message.problem, message.client) == (None,) * 5
    assert message.data is message.payload
    assert message != Msg("a", 1, "r", b"x") and message == message  # identity, no value equality
    with pytest.raises(AttributeError):
        message.anything_else = 1
    with pytest.raises(TypeError):
        iter(message)


def test_msg_repr_names_the_fields_that_are_set():
    message = Msg("a", 1, None, b"x", problem="header line skipped: 'k'")
    assert repr(message) == "Msg(subject='a', sid=1, payload=b'x', problem=\"header line skipped: 'k'\")"


def test_parser_builds_every_message_through_the_class_it_is_given():
    class Custom(Msg):
        __slots__ = ()

    data = b"MSG a 1 1\r\nx\r\nMSG a 1 1\r\nx\r\nMSG a 1 r 1\r\nx\r\n" + hmsg(b"h", 2, b"NATS/1.0\r\n\r\n", b"")
    for fast in (True, False):
        assert [type(e) for e in Parser(msg_class=Custom, fast=fast).feed(data)] == [Custom] * 4


def test_event_reprs_name_their_contents():
    assert [repr(e) for e in (PING_EVENT, PONG_EVENT, OK_EVENT)] == ["Ping()", "Pong()", "Ok()"]
    assert repr(Info({"server_id": "x", "proto": 1})) == "Info({'server_id': 'x', 'proto': 1})"
    assert repr(Err("Stale Connection")) == "Err('Stale Connection')"
    assert repr(Headers([("A", "1"), ("a", "2")])) == "Headers([('A', '1'), ('a', '2')])"
    full = Msg("s", 2, "r", b"p", Headers([("K", "v")]), 503, "No Responders", "why")
    assert repr(full) == (
        "Msg(subject='s', sid=2, reply='r', payload=b'p', headers=Headers([('K', 'v')]), status=503, "
        "description='No Responders', problem='why')"
    )

    class Custom(Msg):
        __slots__ = ()

    assert repr(Custom("s", 0, None, b"")) == "Custom(subject='s', sid=0, payload=b'')"


def test_info_and_err_compare_by_value_and_type():
    options = {"server_id": "x"}
    assert Info(options).options is options
    assert Info({"a": 1}) == Info({"a": 1}) and Info({"a": 1}) != Info({"a": 2})
    assert Err("x").message == "x"
    assert Err("x") == Err("x") and Err("x") != Err("y")

    class LooksLikeInfo:
        def __init__(self):
            self.options, self.message = options, "x"

    impostor = LooksLikeInfo()
    assert Info(options) != impostor and Err("x") != impostor
    assert Info({}) != Err("") and Err("") != Info({})


# --- control line limits ----------------------------------------------------------------------


def msg_line_of_length(length: int) -> bytes:
    line = b"MSG " + b"s" * (length - len(b"MSG  1 0")) + b" 1 0"
    assert len(line) == length
    return line


def test_control_line_of_max_length_is_accepted():
    line = msg_line_of_length(DEFAULT_MAX_CONTROL_LINE)
    for fast in (True, False):
        [msg] = Parser(fast=fast).feed(line + b"\r\n\r\n")
        assert msg.subject == "s" * (DEFAULT_MAX_CONTROL_LINE - 8)
        # Split right after the CR: the line is still at the limit, not one byte over.
        assert feed_chunks([line + b"\r", b"\n\r\n"], fast=fast) == [fields(msg)]


def test_a_subject_longer_than_the_servers_own_line_limit_is_read():
    """nats-server forwards what other clients published; only memory bounds what we accept."""
    subject = "a." * 3000 + "b"
    assert len(subject) > SERVER_MAX_CONTROL_LINE == 4096
    [msg] = parse(b"MSG %s 1 _INBOX.%s 2\r\nhi\r\n" % (subject.encode(), subject.encode()))
    assert (msg.subject, msg.reply) == (subject, "_INBOX." + subject)


@pytest.mark.parametrize("fast", [True, False])
def test_control_line_one_byte_too_long_is_a_protocol_error(fast):
    line = msg_line_of_length(DEFAULT_MAX_CONTROL_LINE + 1)
    with pytest.raises(ProtocolError, match="^maximum control line exceeded$"):
        Parser(fast=fast).feed(line + b"\r\n\r\n")


def test_overlong_line_is_refused_before_its_end_arrives():
    """No unbounded buffering: the parser gives up as soon as the line cannot be valid."""
    parser = Parser()
    assert parser.feed(b"MSG " + b"s" * (DEFAULT_MAX_CONTROL_LINE - 4)) == []  # at the limit: may still end here
    with pytest.raises(ProtocolError, match="^maximum control line exceeded$"):
        parser.feed(b"s")


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("limit", [100, 200_000])
def test_max_control_line_is_settable_and_split_independent(limit, fast):
    fits, too_long = msg_line_of_length(limit) + b"\r\n\r\n", msg_line_of_length(limit + 1) + b"\r\n\r\n"
    for chunk in (len(fits), 7, 1):
        parser = Parser(fast=fast)
        parser.max_control_line = limit
        assert len(feed_chunks_into(parser, fits, chunk)) == 1
        parser = Parser(fast=fast)
        parser.max_control_line = limit
        with pytest.raises(ProtocolError, match="^maximum control line exceeded$"):
            feed_chunks_into(parser, too_long, chunk)


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("first", [0, 3, 10])
def test_an_unfinished_line_is_refused_at_the_byte_that_passes_the_limit(fast, first):
    """Fed one byte at a time after a `first`-byte piece: a line at the limit, then its CR, is
    still fine; the byte after the limit is refused on arrival. The CR of a split CRLF is not
    part of the line, so the limit does not depend on where the split falls."""
    line = msg_line_of_length(101)
    parser = Parser(fast=fast)
    parser.max_control_line = 100
    if first:
        assert parser.feed(line[:first]) == []
    for i in range(first, 100):
        assert parser.feed(line[i : i + 1]) == []
    with pytest.raises(ProtocolError, match="^maximum control line exceeded$"):
        parser.feed(line[100:101])
    for split in (99, 100):
        parser = Parser(fast=fast)
        parser.max_control_line = 100
        fits = msg_line_of_length(100)
        assert parser.feed(fits[:split]) == [] and parser.feed(fits[split:] + b"\r") == []
        assert [m.sid for m in parser.feed(b"\n\r\n")] == [1]
    for piece in (b"\r", b"x\r"):
        parser = Parser(fast=fast)
        parser.max_control_line = 100
        assert parser.feed(fits[:99]) == []
        if piece == b"\r":
            assert parser.feed(fits[99:] + piece) == []
        else:
            with pytest.raises(ProtocolError, match="^maximum control line exceeded$"):
                parser.feed(fits[99:] + piece)  # 101 bytes before the CR


@pytest.mark.parametrize("fast", [True, False])
def test_limits_count_from_the_lines_own_start_in_a_buffer(fast):
    """A line after another frame in the same buffer: its length and its first bytes (to tell
    INFO) are its own, whether it is complete or not."""
    info = b'INFO {"x":"' + b"y" * 300 + b'"}'
    parser = Parser(fast=fast)
    parser.max_control_line = 100
    assert parser.feed(b"PING\r\n" + msg_line_of_length(100)) == [PING_EVENT]  # unfinished, at the limit
    assert [m.sid for m in parser.feed(b"\r\n\r\n")] == [1]
    assert parser.feed(b"PING\r\n" + info[:200]) == [PING_EVENT]  # unfinished INFO beyond the limit
    assert parser.feed(info[200:] + b"\r\nPONG\r\n") == [Info({"x": "y" * 300}), PONG_EVENT]
    assert parser.feed(b"PING\r\n" + info + b"\r\n") == [PING_EVENT, Info({"x": "y" * 300})]
    with pytest.raises(ProtocolError, match="^maximum control line exceeded$"):
        parser.feed(b"PING\r\n" + msg_line_of_length(101))


class CountingParser(Parser):
    """Records what the fast path reads and what it hands to the reference."""

    def __init__(self, fast: bool = True):
        super().__init__(fast=fast)
        self.reads, self.referred = [], []

    def _read_msg_line(self, line):
        self.reads.append(line)
        return super()._read_msg_line(line)

    def _parse_frame(self, buf, pos, end, events):
        self.referred.append(buf[pos:end])
        return super()._parse_frame(buf, pos, end, events)


def test_a_known_line_is_not_read_again_and_clean_messages_never_reach_the_reference():
    parser = CountingParser()
    frames = b"MSG a 1 1\r\nx\r\nHMSG h 2 12 12\r\nNATS/1.0\r\n\r\n\r\nMSG a 1 r 2\r\n\r\n\r\n"
    assert len(parser.feed(frames * 3 + b"PING\r\n")) == 10
    assert parser.reads == [b"MSG a 1 1", b"HMSG h 2 12 12"] + [b"MSG a 1 r 2"] * 3
    assert parser.referred == [b"PING"]
    assert len(parser.feed(b"MSG a 1 1\r\nx")) == 0  # its payload still arriving: the reference waits for it
    assert parser.referred == [b"PING", b"MSG a 1 1"]
    reference = CountingParser(fast=False)
    assert len(reference.feed(frames)) == 3 and reference.reads == []  # fast=False: the reference alone


def test_a_request_streams_fields_are_converted_once(monkeypatch):
    """Request lines differ only in their reply inbox: their other fields are remembered by bytes."""
    from bridge.nats import protocol

    calls = []
    original = protocol._msg_fields
    monkeypatch.setattr(protocol, "_msg_fields", lambda *args: calls.append(args) or original(*args))
    parser = Parser()
    data = b"".join(b"MSG svc 1 _INBOX.a.%d 2\r\nhi\r\n" % i for i in range(5))
    assert [m.reply for m in parser.feed(data)] == ["_INBOX.a.%d" % i for i in range(5)]
    assert calls == [(b"svc", b"1", None, b"2")]


@pytest.mark.parametrize("fast", [True, False])
def test_an_info_line_fed_byte_by_byte_keeps_its_exemption(fast):
    data = b'INFO {"x":"' + b"y" * 300 + b'"}\r\n'
    for op in (b"INFO ", b"info\t"):
        for before in (b"", b"PING\r\n"):  # after a frame that ended exactly at the end of a piece
            parser = Parser(fast=fast)
            parser.max_control_line = 100
            assert parser.feed(before) == ([PING_EVENT] if before else [])
            stream = op + data[5:]
            events = [e for i in range(len(stream)) for e in parser.feed(stream[i : i + 1])]
            assert events == [Info({"x": "y" * 300})]
    parser = Parser(fast=fast)
    parser.max_control_line = 100
    with pytest.raises(ProtocolError, match="^maximum control line exceeded$"):
        for i in range(200):
            parser.feed((b"INFOX" + b"y" * 300)[i : i + 1])


def test_a_lowered_limit_applies_to_control_lines_seen_before():
    parser = Parser()
    frame = b"MSG sensors.temperature 1 2\r\nhi\r\n"
    assert len(parser.feed(frame * 2)) == 2
    parser.max_control_line = 10
    with pytest.raises(ProtocolError, match="^maximum control line exceeded$"):
        parser.feed(frame)


def feed_chunks_into(parser: Parser, data: bytes, size: int) -> list:
    return [event for start in range(0, len(data), size) for event in parser.feed(data[start : start + size])]


def test_info_is_exempt_from_the_control_line_limit_up_to_max_info_line():
    options = {"server_id": "x", "connect_urls": ["10.0.%d.%d:4222" % (i // 256, i % 256) for i in range(8000)]}
    data = b"INFO " + json.dumps(options).encode() + b"\r\n"
    assert DEFAULT_MAX_CONTROL_LINE < len(data) < MAX_INFO_LINE
    assert feed_chunks([data]) == [Info(options)]
    assert feed_chunks(data[i : i + 4096] for i in range(0, len(data), 4096)) == [Info(options)]


def test_info_longer_than_max_info_line_is_refused_whole_or_split():
    data = b'INFO {"x":"' + b"y" * MAX_INFO_LINE + b'"}\r\n'
    with pytest.raises(ProtocolError, match="^maximum control line exceeded$"):
        Parser().feed(data)
    parser = Parser()
    with pytest.raises(ProtocolError, match="^maximum control line exceeded$"):
        for start in range(0, len(data), 65536):
            parser.feed(data[start : start + 65536])


def test_info_may_use_a_control_line_limit_set_above_max_info_line():
    options = {"x": "y" * MAX_INFO_LINE}
    data = b"INFO " + json.dumps(options).encode() + b"\r\n"
    for fast in (True, False):
        parser = Parser(fast=fast)
        parser.max_control_line = 2 * MAX_INFO_LINE
        assert [fields(e) for e in feed_chunks_into(parser, data, 65536)] == [Info(options)]


def info_line_of_length(length: int, sep: bytes = b" ") -> bytes:
    line = b"INFO" + sep + b'{"x":"' + b"y" * (length - len(b'INFO {"x":""}')) + b'"}'
    assert len(line) == length
    return line


@pytest.mark.parametrize("fast", [True, False])
def test_info_line_of_exactly_max_info_line_is_accepted_and_one_more_byte_is_not(fast):
    fits, too_long = info_line_of_length(MAX_INFO_LINE) + b"\r\n", info_line_of_length(MAX_INFO_LINE + 1) + b"\r\n"
    for before in (b"", b"PING\r\n"):  # the line's length, not its end's offset in the buffer
        for chunk in (len(before + fits), 65536):
            events = feed_chunks_into(Parser(fast=fast), before + fits, chunk)
            assert [type(e) for e in events] == ([type(PING_EVENT)] if before else []) + [Info]
            with pytest.raises(ProtocolError, match="^maximum control line exceeded$"):
                feed_chunks_into(Parser(fast=fast), before + too_long, chunk)


@pytest.mark.parametrize("fast", [True, False])
def test_info_exemption_holds_with_a_tab_after_the_op(fast):
    data = info_line_of_length(DEFAULT_MAX_CONTROL_LINE + 100, sep=b"\t") + b"\r\n"
    for chunk in (len(data), 1000):
        assert [type(e) for e in feed_chunks_into(Parser(fast=fast), data, chunk)] == [Info]


def test_info_exemption_needs_the_info_op_itself():
    with pytest.raises(ProtocolError):
        Parser().feed(b"INFOX" + b"y" * DEFAULT_MAX_CONTROL_LINE)


# --- what is not NATS -------------------------------------------------------------------------

def exactly(text: str) -> str:
    return "^" + re.escape(text) + "$"


LONG_ARGS = b"a " + b"r" * 100 + b" x y 3"
# Each case: the stream, and the ProtocolError's message (a regex) on either path, whole or split.
BAD_STREAMS = {
    "unknown op": (b"HELLO world\r\n", exactly("unknown protocol operation b'HELLO world'")),
    "unknown op, long": (b"HELLO " + b"w" * 60 + b"\r\n", exactly("unknown protocol operation b'HELLO %s'" % ("w" * 34))),
    "empty line": (b"\r\n", exactly("unknown protocol operation b''")),
    "MSG too few args": (b"MSG a 3\r\nabc\r\n", exactly("bad MSG arguments: b'a 3'")),
    "MSG too many args": (b"MSG a 1 r x 3\r\nabc\r\n", exactly("bad MSG arguments: b'a 1 r x 3'")),
    "MSG too many long args": (b"MSG " + LONG_ARGS + b"\r\nabc\r\n", exactly("bad MSG arguments: %r" % LONG_ARGS[:80])),
    "MSG size not a number": (b"MSG a 1 three\r\nabc\r\n", exactly("expected a number, got b'three'")),
    "MSG size a long non-number": (b"MSG a 1 " + b"7" * 30 + b"x\r\nabc\r\n", exactly("expected a number, got b'%s'" % ("7" * 20))),
    "MSG size with a sign": (b"MSG a 1 +3\r\nabc\r\n", exactly("expected a number, got b'+3'")),
    "MSG size with an underscore": (b"MSG a 1 1_0\r\n0123456789\r\n", exactly("expected a number, got b'1_0'")),
    "MSG size in other digits": ("MSG a 1 ³\r\nabc\r\n".encode(), exactly("expected a number, got b'\\xc2\\xb3'")),
    "MSG negative sid": (b"MSG a -1 3\r\nabc\r\n", exactly("expected a number, got b'-1'")),
    "MSG payload longer than announced": (b"MSG a 1 2\r\nabc\r\n", exactly("message payload not followed by CRLF")),
    "MSG after a known line, payload longer than announced": (
        b"MSG a 1 2\r\nab\r\nMSG a 1 2\r\nabc\r\n", exactly("message payload not followed by CRLF")),
    "HMSG too few args": (b"HMSG a 1 3\r\nabc\r\n", exactly("bad HMSG arguments: b'a 1 3'")),
    "HMSG too many args": (b"HMSG a 1 r x 3 3\r\nabc\r\n", exactly("bad HMSG arguments: b'a 1 r x 3 3'")),
    "HMSG too many long args": (b"HMSG " + LONG_ARGS + b" 3\r\nabc\r\n", exactly("bad HMSG arguments: %r" % (LONG_ARGS + b" 3")[:80])),
    "HMSG header size not a number": (b"HMSG a 1 x 3\r\nabc\r\n", exactly("expected a number, got b'x'")),
    "HMSG header larger than total": (b"HMSG a 1 20 10\r\n0123456789\r\n", exactly("HMSG header size larger than total size")),
    "HMSG header one larger than total": (b"HMSG a 1 11 10\r\n0123456789\r\n", exactly("HMSG header size larger than total size")),
    "HMSG payload longer than announced": (
        hmsg(b"a", 1, b"NATS/1.0\r\n\r\n", b"")[:-2] + b"x\r\n", exactly("message payload not followed by CRLF")),
    "INFO not JSON": (b"INFO {nope\r\n", exactly("INFO is not valid JSON: Expecting property name enclosed in double quotes: "
                                                 "line 1 column 2 (char 1)")),
    "INFO not an object": (b"INFO [1, 2]\r\n", exactly("INFO is not a JSON object")),
    "INFO nested too deep": (b"INFO " + b"[" * 100_000 + b"\r\n", "^INFO is not valid JSON: .*recursion"),
}


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize(("data", "message"), BAD_STREAMS.values(), ids=BAD_STREAMS.keys())
def test_malformed_streams_raise_protocol_error(data, message, fast):
    with pytest.raises(ProtocolError, match=message):
        Parser(fast=fast).feed(data)
    step = 1 + len(data) // 1000  # byte by byte, but without feeding 100 kB one byte at a time
    parser = Parser(fast=fast)
    with pytest.raises(ProtocolError, match=message):
        for i in range(0, len(data), step):
            parser.feed(data[i : i + step])


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize(
    "frame", [b"MSG a %s 1\r\nx\r\n", b"MSG a 1 %s\r\nx\r\n", b"msg a %s 1\r\nx\r\n", b"HMSG a 1 %s 1\r\nx\r\n"]
)
def test_numbers_beyond_ints_digit_limit_are_protocol_errors(frame, fast):
    """int() refuses more than 4300 digits; the line is within the default limit."""
    with pytest.raises(ProtocolError, match="expected a number"):
        Parser(fast=fast).feed(frame % (b"1" * 5000))


def test_an_announced_size_beyond_any_server_limit_is_refused_before_buffering():
    for fast in (True, False):
        with pytest.raises(ProtocolError, match="^message of %d bytes announced; no server sends more than %d$"
                                                % (MAX_MESSAGE_SIZE + 1, MAX_MESSAGE_SIZE)):
            Parser(fast=fast).feed(b"MSG a 1 %d\r\nxx" % (MAX_MESSAGE_SIZE + 1))
        assert Parser(fast=fast).feed(b"MSG a 1 %d\r\nxx" % MAX_MESSAGE_SIZE) == []  # the largest: waited for
        assert Parser(fast=fast).feed(b"HMSG a 1 12 %d\r\nxx" % MAX_MESSAGE_SIZE) == []


@pytest.mark.parametrize("fast", [True, False])
def test_pieces_of_an_unfinished_line_are_kept_apart_until_its_end_may_have_come(fast):
    """Joining them on every piece would copy the line again and again (quadratic)."""
    parser = Parser(fast=fast)
    for piece in (b"MSG a", b".b", b" 1", b" 3"):
        assert parser.feed(piece) == []
    assert parser._pending == [b"MSG a", b".b", b" 1", b" 3"]
    assert parser.feed(b"\r") == [] and len(parser._pending) == 5
    assert [fields(e) for e in parser.feed(b"\nabc\r\n")] == [msg_tuple("a.b", 1, None, b"abc")]
    assert parser._pending == []
    for piece in (b"MSG c", b".d"):  # and again after a frame completed from pieces
        assert parser.feed(piece) == []
    assert parser._pending == [b"MSG c", b".d"]


# --- what is wrong inside one message ---------------------------------------------------------
# Each case: the frame, then what the message must hold. The frame is followed by PING and a
# clean MSG, which must still arrive: a bad message never costs the connection.

LENIENT = {
    "subject not UTF-8": (
        b"MSG a.\xff 1 3\r\nabc\r\n",
        msg_tuple("a.\udcff", 1, None, b"abc", problem="subject is not UTF-8"),
    ),
    "reply not UTF-8": (
        b"MSG a 1 _INBOX.\xfe\xff 3\r\nabc\r\n",
        msg_tuple("a", 1, "_INBOX.\udcfe\udcff", b"abc", problem="reply subject is not UTF-8"),
    ),
    "lower-case op, reply not UTF-8": (
        b"msg a 1 \xff 3\r\nabc\r\n",
        msg_tuple("a", 1, "\udcff", b"abc", problem="reply subject is not UTF-8"),
    ),
    "HMSG subject not UTF-8": (
        hmsg(b"\xc3", 1, b"NATS/1.0\r\n\r\n", b"x"),
        msg_tuple("\udcc3", 1, None, b"x", Headers(), problem="subject is not UTF-8"),
    ),
    "header line without colon": (
        hmsg(b"a", 1, b"NATS/1.0\r\nnocolon\r\nK: v\r\n\r\n", b"x"),
        msg_tuple("a", 1, None, b"x", Headers([("K", "v")]), problem="header line skipped: 'nocolon'"),
    ),
    "header line with an empty key": (
        hmsg(b"a", 1, b"NATS/1.0\r\n: v\r\nK: v\r\n\r\n", b"x"),
        msg_tuple("a", 1, None, b"x", Headers([("K", "v")]), problem="header line skipped: ': v'"),
    ),
    "header key with spaces around": (
        hmsg(b"a", 1, b"NATS/1.0\r\n K: v\r\n\r\n", b""),
        msg_tuple("a", 1, None, b"", Headers(), problem="header line skipped: ' K: v'"),
    ),
    "header value not UTF-8": (
        hmsg(b"a", 1, b"NATS/1.0\r\nK: \xff\r\n\r\n", b""),
        msg_tuple("a", 1, None, b"", Headers([("K", "\udcff")]), problem="header block is not UTF-8"),
    ),
    "header key not UTF-8": (
        hmsg(b"a", 1, b"NATS/1.0\r\nK\xe9: v\r\n\r\n", b""),
        msg_tuple("a", 1, None, b"", Headers([("K\udce9", "v")]), problem="header block is not UTF-8"),
    ),
    "status not a number": (
        hmsg(b"a", 1, b"NATS/1.0 5x3 Oops\r\n\r\n", b""),
        msg_tuple("a", 1, None, b"", Headers(), None, "5x3 Oops", "header status is not a number: '5x3 Oops'"),
    ),
    "status not ASCII digits": (
        hmsg(b"a", 1, "NATS/1.0 ²³⁴\r\n\r\n".encode(), b""),
        msg_tuple("a", 1, None, b"", Headers(), None, "²³⁴", "header status is not a number: '²³⁴'"),
    ),
    "status with 5000 digits": (
        hmsg(b"a", 1, b"NATS/1.0 " + b"1" * 5000 + b"\r\n\r\n", b""),
        msg_tuple("a", 1, None, b"", Headers(), None, "1" * 5000, "header status is not a number: '%s'" % ("1" * 40)),
    ),
    "other version": (
        hmsg(b"a", 1, b"NATS/2.0 503\r\nK: v\r\n\r\n", b""),
        msg_tuple("a", 1, None, b"", Headers([("K", "v")]), None, "NATS/2.0 503",
                  "header block does not start with NATS/1.0: 'NATS/2.0 503'"),
    ),  # fmt: skip
    "version glued to status": (
        hmsg(b"a", 1, b"NATS/1.0503\r\n\r\n", b""),
        msg_tuple("a", 1, None, b"", Headers(), None, "NATS/1.0503", "header block does not start with NATS/1.0: 'NATS/1.0503'"),
    ),
    "no version line": (
        hmsg(b"a", 1, b"HTTP/1.1\r\n\r\n", b"body"),
        msg_tuple("a", 1, None, b"body", Headers(), None, "HTTP/1.1", "header block does not start with NATS/1.0: 'HTTP/1.1'"),
    ),
}
AFTERWARDS = b"PING\r\nMSG next 9 2\r\nok\r\n"


@pytest.mark.parametrize("case", LENIENT.values(), ids=LENIENT.keys())
def test_what_is_wrong_inside_a_message_costs_only_that_message(case):
    frame, expected = case
    events = parse(frame + AFTERWARDS)
    assert [fields(e) for e in events] == [expected, PING_EVENT, msg_tuple("next", 9, None, b"ok")]


def test_the_same_bad_line_twice_is_named_both_times():
    """The fast path must not remember a line whose reading had a problem as a clean one."""
    frame = b"MSG a.\xff 1 3\r\nabc\r\n"
    assert [e.problem for e in Parser().feed(frame * 3)] == ["subject is not UTF-8"] * 3


def test_a_reply_to_a_reply_subject_that_is_not_utf8_reaches_the_same_bytes():
    reply = b"_INBOX.\xc3\x28.\xff"
    [request] = parse(b"MSG svc 1 %s 2\r\nhi\r\n" % reply)
    assert encode_pub(request.reply, b"ok") == b"PUB %s 2\r\nok\r\n" % reply
    assert encode_hpub(request.reply, b"", {"K": "v"}).startswith(b"HPUB %s " % reply)
    assert encode_pub("a", b"", reply=request.reply) == b"PUB a %s 0\r\n\r\n" % reply
    assert encode_sub(request.reply, 3, queue=request.reply) == b"SUB %s %s 3\r\n" % (reply, reply)


@untimed
@given(st.binary(min_size=1, max_size=30).filter(lambda b: not any(c in b for c in b" \t\r\n\x0b\x0c")))
def test_any_subject_bytes_round_trip_through_parse_and_encode(subject):
    """Any bytes but the field separators (bytes.split() takes all ASCII whitespace)."""
    [message] = Parser().feed(b"MSG %s 1 %s 0\r\n\r\n" % (subject, subject))
    assert encode_pub(message.subject, b"", reply=message.reply) == b"PUB %s %s 0\r\n\r\n" % (subject, subject)


# --- headers ----------------------------------------------------------------------------------


def test_headers_lookup_prefers_exact_case_then_folds():
    headers = Headers([("Content-Type", "a"), ("content-type", "b"), ("X", "1"), ("X", "2")])
    assert headers.get_all("content-type") == ["b"]
    assert headers.get_all("CONTENT-TYPE") == ["a", "b"]
    assert headers.get("X") == "1"
    assert headers["x"] == "1"
    assert headers.get("missing") is None and headers.get("missing", "d") == "d"
    with pytest.raises(KeyError) as missing:
        headers["missing"]
    assert missing.value.args == ("missing",)
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
    headers, status, description, problem = parse_headers(b"NATS/1.0 100 Idle Heartbeat\r\nUrl:  http://x:80/  \r\n\r\n")
    assert headers.items() == [("Url", "http://x:80/")]
    assert (status, description, problem) == (100, "Idle Heartbeat", None)


def test_parse_headers_skips_empty_lines_anywhere_and_reads_on():
    headers, status, description, problem = parse_headers(b"NATS/1.0\r\nA: 1\r\n\r\nB: 2\r\n\r\n")
    assert (headers.items(), status, description, problem) == ([("A", "1"), ("B", "2")], None, None, None)


def test_parse_headers_names_a_long_skipped_line_by_its_first_40_characters():
    line = "no colon here and long enough to be cut at forty " + "z" * 20
    _, _, _, problem = parse_headers(b"NATS/1.0\r\n" + line.encode() + b"\r\n\r\n")
    assert problem == f"header line skipped: {line[:40]!r}"
    _, _, _, problem = parse_headers(b"NATS/1.0 " + b"4" * 60 + b"\r\n\r\n")
    assert problem == "header status is not a number: %r" % ("4" * 40)
    _, _, _, problem = parse_headers(b"NATS/9.9 " + b"4" * 60 + b"\r\n\r\n")
    assert problem == "header block does not start with NATS/1.0: %r" % ("NATS/9.9 " + "4" * 31)


def test_parse_headers_names_the_first_problem_and_keeps_the_rest():
    headers, status, description, problem = parse_headers(b"NATS/1.0 50x\r\nA: 1\r\nbad\r\nB: 2\r\n\r\n")
    assert (headers.items(), status, description) == ([("A", "1"), ("B", "2")], None, "50x")
    assert problem == "header status is not a number: '50x'"


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
    "pair",
    [("", "v"), ("a:b", "v"), ("a b", "v"), ("a\tb", "v"), ("k", "line\r\nbreak"), ("k", "\n"), ("k", "a\rb"), ("k\r", "v"),
     ("k\n", "v")],
)
def test_encode_headers_refuses_what_would_corrupt_the_block(pair):
    with pytest.raises(ValueError) as refused:
        encode_headers([pair])
    assert str(refused.value) == f"invalid header {pair[0]!r}: {pair[1]!r}"


def plain_encode_headers(pairs) -> bytes:
    """The header encoder read plainly (every key checked every time): the oracle for the one
    that remembers keys it has checked."""
    lines = ["NATS/1.0"]
    for key, value in pairs:
        if not key or any(c in key for c in ": \r\n\t") or "\r" in value or "\n" in value:
            raise ValueError(key)
        lines.append(f"{key}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape")


header_part = st.text(alphabet="aB-:\r\n\t é\udc80", max_size=4)


@given(st.lists(st.tuples(header_part, header_part), max_size=4))
def test_encode_headers_same_as_the_plain_encoder_first_time_and_after(pairs):
    for _ in range(2):  # the second time the valid keys are known to the encoder
        try:
            expected = plain_encode_headers(pairs)
        except ValueError:
            with pytest.raises(ValueError):
                encode_headers(pairs)
            continue
        assert encode_headers(pairs) == expected
        assert encode_headers(Headers(pairs)) == expected


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
    assert fields(msg) == msg_tuple("dev.pixels", 4, "_INBOX.q", b"\x00\r\n\xff", headers)


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
        args = [draw(op_names(b"MSG")), subject.encode(), b"%d" % sid] + ([reply.encode()] if reply else [])
        line = sep.join(args + [b"%d" % len(payload)])
        return line + b"\r\n" + payload + b"\r\n", msg_tuple(subject, sid, reply, payload)
    if kind == "HMSG":
        subject, sid, reply, payload = draw(subjects), draw(sids), draw(replies), draw(payloads)
        pairs, status = draw(header_lists), draw(statuses)
        first = "NATS/1.0"
        code = description = None
        if status:
            code, description = status[0], (status[1] or "").strip() or None
            first += f" {code}" + (f" {description}" if description else "")
        block = (first + "\r\n" + "".join(f"{k}: {v}\r\n" for k, v in pairs) + "\r\n").encode()
        args = [draw(op_names(b"HMSG")), subject.encode(), b"%d" % sid] + ([reply.encode()] if reply else [])
        line = sep.join(args + [b"%d" % len(block), b"%d" % (len(block) + len(payload))])
        expected = msg_tuple(subject, sid, reply, payload, Headers(pairs), code, description)
        return line + b"\r\n" + block + payload + b"\r\n", expected
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
    cuts = data.draw(st.lists(st.integers(0, len(raw)), max_size=40))
    for fast in (True, False):
        assert feed_chunks([raw], fast=fast) == expected
        assert feed_chunks(split_at(raw, cuts), fast=fast) == expected


@st.composite
def large_msg_frames(draw):
    """MSG or HMSG with a payload of 0 B to 64 KiB, some full of CRLFs, some with a reply."""
    size = draw(st.integers(0, 64 * 1024) | st.integers(0, 64))
    pattern = draw(st.sampled_from([b"x", b"\r\n", b"ab\r\ncd", b"\r", bytes(range(256))]))
    payload = (pattern * (size // len(pattern) + 1))[:size]
    reply = draw(st.none() | st.sampled_from([b"_INBOX.a", b"_INBOX.b.1"]))
    if draw(st.booleans()):
        return b"MSG big %d %s%d\r\n%s\r\n" % (draw(st.integers(0, 3)), reply + b" " if reply else b"", size, payload)
    return hmsg(b"big.h", draw(st.integers(0, 3)), b"NATS/1.0\r\nK: v\r\n\r\n", payload, reply=reply)


# Frames of every kind, repeated so that the fast path's caches hit, with what is wrong inside a
# message (LENIENT) mixed in.
mixed_frames = st.tuples(
    frames().map(lambda pair: pair[0]) | large_msg_frames() | st.sampled_from([frame for frame, _ in LENIENT.values()]),
    st.integers(1, 3),
).map(lambda pair: pair[0] * pair[1])


def outcome(chunks, fast: bool) -> tuple[list, str | None]:
    """The events and the ProtocolError (if any) from feeding `chunks`."""
    parser = Parser(fast=fast)
    events = []
    try:
        for chunk in chunks:
            events.extend(fields(event) for event in parser.feed(chunk))
    except ProtocolError as exc:
        return events, str(exc)
    return events, None


@settings(untimed, max_examples=300)
@given(st.lists(mixed_frames, min_size=1, max_size=25), st.data())
def test_fast_path_gives_the_reference_events_on_mixed_streams(stream, data):
    raw = b"".join(stream)
    cuts = data.draw(st.lists(st.integers(0, len(raw)), max_size=30))
    reference = outcome([raw], fast=False)
    assert reference[1] is None
    assert outcome([raw], fast=True) == reference
    assert outcome(split_at(raw, cuts), fast=True) == reference
    assert outcome(split_at(raw, cuts), fast=False) == reference


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
    expected = [msg_tuple(s, sid, r, p) for s, sid, r, p in messages]
    assert feed_chunks(raw[i : i + chunk] for i in range(0, len(raw), chunk)) == expected


@untimed
@given(header_lists, subjects, payloads, replies, st.integers(0, 2**32))
def test_header_encoding_round_trips_through_the_parser(pairs, subject, payload, reply, sid):
    frame = encode_hpub(subject, payload, Headers(pairs), reply=reply)
    assert feed_chunks([reframe_hpub_as_hmsg(frame, sid)]) == [msg_tuple(subject, sid, reply, payload, Headers(pairs))]


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
    assert outcome(split_at(raw, cuts), fast=True) == outcome(split_at(raw, cuts), fast=False)


@untimed
@given(st.lists(frames(), min_size=1, max_size=10), st.data())
def test_corrupted_valid_streams_give_the_same_events_or_protocol_error_on_both_paths(stream, data):
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
    chunks = split_at(bytes(raw), cuts)
    assert outcome(chunks, fast=True) == outcome(chunks, fast=False)  # raising nothing but ProtocolError


# --- the header-key cache of encode_headers (a speed trick: output-only tests cannot see it) ----


class _CountingPattern:
    """Stands in for the bad-key pattern and counts the keys it is asked about."""

    def __init__(self, real):
        self.real, self.asked = real, []

    def search(self, key):
        self.asked.append(key)
        return self.real.search(key)


def test_a_header_key_checked_once_is_remembered_and_not_checked_again(monkeypatch):
    from bridge.nats import protocol

    monkeypatch.setattr(protocol, "_valid_keys", set())
    counting = _CountingPattern(protocol._BAD_KEY_CHARS)
    monkeypatch.setattr(protocol, "_BAD_KEY_CHARS", counting)
    assert encode_headers({"X-Once": "1"}) == b"NATS/1.0\r\nX-Once: 1\r\n\r\n"
    assert "X-Once" in protocol._valid_keys
    assert encode_headers({"X-Once": "2"}) == b"NATS/1.0\r\nX-Once: 2\r\n\r\n"
    assert counting.asked == ["X-Once"]


def test_a_str_subclass_key_is_checked_every_time_never_remembered(monkeypatch):
    from bridge.nats import protocol

    class Key(str):
        pass

    monkeypatch.setattr(protocol, "_valid_keys", set())
    counting = _CountingPattern(protocol._BAD_KEY_CHARS)
    monkeypatch.setattr(protocol, "_BAD_KEY_CHARS", counting)
    encode_headers([(Key("K"), "v")])
    encode_headers([(Key("K"), "v")])
    assert counting.asked == ["K", "K"] and protocol._valid_keys == set()


def test_the_header_key_cache_is_bounded(monkeypatch):
    from bridge.nats import protocol

    monkeypatch.setattr(protocol, "_valid_keys", set())
    for index in range(protocol.CACHE_ENTRIES):
        encode_headers({f"K{index}": "v"})
    assert len(protocol._valid_keys) == protocol.CACHE_ENTRIES
    encode_headers({"one-more": "v"})
    assert protocol._valid_keys == {"one-more"}


def test_headers_objects_are_read_directly_not_converted_again(monkeypatch):
    from bridge.nats import protocol

    def no_conversion(items):
        raise AssertionError("a Headers needs no conversion")

    headers = Headers([("A", "1"), ("A", "2")])
    monkeypatch.setattr(protocol, "_header_items", no_conversion)
    assert encode_headers(headers) == b"NATS/1.0\r\nA: 1\r\nA: 2\r\n\r\n"
