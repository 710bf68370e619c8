"""The Twisted NATS client against a real nats-server: handshake, pub/sub, request/reply, errors.

Failover, auth/TLS and nats-py interop have their own test_nats_client_*.py files.
"""

from __future__ import annotations

import json
import random
import re

import pytest
import pytest_twisted
from twisted.internet import defer, protocol
from twisted.logger import globalLogPublisher

from bridge.nats import (
    Client,
    ClientOptions,
    ConnectionClosedError,
    Credentials,
    Headers,
    InvalidSubjectError,
    MaxPayloadError,
    NatsError,
    NatsTimeoutError,
    NoRespondersError,
    PermissionViolationError,
    ServerError,
)
from bridge.nats.client import backoff_delay, classify_server_error, parse_server_url
from bridge.nats.errors import AuthorizationError
from bridge.testing.nats_server import NatsServer
from tests.harness.nats_client import Collector, ConnectTimeout, connect_failure, connected, next_event
from tests.harness.reactor import wait_until


def connect_line(sent: bytes) -> dict:
    line = next(line for line in bytes(sent).split(b"\r\n") if line.startswith(b"CONNECT "))
    return json.loads(line[len(b"CONNECT "):])


# --- 1. handshake ----------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_connect_fires_only_after_the_pong_of_the_handshake(nats_server, proxy_to, make_client):
    proxy = proxy_to(nats_server)
    proxy.hold()
    client = make_client([proxy.url], name="handshake-test")
    connecting = client.connect()
    await wait_until(lambda: b"PING\r\n" in proxy.sent, what="CONNECT + PING sent")
    assert not connecting.called
    assert not client.is_connected
    proxy.release()
    assert await connected(client, connecting=connecting) is client
    assert client.connected_url == proxy.url
    sent = bytes(proxy.sent)
    assert sent.startswith(b"CONNECT ")
    assert sent.index(b"PING\r\n") > sent.index(b"CONNECT ")
    options = connect_line(sent)
    assert options["verbose"] is False
    assert options["pedantic"] is False
    assert options["protocol"] == 1
    assert options["headers"] is True
    assert options["no_responders"] is True
    assert options["echo"] is True
    assert options["name"] == "handshake-test"
    assert options["lang"] and options["version"]


@pytest_twisted.ensureDeferred
async def test_a_handshake_that_hangs_fails_the_test_in_seconds(make_client):
    from twisted.internet import reactor

    silent = reactor.listenTCP(0, protocol.Factory.forProtocol(protocol.Protocol), interface="127.0.0.1")
    try:
        url = f"nats://127.0.0.1:{silent.getHost().port}"  # accepts, never sends INFO
        client = make_client([url])
        with pytest.raises(ConnectTimeout, match=re.escape(f"connect() to ['{url}'] did not complete within 0.3s")):
            await connected(client, timeout=0.3)
    finally:
        await silent.stopListening()


@pytest_twisted.ensureDeferred
async def test_the_server_is_the_flavour_under_test(nats_flavour, nats_server, make_client):
    client = make_client([nats_server.url])
    await connected(client)
    assert client.server_info["version"] == ".".join(map(str, nats_flavour.version))


@pytest_twisted.ensureDeferred
async def test_unknown_info_fields_are_ignored(nats_server, proxy_to, make_client):
    proxy = proxy_to(nats_server)
    proxy.info_extra = {"feature_from_2031": {"nested": [1, 2, {"x": None}]}, "quantum": True}
    client = make_client([proxy.url])
    await connected(client)
    collector = Collector()
    client.subscribe("info.test", collector)
    client.publish("info.test", b"still works")
    await collector.wait_for(1)
    assert collector.data == [b"still works"]
    assert client.server_info["quantum"] is True


@pytest_twisted.ensureDeferred
async def test_echo_false_keeps_our_own_messages_from_us(nats_server, make_client):
    quiet = make_client([nats_server.url], echo=False)
    listener = make_client([nats_server.url])
    await connected(quiet)
    await connected(listener)
    own, other = Collector(), Collector()
    quiet.subscribe("echo.test", own)
    listener.subscribe("echo.test", other)
    await listener.flush()
    await quiet.flush()
    quiet.publish("echo.test", b"1")
    await other.wait_for(1)
    await quiet.flush()
    assert own.messages == []


