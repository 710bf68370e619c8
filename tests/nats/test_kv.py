"""Key-value buckets (ADR-8) and the watcher (ADR-15 ordered consumer) on real servers.

Every test runs against each server flavour (current and Debian's 2.9); nats-py checks that our
buckets are the official clients' buckets, both ways.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import nats
import nats.js.errors
import pytest
import pytest_twisted
from twisted.internet import task

from bridge.nats import (
    BucketNotFoundError,
    InvalidBucketNameError,
    InvalidKeyError,
    JetStream,
    KeyExistsError,
    KeyNotFoundError,
    KeyValue,
    KeyWrongLastSequenceError,
    KvEntry,
    Msg,
    NatsError,
    PermissionViolationError,
)
from bridge.nats.jetstream.kv import create_consumer_verb, create_key_value, key_value, parse_ack_reply, parse_time
from tests.harness.nats_client import connected
from tests.harness.natspy import NatsPy
from tests.harness.reactor import running_reactor, wait_until


async def jetstream(make_client, urls, **options) -> JetStream:
    return JetStream(await connected(make_client(urls, **options)), timeout=5.0)


async def bucket(make_client, server, name="cfg", **options) -> KeyValue:
    js = await jetstream(make_client, [server.url])
    return await create_key_value(js, name, **options)


class Seen:
    """A watch callback keeping every entry."""

    def __init__(self):
        self.entries: list[KvEntry] = []

    def __call__(self, entry: KvEntry) -> None:
        self.entries.append(entry)

    @property
    def revisions(self) -> list[int]:
        return [e.revision for e in self.entries]

    @property
    def values(self) -> list[bytes]:
        return [e.value for e in self.entries]

    async def wait_for(self, count: int, timeout: float = 10.0) -> None:
        await wait_until(lambda: len(self.entries) >= count, timeout, f"{count} watched entries (have {self.entries})")


async def sleep(seconds: float) -> None:
    await task.deferLater(running_reactor(), seconds)


# --- pure parts ------------------------------------------------------------------------------


def test_ack_subjects_of_both_forms_give_the_sequences():
    v1 = parse_ack_reply("$JS.ACK.KV_cfg.c1.1.42.7.1700000000123456789.3")
    v2 = parse_ack_reply("$JS.ACK._.ACCHASH.KV_cfg.c1.1.42.7.1700000000123456789.3.rnd")
    v2_short = parse_ack_reply("$JS.ACK.hub.ACCHASH.KV_cfg.c1.1.42.7.1700000000123456789.3")
    for ack in (v1, v2, v2_short):
        assert (ack.stream, ack.consumer, ack.stream_seq, ack.consumer_seq, ack.pending) == ("KV_cfg", "c1", 42, 7, 3)
        assert ack.timestamp_ns == 1700000000123456789
    assert parse_ack_reply("_INBOX.x") is None
    assert parse_ack_reply("$JS.ACK.too.short") is None


def test_server_times_parse_to_utc_microseconds():
    assert parse_time("2024-05-01T10:20:30.123456789Z") == datetime(2024, 5, 1, 10, 20, 30, 123456, timezone.utc)
    assert parse_time("2024-05-01T10:20:30Z") == datetime(2024, 5, 1, 10, 20, 30, tzinfo=timezone.utc)


@pytest.mark.parametrize("key", ["", ".a", "a.", "a b", "a*", "a>", "ü", "a\r\n"])
def test_bad_keys_are_refused_before_anything_is_sent(key):
    kv = KeyValue(JetStream(object()), "cfg")  # a client that would fail if touched
    for call in (lambda: kv.get(key), lambda: kv.put(key, b"x"), lambda: kv.delete(key)):
        with pytest.raises(InvalidKeyError):
            call()


@pytest.mark.parametrize("name", ["", "a.b", "a b", "a*", "KV>"])
def test_bad_bucket_names_are_refused(name):
    with pytest.raises(InvalidBucketNameError):
        KeyValue(JetStream(object()), name)


# --- one server ------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_the_bucket_is_the_stream_adr8_describes(js_server, make_client):
    kv = await bucket(make_client, js_server, history=5, description="settings")
    info = await kv.js.stream_info("KV_cfg")
    config = info["config"]
    assert config["subjects"] == ["$KV.cfg.>"]
    assert (config["max_msgs_per_subject"], config["num_replicas"], config["discard"]) == (5, 1, "new")
    assert config["allow_rollup_hdrs"] and config["deny_delete"] and config["allow_direct"]
    assert config["description"] == "settings"
    again = await create_key_value(kv.js, "cfg", history=5, description="settings")
    assert again.bucket == "cfg"
    bound = await key_value(kv.js, "cfg")
    assert bound.direct
    with pytest.raises(BucketNotFoundError):
        await key_value(kv.js, "missing")


@pytest_twisted.ensureDeferred
async def test_put_and_get_give_value_revision_time_and_operation(js_server, make_client):
    kv = await bucket(make_client, js_server)
    before = datetime.now(timezone.utc) - timedelta(seconds=1)
    assert await kv.put("led.colour", b"red") == 1
    assert await kv.put("led.brightness", b"5") == 2
    assert await kv.put("led.colour", b"blue") == 3
    entry = await kv.get("led.colour")
    assert (entry.bucket, entry.key, entry.value, entry.revision, entry.operation) == ("cfg", "led.colour", b"blue", 3, "PUT")
    assert before <= entry.created <= datetime.now(timezone.utc) + timedelta(seconds=1)
    with pytest.raises(KeyNotFoundError) as missing:
        await kv.get("never.put")
    assert missing.value.entry is None


@pytest_twisted.ensureDeferred
async def test_direct_get_and_stream_msg_get_read_the_same_entries(js_server, make_client):
    direct = await bucket(make_client, js_server)
    by_api = KeyValue(direct.js, "cfg", direct=False)
    await direct.put("a", b"1")
    await direct.put("a", b"2")
    await direct.put("b", b"\x00\xff")
    await direct.delete("b")
    for key in ("a", "b"):
        assert await direct.entry(key) == await by_api.entry(key)
    assert (await by_api.get("a")).value == b"2"
    with pytest.raises(KeyNotFoundError):
        await by_api.get("b")
    assert await direct.entry("none") is None and await by_api.entry("none") is None


@pytest_twisted.ensureDeferred
async def test_create_refuses_an_existing_key_and_update_a_wrong_revision(js_server, make_client):
    kv = await bucket(make_client, js_server)
    assert await kv.create("k", b"first") == 1
    with pytest.raises(KeyExistsError):
        await kv.create("k", b"second")
    with pytest.raises(KeyWrongLastSequenceError) as wrong:
        await kv.update("k", b"second", last=7)
    assert not isinstance(wrong.value, KeyExistsError)
    assert await kv.update("k", b"second", last=1) == 2
    with pytest.raises(KeyWrongLastSequenceError):
        await kv.update("k", b"third", last=1)
    assert (await kv.get("k")).value == b"second"


@pytest_twisted.ensureDeferred
async def test_delete_hides_the_value_and_create_works_again_after_it(js_server, make_client):
    kv = await bucket(make_client, js_server)
    await kv.put("k", b"v")
    assert await kv.delete("k") == 2
    with pytest.raises(KeyNotFoundError) as deleted:
        await kv.get("k")
    assert deleted.value.entry.operation == "DEL" and deleted.value.entry.revision == 2
    assert await kv.create("k", b"reborn") == 3
    assert (await kv.get("k")).value == b"reborn"


@pytest_twisted.ensureDeferred
async def test_history_is_oldest_first_with_markers_and_purge_drops_it(js_server, make_client):
    kv = await bucket(make_client, js_server, history=10)
    await kv.put("k", b"1")
    await kv.put("other", b"x")
    await kv.put("k", b"2")
    await kv.delete("k")
    await kv.put("k", b"3")
    history = await kv.history("k")
    assert [(e.revision, e.operation, e.value) for e in history] == [
        (1, "PUT", b"1"), (3, "PUT", b"2"), (4, "DEL", b""), (5, "PUT", b"3")]
    assert await kv.history("never") == []
    assert await kv.purge("k") == 6
    assert [(e.revision, e.operation) for e in await kv.history("k")] == [(6, "PURGE")]
    with pytest.raises(KeyNotFoundError):
        await kv.get("k")


# --- nats-py, both ways --------------------------------------------------------------------------


@pytest.fixture
def natspy(js_server):
    with NatsPy(js_server.url) as client:
        yield client


@pytest_twisted.ensureDeferred
async def test_nats_py_reads_what_we_put_and_sees_our_delete(js_server, natspy, make_client):
    kv = await bucket(make_client, js_server, history=5)
    await kv.put("sensor.temp", b"21.5")
    theirs = await natspy.run(natspy.js.key_value("cfg"))
    entry = await natspy.run(theirs.get("sensor.temp"))
    assert (entry.value, entry.revision) == (b"21.5", 1)
    await kv.delete("sensor.temp")
    with pytest.raises(nats.js.errors.KeyNotFoundError):
        await natspy.run(theirs.get("sensor.temp"))
    await kv.create("sensor.temp", b"22")
    assert (await natspy.run(theirs.get("sensor.temp"))).value == b"22"
    history = await natspy.run(theirs.history("sensor.temp"))
    assert [(h.revision, h.operation) for h in history] == [(1, None), (2, "DEL"), (3, None)]


@pytest_twisted.ensureDeferred
async def test_we_read_what_nats_py_puts_and_deletes(js_server, natspy, make_client):
    theirs = await natspy.run(natspy.js.create_key_value(bucket="pycfg", history=5))
    await natspy.run(theirs.put("mode", b"night"))
    js = await jetstream(make_client, [js_server.url])
    kv = await key_value(js, "pycfg")
    entry = await kv.get("mode")
    assert (entry.key, entry.value, entry.revision, entry.operation) == ("mode", b"night", 1, "PUT")
    seen = Seen()
    watcher = kv.watch("mode", seen)
    await watcher.initial_done
    await natspy.run(theirs.delete("mode"))
    await natspy.run(theirs.put("mode", b"day"))
    await seen.wait_for(3)
    assert [(e.revision, e.operation, e.value) for e in seen.entries] == [(1, "PUT", b"night"), (2, "DEL", b""), (3, "PUT", b"day")]
    await natspy.run(theirs.delete("mode"))
    with pytest.raises(KeyNotFoundError):
        await kv.get("mode")
    watcher.stop()


# --- watching ----------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_watch_delivers_the_current_value_then_every_change(js_server, make_client):
    kv = await bucket(make_client, js_server)
    await kv.put("led", b"old")
    await kv.put("led", b"current")
    await kv.put("other", b"not watched")
    seen = Seen()
    watcher = kv.watch("led", seen)
    await watcher.initial_done
    assert seen.values == [b"current"]
    await kv.put("led", b"new")
    await kv.delete("led")
    await kv.put("led", b"back")
    await seen.wait_for(4)
    assert [(e.revision, e.operation) for e in seen.entries] == [(2, "PUT"), (4, "PUT"), (5, "DEL"), (6, "PUT")]
    watcher.stop()
    await kv.put("led", b"after stop")
    await sleep(0.2)
    assert len(seen.entries) == 4


@pytest_twisted.ensureDeferred
async def test_watch_of_an_absent_key_is_done_at_once_and_sees_its_first_put(js_server, make_client):
    kv = await bucket(make_client, js_server)
    seen = Seen()
    watcher = kv.watch("later", seen)
    await watcher.initial_done
    assert seen.entries == []
    await kv.put("later", b"here")
    await seen.wait_for(1)
    assert seen.values == [b"here"]
    watcher.stop()


@pytest_twisted.ensureDeferred
async def test_watch_answers_flow_control_so_a_big_backlog_arrives(js_server, make_client):
    kv = await bucket(make_client, js_server, history=64)
    value = bytes(64 * 1024)
    for i in range(60):
        await kv.put(f"k{i % 4}", value)
    seen = Seen()
    # A long heartbeat: a stalled consumer's heartbeat (`Nats-Consumer-Stalled`) cannot rescue it in time.
    watcher = kv.watch(">", seen, include_history=True, idle_heartbeat=30)
    await seen.wait_for(60, timeout=15)
    assert seen.revisions == list(range(1, 61))
    assert watcher.flow_control_answered >= 1
    watcher.stop()


@pytest_twisted.ensureDeferred
async def test_watch_recreates_its_consumer_on_a_sequence_gap(js_server, make_client):
    kv = await bucket(make_client, js_server)
    await kv.put("k", b"1")
    seen = Seen()
    watcher = kv.watch("k", seen)
    await watcher.initial_done
    # A delivery claiming consumer sequence 5 after 1: the watcher must not trust it. The server
    # refuses `$JS.ACK` replies from clients, so it goes straight to the subscription's callback.
    forged = f"$JS.ACK.KV_cfg.{watcher.consumer_name}.1.99.5.1700000000000000000.0"
    subscription = watcher.subscription
    subscription.callback(Msg("$KV.cfg.k", subscription.sid, forged, b"forged"))
    await wait_until(lambda: watcher.consumers_created == 2, what="a second consumer")
    await kv.put("k", b"2")
    await seen.wait_for(2)
    await sleep(0.2)
    assert seen.values == [b"1", b"2"]
    watcher.stop()


@pytest_twisted.ensureDeferred
async def test_watch_recreates_its_consumer_when_heartbeats_stop(js_server, make_client):
    kv = await bucket(make_client, js_server)
    await kv.put("k", b"1")
    seen = Seen()
    watcher = kv.watch("k", seen, idle_heartbeat=0.3)
    await watcher.initial_done
    await kv.js.api(f"CONSUMER.DELETE.KV_cfg.{watcher.consumer_name}")  # gone without a word to us
    await kv.put("k", b"2")
    await seen.wait_for(2, timeout=5)
    assert seen.values == [b"1", b"2"] and watcher.consumers_created == 2
    watcher.stop()


@pytest_twisted.ensureDeferred
async def test_watch_continues_across_a_server_restart_without_gaps_or_repeats(js_server, make_client):
    # A long heartbeat: only the client's "reconnected" can make the watcher recover in time.
    client = await connected(make_client([js_server.url], initial_delay=0.05, max_delay=0.2))
    kv = await create_key_value(JetStream(client), "cfg")
    writer = KeyValue(JetStream(await connected(make_client([js_server.url], initial_delay=0.05, max_delay=0.2))), "cfg")
    await writer.put("k", b"1")
    seen = Seen()
    watcher = kv.watch("k", seen, idle_heartbeat=30)
    await watcher.initial_done
    await writer.put("k", b"2")
    await seen.wait_for(2)
    js_server.stop()
    js_server.start()
    for value in (b"3", b"4", b"5"):
        await put_retrying(writer, "k", value)
    await seen.wait_for(5, timeout=15)
    await sleep(0.3)
    assert seen.values == [b"1", b"2", b"3", b"4", b"5"]
    assert seen.revisions == [1, 2, 3, 4, 5]
    assert watcher.consumers_created >= 2
    watcher.stop()


@pytest_twisted.ensureDeferred
async def test_watch_makes_a_new_consumer_at_once_on_a_409_status(js_server, make_client):
    # Heartbeats too slow to help: only the 409 itself can make it this fast. The server sends it
    # to pull requests; to a push consumer's inbox it goes straight to the subscription's callback.
    kv = await bucket(make_client, js_server)
    await kv.put("k", b"1")
    seen = Seen()
    watcher = kv.watch("k", seen, idle_heartbeat=30)
    await watcher.initial_done
    subscription = watcher.subscription
    subscription.callback(Msg(subscription.subject, subscription.sid, None, b"", status=409,
                              description="Consumer Deleted"))
    await wait_until(lambda: watcher.consumers_created == 2, 2, "a new consumer within 2 s")
    await kv.put("k", b"2")
    await seen.wait_for(2, timeout=2)
    await sleep(0.2)
    assert seen.values == [b"1", b"2"]
    watcher.stop()


@pytest_twisted.ensureDeferred
async def test_watch_with_the_default_heartbeat_sees_the_next_put_within_2s_after_its_consumer_is_deleted(
        js_server, natspy, make_client):
    kv = await bucket(make_client, js_server)
    await kv.put("k", b"1")
    seen = Seen()
    watcher = kv.watch("k", seen)
    await watcher.initial_done
    await natspy.run(natspy.js.delete_consumer("KV_cfg", watcher.consumer_name))
    await natspy.run(natspy.js.publish("$KV.cfg.k", b"2"))
    await seen.wait_for(2, timeout=2)
    assert seen.values == [b"1", b"2"]
    watcher.stop()


@pytest_twisted.ensureDeferred
async def test_watch_starts_over_from_the_last_value_when_the_bucket_is_created_again(
        js_server, natspy, make_client):
    kv = await bucket(make_client, js_server)
    for value in (b"1", b"2", b"3"):
        await kv.put("k", value)
    seen, streams = Seen(), []
    watcher = kv.watch("k", seen, on_stream=streams.append)
    await watcher.initial_done
    assert seen.revisions == [3] and streams == [watcher.stream_created] and streams[0]
    await natspy.run(natspy.js.delete_key_value("cfg"))
    await natspy.run(natspy.js.create_key_value(bucket="cfg", history=5))
    await natspy.run(natspy.js.publish("$KV.cfg.k", b"new 1"))
    await seen.wait_for(2, timeout=5)
    assert [(e.revision, e.value) for e in seen.entries] == [(3, b"3"), (1, b"new 1")]
    assert len(streams) == 2 and streams[1] != streams[0] and watcher.stream_created == streams[1]
    watcher.stop()


PERMISSIONS = """
authorization {
  users: [
    { user: reader, password: pw, permissions: {
        publish: ["$JS.API.STREAM.INFO.>", "allowed.>"], subscribe: ["_INBOX.>", "allowed.>"] } }
    { user: no_inbox, password: pw, permissions: { publish: "allowed.>", subscribe: "allowed.>" } }
  ]
}
"""


@pytest_twisted.ensureDeferred
async def test_a_request_the_server_refuses_fails_at_once_with_a_permission_error(nats_flavour, make_client):
    with nats_flavour.server(config=PERMISSIONS, jetstream=True) as server:
        js = JetStream(await connected(make_client([server.url], user="reader", password="pw")), timeout=30)
        with pytest.raises(PermissionViolationError, match="STREAM.CREATE.KV_cfg"):
            await create_key_value(js, "cfg")
        with pytest.raises(BucketNotFoundError):  # an allowed call on the same connection still works
            await key_value(js, "cfg")
        no_inbox = await connected(make_client([server.url], user="no_inbox", password="pw"))
        with pytest.raises(PermissionViolationError, match="_INBOX"):
            await no_inbox.request("allowed.x", b"", timeout=30)


async def put_retrying(kv: KeyValue, key: str, value: bytes, timeout: float = 20.0) -> int:
    """A put while the cluster fails over: retried until a stream leader takes it. A retry after a
    lost ack can store the value twice; the tests compare against the stream, not the put count."""
    deadline = running_reactor().seconds() + timeout
    while True:
        try:
            return await kv.put(key, value)
        except NatsError:
            if running_reactor().seconds() > deadline:
                raise
            await sleep(0.2)


# --- a 3-node cluster ----------------------------------------------------------------------------


@pytest.fixture
def js_cluster(nats_flavour):
    cluster = nats_flavour.cluster(3, jetstream=True)
    try:
        cluster.start()
        cluster.wait_routed()
        cluster.wait_jetstream()
        yield cluster
    finally:
        cluster.cleanup()


@pytest_twisted.ensureDeferred
async def test_r3_watch_sees_every_revision_in_order_when_its_node_is_killed(js_cluster, make_client):
    node_a, *others = js_cluster.servers
    watching = await connected(make_client([node_a.url] + [s.url for s in others], randomize=False,
                                           initial_delay=0.05, max_delay=0.2))
    assert watching.connected_url == node_a.url
    js = JetStream(watching)
    kv = await create_key_value(js, "fleet", history=64, replicas=3)
    info = await js.stream_info("KV_fleet")
    assert len(info["cluster"].get("replicas", [])) == 2
    writer = KeyValue(await jetstream(make_client, [s.url for s in others], initial_delay=0.05, max_delay=0.2),
                      "fleet")
    await writer.put("leds", b"v0")
    seen = Seen()
    watcher = kv.watch("leds", seen, idle_heartbeat=30)
    await watcher.initial_done
    for i in range(1, 6):
        await put_retrying(writer, "leds", b"v%d" % i)
    await seen.wait_for(6)
    node_a.kill()
    for i in range(6, 16):
        await put_retrying(writer, "leds", b"v%d" % i)
    stored = []
    await wait_until(lambda: len(seen.entries) >= 16, 30, "16 watched entries")
    for _ in range(100):  # the stream as the cluster has it, once it answers again
        try:
            stored = await writer.history("leds")
            break
        except NatsError:
            await sleep(0.2)
    await wait_until(lambda: len(seen.entries) >= len(stored), 20, "every stored revision")
    await sleep(0.5)
    assert seen.revisions == [e.revision for e in stored]
    assert seen.values == [e.value for e in stored]
    assert [v for i, v in enumerate(seen.values) if v not in seen.values[:i]] == [b"v%d" % i for i in range(16)]
    assert watcher.consumers_created >= 2
    watcher.stop()


@pytest_twisted.ensureDeferred
async def test_watch_notices_within_2s_when_the_node_hosting_its_consumer_dies_and_its_own_lives(
        js_cluster, make_client):
    """The watcher's server stays up, so no reconnect tells it anything: only the missing
    heartbeats do. Its server is picked so that the consumer lives on another node."""
    by_name = {server.name: server for server in js_cluster.servers}
    writer = KeyValue(await jetstream(make_client, js_cluster.urls, initial_delay=0.05, max_delay=0.2), "fleet")
    await create_key_value(writer.js, "fleet", history=64, replicas=3)
    await writer.put("leds", b"v0")
    for own in js_cluster.servers * 3:  # the server picks the host: ask again until it picks another node
        kv = KeyValue(await jetstream(make_client, [own.url]), "fleet")
        seen = Seen()
        watcher = kv.watch("leds", seen)
        await watcher.initial_done
        info = await kv.js.api(f"CONSUMER.INFO.KV_fleet.{watcher.consumer_name}")
        host = info["cluster"]["leader"]
        if host != own.name:
            break
        watcher.stop()
    else:
        pytest.skip("in 9 tries every node placed the consumer on itself")
    name = watcher.consumer_name
    by_name[host].kill()
    await wait_until(lambda: watcher.consumer_name != name, 2, "the lost consumer noticed within 2 s")
    for i in range(1, 4):
        await put_retrying(writer, "leds", b"v%d" % i)
    await seen.wait_for(4, timeout=30)
    await sleep(0.5)
    assert seen.revisions == sorted(set(seen.revisions))  # in order, none twice
    assert [v for i, v in enumerate(seen.values) if v not in seen.values[:i]] == [b"v0", b"v1", b"v2", b"v3"]
    watcher.stop()


def test_a_watch_names_its_filter_in_the_create_subject_unless_it_is_a_pattern():
    assert create_consumer_verb("KV_b", "watch_1", "$KV.b.site.pis") == "CONSUMER.CREATE.KV_b.watch_1.$KV.b.site.pis"
    assert create_consumer_verb("KV_b", "watch_1", "$KV.b.site.*") == "CONSUMER.CREATE.KV_b.watch_1"
    assert create_consumer_verb("KV_b", "watch_1", "$KV.b.>") == "CONSUMER.CREATE.KV_b.watch_1"