# --- 2. publish / subscribe ------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_wildcard_subscriptions_match_tokens(nats_server, make_client):
    client = make_client([nats_server.url])
    await connected(client)
    star, tail, exact = Collector(), Collector(), Collector()
    client.subscribe("room.*.temp", star)
    client.subscribe("room.>", tail)
    client.subscribe("room.kitchen.temp", exact)
    for subject in ("room.kitchen.temp", "room.hall.temp", "room.hall.humidity.raw", "room"):
        client.publish(subject, subject.encode())
    await client.flush()
    await tail.wait_for(3)
    assert star.data == [b"room.kitchen.temp", b"room.hall.temp"]
    assert tail.data == [b"room.kitchen.temp", b"room.hall.temp", b"room.hall.humidity.raw"]
    assert exact.data == [b"room.kitchen.temp"]


@pytest_twisted.ensureDeferred
async def test_queue_group_spreads_messages_across_members(nats_server, make_client):
    publisher = make_client([nats_server.url])
    members = [make_client([nats_server.url]) for _ in range(2)]
    collectors = [Collector() for _ in members]
    for member, collector in zip(members, collectors):
        await connected(member)
        member.subscribe("work", collector, queue="workers")
        await member.flush()
    await connected(publisher)
    for i in range(200):
        publisher.publish("work", b"%d" % i)
    await publisher.flush()
    await wait_until(lambda: sum(len(c.messages) for c in collectors) >= 200, what="200 deliveries")
    for member in members:
        await member.flush()
    counts = [len(c.messages) for c in collectors]
    assert sum(counts) == 200  # each message to exactly one member
    assert all(count > 0 for count in counts), counts


@pytest_twisted.ensureDeferred
async def test_subscribe_with_max_msgs_stops_after_that_many(nats_server, make_client):
    client = make_client([nats_server.url])
    await connected(client)
    limited, later_limited = Collector(), Collector()
    sub = client.subscribe("limited", limited, max_msgs=3)
    later = client.subscribe("limited", later_limited)
    client.publish("limited", b"0")
    await later_limited.wait_for(1)
    client.unsubscribe(later, max_msgs=2)
    for i in range(1, 6):
        client.publish("limited", b"%d" % i)
    await client.flush()
    assert limited.data == [b"0", b"1", b"2"]
    assert later_limited.data == [b"0", b"1"]
    assert not sub.is_active and not later.is_active


@pytest_twisted.ensureDeferred
async def test_unsubscribe_stops_delivery(nats_server, make_client):
    client = make_client([nats_server.url])
    await connected(client)
    collector = Collector()
    sub = client.subscribe("unsub.test", collector)
    client.publish("unsub.test", b"before")
    await collector.wait_for(1)
    sub.unsubscribe()
    client.publish("unsub.test", b"after")
    await client.flush()
    assert collector.data == [b"before"]


@pytest_twisted.ensureDeferred
async def test_headers_round_trip_with_repeated_keys(nats_server, make_client):
    client = make_client([nats_server.url])
    await connected(client)
    collector = Collector()
    client.subscribe("hdr.test", collector)
    headers = Headers([("Trace", "a"), ("Trace", "b"), ("Content-Type", "application/json")])
    client.publish("hdr.test", b"{}", headers=headers)
    client.publish("hdr.test", b"plain")
    client.publish("hdr.test", b"", headers={"Only": "header"})
    await collector.wait_for(3)
    with_headers, plain, header_only = collector.messages
    assert with_headers.headers.get_all("Trace") == ["a", "b"]
    assert with_headers.headers.get("content-type") == "application/json"
    assert with_headers.data == b"{}"
    assert plain.headers is None
    assert header_only.data == b"" and header_only.headers.get("Only") == "header"


@pytest_twisted.ensureDeferred
async def test_empty_and_max_payload_messages_arrive_intact(nats_server, make_client):
    client = make_client([nats_server.url])
    await connected(client)
    collector = Collector()
    client.subscribe("sizes", collector)
    biggest = random.Random(7).randbytes(client.max_payload)
    client.publish("sizes", b"")
    client.publish("sizes", biggest)
    client.publish("sizes", b"\r\nMSG fake 1 2\r\n")
    await collector.wait_for(3)
    assert collector.data == [b"", biggest, b"\r\nMSG fake 1 2\r\n"]
    assert client.max_payload == client.server_info["max_payload"]


@pytest_twisted.ensureDeferred
async def test_oversized_publish_raises_and_sends_nothing(nats_server, proxy_to, make_client):
    proxy = proxy_to(nats_server)
    client = make_client([proxy.url])
    await connected(client)
    await client.flush()
    before = len(proxy.sent)
    with pytest.raises(MaxPayloadError, match="max_payload"):
        client.publish("too.big", b"x" * (client.max_payload + 1))
    with pytest.raises(MaxPayloadError):
        client.publish("too.big", b"x" * (client.max_payload - 10), headers={"Pad": "y" * 20})
    await client.flush()
    assert bytes(proxy.sent[before:]) == b"PING\r\n"
    assert client.is_connected


@pytest_twisted.ensureDeferred
async def test_bad_input_raises_before_anything_is_sent(nats_server, proxy_to, make_client):
    proxy = proxy_to(nats_server)
    client = make_client([proxy.url])
    await connected(client)
    await client.flush()
    before = len(proxy.sent)
    for subject in ("", "a..b", "has space", "wild.*", "tail.>"):
        with pytest.raises(InvalidSubjectError):
            client.publish(subject, b"x")
    with pytest.raises(InvalidSubjectError):
        client.publish("ok", b"x", reply="bad reply")
    with pytest.raises(InvalidSubjectError):
        client.subscribe("a.>.b", lambda m: None)
    with pytest.raises(InvalidSubjectError):
        client.subscribe("ok", lambda m: None, queue="two words")
    with pytest.raises(TypeError):
        client.publish("ok", "text is not bytes")
    with pytest.raises(ValueError):
        client.publish("ok", b"x", headers={"Bad:Key": "v"})
    await client.flush()
    assert bytes(proxy.sent[before:]) == b"PING\r\n"


@pytest.fixture
def log_events():
    events: list[dict] = []
    globalLogPublisher.addObserver(events.append)
    yield events
    globalLogPublisher.removeObserver(events.append)


@pytest_twisted.ensureDeferred
async def test_callback_errors_are_logged_and_delivery_continues(nats_server, make_client, log_events):
    client = make_client([nats_server.url])
    await connected(client)
    collector = Collector()

    def explode(msg):
        collector(msg)
        raise RuntimeError("callback bug")

    client.subscribe("boom", explode)
    client.publish("boom", b"1")
    client.publish("boom", b"2")

    def logged_bugs():
        return [e["log_failure"].getErrorMessage() for e in log_events if "log_failure" in e]

    await wait_until(lambda: len(logged_bugs()) == 2, what="two logged callback failures")
    assert logged_bugs() == ["callback bug", "callback bug"]
    assert collector.data == [b"1", b"2"]
    assert client.is_connected


@pytest_twisted.ensureDeferred
async def test_stats_count_messages_and_bytes(nats_server, make_client):
    client = make_client([nats_server.url])
    await connected(client)
    collector = Collector()
    client.subscribe("stats", collector)
    client.publish("stats", b"12345")
    client.publish("stats", b"678")
    await collector.wait_for(2)
    stats = client.stats
    assert (stats.msgs_out, stats.bytes_out) == (2, 8)
    assert (stats.msgs_in, stats.bytes_in) == (2, 8)
    assert stats.reconnects == 0


# --- 3. request / reply ----------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_request_reply_uses_one_muxed_inbox_subscription(nats_server, proxy_to, make_client):
    proxy = proxy_to(nats_server)
    server_side = make_client([nats_server.url])
    await connected(server_side)
    server_side.subscribe("math.double", lambda m: m.respond(b"%d" % (2 * int(m.data)), headers={"Op": "double"}))
    await server_side.flush()
    client = make_client([proxy.url])
    await connected(client)
    replies = await defer.gatherResults([client.request("math.double", b"%d" % i) for i in range(5)])
    assert [r.data for r in replies] == [b"0", b"2", b"4", b"6", b"8"]
    assert replies[0].headers.get("Op") == "double"
    assert bytes(proxy.sent).count(b"SUB _INBOX.") == 1


@pytest_twisted.ensureDeferred
async def test_request_without_responders_fails_fast(nats_server, make_client):
    client = make_client([nats_server.url])
    await connected(client)
    with pytest.raises(NoRespondersError, match="nobody.home"):
        await client.request("nobody.home", b"?", timeout=60)


@pytest_twisted.ensureDeferred
async def test_request_times_out_when_the_responder_stays_silent(nats_server, make_client):
    client = make_client([nats_server.url])
    await connected(client)
    client.subscribe("silent", lambda m: None)
    await client.flush()
    with pytest.raises(NatsTimeoutError):
        await client.request("silent", b"?", timeout=0.2)
    # A late reply to a timed-out request is dropped quietly; the next request still works.
    client.subscribe("echo", lambda m: m.respond(m.data))
    reply = await client.request("echo", b"again")
    assert reply.data == b"again"


@pytest_twisted.ensureDeferred
async def test_respond_needs_a_reply_subject(nats_server, make_client):
    client = make_client([nats_server.url])
    await connected(client)
    collector = Collector()
    client.subscribe("no.reply", collector)
    client.publish("no.reply", b"x")
    (msg,) = await collector.wait_for(1)
    with pytest.raises(NatsError, match="no reply subject"):
        msg.respond(b"y")


# --- flush, drain, close ---------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_drain_lets_async_callbacks_finish_then_closes(nats_server, make_client):
    client = make_client([nats_server.url])
    observer = make_client([nats_server.url])
    await connected(client)
    await connected(observer)
    results = Collector()
    observer.subscribe("drain.done", results)
    await observer.flush()
    release: defer.Deferred = defer.Deferred()

    async def slow(msg):
        await release
        client.publish("drain.done", msg.data)

    client.subscribe("drain.work", slow)
    for i in range(3):
        client.publish("drain.work", b"%d" % i)
    await client.flush()
    draining = client.drain()
    assert not draining.called
    with pytest.raises(ConnectionClosedError):
        client.subscribe("late", lambda m: None)
    release.callback(None)
    await draining
    assert client.is_closed
    await results.wait_for(3)
    assert sorted(results.data) == [b"0", b"1", b"2"]


@pytest_twisted.ensureDeferred
async def test_close_fails_what_is_pending_and_reports_closed(nats_server, make_client):
    client = make_client([nats_server.url])
    await connected(client)
    client.subscribe("never.answers", lambda m: None)
    await client.flush()
    pending = client.request("never.answers", b"?", timeout=30)
    closed = next_event(client, "closed")
    await client.close()
    await closed
    with pytest.raises(ConnectionClosedError):
        await pending
    with pytest.raises(ConnectionClosedError):
        client.publish("after", b"x")
    with pytest.raises(ConnectionClosedError):
        await client.flush()
    assert not client.is_connected


@pytest_twisted.ensureDeferred
async def test_close_before_connecting_fails_connect(make_client):
    dead = NatsServer()  # never started: nothing listens on its port
    client = make_client([dead.url])
    connecting = client.connect()
    await client.close()
    assert isinstance(await connect_failure(client, connecting=connecting), ConnectionClosedError)
    dead.cleanup()


# --- 8. -ERR handling ------------------------------------------------------------------------


PERMISSIONS = """
authorization {
  users: [
    { user: limited, password: pw, permissions: { publish: "allowed.>", subscribe: "allowed.>" } }
  ]
}
"""


@pytest_twisted.ensureDeferred
async def test_permission_violations_are_reported_and_the_connection_stays(nats_flavour, make_client):
    with nats_flavour.server(config=PERMISSIONS) as server:
        client = make_client([server.url], user="limited", password="pw")
        await connected(client)
        errors: list = []
        client.add_listener("error", errors.append)
        disconnects: list = []
        client.add_listener("disconnected", lambda *args: disconnects.append(args))
        client.publish("forbidden.topic", b"x")
        client.subscribe("forbidden.>", lambda m: None)
        await wait_until(lambda: len(errors) == 2, what="two permission errors")
        assert all(isinstance(e, PermissionViolationError) for e in errors)
        assert "forbidden" in str(errors[0])
        collector = Collector()
        client.subscribe("allowed.ok", collector)
        client.publish("allowed.ok", b"fine")
        await collector.wait_for(1)
        assert disconnects == [] and client.is_connected
        await client.close()


@pytest_twisted.ensureDeferred
async def test_fatal_server_error_reconnects_and_keeps_subscriptions(nats_flavour, make_client):
    with nats_flavour.server(config="max_control_line: 512") as server:
        client = make_client([server.url])
        await connected(client)
        collector = Collector()
        client.subscribe("after.error", collector)
        await client.flush()
        errors: list = []
        client.add_listener("error", errors.append)
        reconnected = next_event(client, "reconnected")
        client.publish("long." + "x" * 600, b"too long a control line for this server")
        await reconnected
        assert isinstance(errors[0], ServerError) and errors[0].fatal
        assert "control line" in errors[0].message.lower()
        client.publish("after.error", b"back")
        await collector.wait_for(1)
        assert client.stats.reconnects == 1
        await client.close()


@pytest.mark.parametrize(
    ("message", "kind", "fatal"),
    [
        ("Permissions Violation for Publish to \"x\"", PermissionViolationError, False),
        ("permissions violation for subscription to \"x\"", PermissionViolationError, False),
        ("Authorization Violation", AuthorizationError, True),
        ("authorization violation", AuthorizationError, True),
        ("User Authentication Expired", AuthorizationError, True),
        ("Invalid Subject", ServerError, False),
        ("invalid publish subject", ServerError, False),
        ("Maximum Payload Violation", ServerError, True),
        ("Stale Connection", ServerError, True),
    ],
)
def test_server_errors_are_classified_case_insensitively(message, kind, fatal):
    error = classify_server_error(message, "nats://h:1")
    assert type(error) is kind
    assert error.fatal is fatal
    assert error.message == message


# --- configuration ---------------------------------------------------------------------------


def test_server_urls_parse_with_defaults_and_credentials():
    server = parse_server_url("nats://bob:s%40cret@example.com:4333")
    assert (server.url, server.host, server.port, server.tls) == ("nats://example.com:4333", "example.com", 4333, False)
    assert (server.user, server.password) == ("bob", "s@cret")
    assert parse_server_url("10.0.0.2").url == "nats://10.0.0.2:4222"
    assert parse_server_url("tls://[::1]:4443").url == "tls://[::1]:4443"
    assert parse_server_url("nats://token@h").user == "token"
    for bad in ("ws://h:1", "nats://:4222", "nats://h:notaport"):
        with pytest.raises(ValueError):
            parse_server_url(bad)


def test_backoff_tries_every_server_at_once_then_backs_off_with_jitter():
    rng = random.Random(1)
    delays = [backoff_delay(n, 3, initial=0.1, maximum=5.0, jitter=0.2, rng=rng) for n in range(1, 12)]
    assert delays[:2] == [0.0, 0.0]  # the two other servers, straight away
    base = [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0, 5.0]
    for delay, expected in zip(delays[2:], base):
        assert expected <= delay <= expected * 1.2
    assert len({round(d / b, 6) for d, b in zip(delays[2:], base)}) > 1  # jittered, not a fixed factor
    assert backoff_delay(1, 1, initial=0.1, maximum=5.0, jitter=0.0, rng=rng) == 0.1


def test_constructor_rejects_unusable_settings(tmp_path):
    with pytest.raises(NatsError, match="cannot read"):
        Client(ClientOptions(["nats://h:1"], credentials=Credentials(creds_file=str(tmp_path / "missing.creds"))))
    with pytest.raises(NatsError, match="only one"):
        Client(ClientOptions(["nats://h:1"], credentials=Credentials(token="t", nkey_seed="SU...")))
    with pytest.raises(NatsError, match="cannot read"):
        Client(ClientOptions(["nats://h:1"], tls={"ca_file": str(tmp_path / "missing.pem")}))
    with pytest.raises(ValueError, match="unknown event"):
        Client(ClientOptions(["nats://h:1"])).add_listener("connceted", print)
