"""The server pool, reconnect with resubscribe and buffered publishes, stale
connections, lame duck, authorization failover, and a cluster node killed with kill -9."""

from __future__ import annotations

import itertools
import random

import pytest
import pytest_twisted
from twisted.internet import task

from bridge.nats import AuthorizationError, ConnectionLostError, OutboundBufferFullError
from bridge.nats.pool import ServerPool
from bridge.testing.nats_server import NatsServer
from tests.harness.nats_client import Collector, connect_failure, connected, next_event
from tests.harness.reactor import running_reactor, wait_until


@pytest.fixture
def two_servers(nats_flavour):
    """Two unrelated servers: failing over between them needs no cluster."""
    servers = [nats_flavour.server(config="lame_duck_grace_period: 1s\nlame_duck_duration: 30s"), nats_flavour.server()]
    try:
        yield [server.start() for server in servers]
    finally:
        for server in servers:
            server.cleanup()


# --- 5. server pool --------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_connects_to_the_first_reachable_server_in_given_order(nats_cluster, make_client):
    unreachable = NatsServer()  # its port is free: nothing listens there
    client = make_client([unreachable.url, *nats_cluster.urls[1:]], randomize=False)
    await connected(client)
    assert client.connected_url == nats_cluster.urls[1]
    unreachable.cleanup()


def test_pool_order_is_randomized_unless_disabled():
    urls = [f"nats://127.0.0.1:{4222 + i}" for i in range(5)]
    firsts = {ServerPool(urls, randomize=True, rng=random.Random(seed)).urls[0] for seed in range(30)}
    assert len(firsts) > 1
    assert ServerPool(urls, randomize=False, rng=random.Random(0)).urls == urls


def test_pool_rotates_and_keeps_learned_servers_current():
    pool = ServerPool(["nats://10.0.0.1:4222"], randomize=False, rng=random.Random(0))
    current = pool.next()
    assert pool.update_discovered(["10.0.0.2:4222", "10.0.0.3:4222"], current) == [
        "nats://10.0.0.2:4222",
        "nats://10.0.0.3:4222",
    ]
    assert pool.update_discovered(["10.0.0.3:4222"], current) == []
    assert pool.urls == ["nats://10.0.0.3:4222", "nats://10.0.0.1:4222"]  # configured ones are never dropped
    assert [pool.next().url for _ in range(3)] == ["nats://10.0.0.3:4222", "nats://10.0.0.1:4222", "nats://10.0.0.3:4222"]


@pytest_twisted.ensureDeferred
async def test_servers_announced_by_the_cluster_join_the_pool(nats_cluster, make_client):
    client = make_client([nats_cluster.urls[0]])
    await connected(client)
    await wait_until(lambda: set(client.servers) == set(nats_cluster.urls), what="whole cluster in the pool")
    assert sorted(client.servers) == sorted(nats_cluster.urls)  # each once: the configured one not repeated


@pytest_twisted.ensureDeferred
async def test_initial_connect_keeps_trying_until_a_server_appears(nats_flavour, make_client):
    server = nats_flavour.server()  # port chosen, process not started yet
    try:
        client = make_client([server.url])
        connecting = client.connect()
        await task.deferLater(running_reactor(), 0.4)  # a few refused attempts with backoff
        assert not connecting.called
        server.start()
        assert await connected(client, connecting=connecting) is client
        assert client.connected_url == server.url
    finally:
        server.cleanup()


@pytest_twisted.ensureDeferred
async def test_gives_up_after_max_attempts_when_asked_to(make_client):
    unreachable = [NatsServer(), NatsServer()]
    client = make_client([s.url for s in unreachable], max_attempts=3)
    closed = next_event(client, "closed")
    assert "refused" in str(await connect_failure(client))
    await closed
    assert client.is_closed
    for server in unreachable:
        server.cleanup()


@pytest_twisted.ensureDeferred
async def test_reconnect_resubscribes_then_flushes_buffered_publishes_in_order(nats_server, make_client):
    client = make_client([nats_server.url])
    await connected(client)
    ordered, limited = Collector(), Collector()
    client.subscribe("ordered", ordered)
    client.subscribe("limited", limited, max_msgs=5)
    client.publish("limited", b"0")
    client.publish("limited", b"1")
    await limited.wait_for(2)

    disconnected = next_event(client, "disconnected")
    nats_server.stop()
    await disconnected
    assert not client.is_connected
    for i in range(100):
        client.publish("ordered", b"%d" % i)
    for i in range(2, 8):
        client.publish("limited", b"%d" % i)
    assert client.buffered_bytes > 0

    reconnected = next_event(client, "reconnected")
    nats_server.start()
    await reconnected
    await ordered.wait_for(100)
    await client.flush()
    assert ordered.data == [b"%d" % i for i in range(100)]
    assert limited.data == [b"0", b"1", b"2", b"3", b"4"]  # the remaining 3 of max_msgs=5, no more
    assert client.buffered_bytes == 0
    assert client.stats.reconnects == 1


@pytest_twisted.ensureDeferred
async def test_reconnect_buffer_is_bounded_and_overflow_raises(nats_server, make_client):
    client = make_client([nats_server.url], buffer_size=2000)
    await connected(client)
    collector = Collector()
    client.subscribe("buffered", collector)
    await client.flush()
    disconnected = next_event(client, "disconnected")
    nats_server.stop()
    await disconnected
    accepted = 0
    with pytest.raises(OutboundBufferFullError, match="not queued"):
        for i in itertools.count():
            client.publish("buffered", b"%03d" % i + b"." * 97)
            accepted += 1
    assert 0 < accepted < 20
    reconnected = next_event(client, "reconnected")
    nats_server.start()
    await reconnected
    await collector.wait_for(accepted)
    await client.flush()
    assert [m.data[:3] for m in collector.messages] == [b"%03d" % i for i in range(accepted)]


@pytest_twisted.ensureDeferred
async def test_flush_while_disconnected_completes_after_reconnect(nats_server, make_client):
    client = make_client([nats_server.url])
    await connected(client)
    disconnected = next_event(client, "disconnected")
    nats_server.stop()
    await disconnected
    flushed = client.flush(timeout=10)
    nats_server.start()
    await flushed
    assert client.is_connected


# --- 8. authorization violation → next server ------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_authorization_violation_moves_on_to_the_next_server(nats_flavour, nats_server, make_client):
    with nats_flavour.server(config='authorization { user: "someone", password: "else" }') as guarded:
        client = make_client([guarded.url, nats_server.url], randomize=False)
        errors: list = []
        client.add_listener("error", errors.append)
        await connected(client)
        assert client.connected_url == nats_server.url
        assert any(isinstance(e, AuthorizationError) and e.server == guarded.url for e in errors)


# --- 6. stale connection ---------------------------------------------------------------------


def unanswered_pings(transcript: list[tuple[bool, bytes]]) -> int:
    """PINGs the client sent after the last PONG the server got back to it."""
    last_pong = max((i for i, (from_client, data) in enumerate(transcript) if not from_client and b"PONG" in data),
                    default=-1)
    return sum(data.count(b"PING\r\n") for from_client, data in transcript[last_pong + 1:] if from_client)


@pytest_twisted.ensureDeferred
async def test_frozen_server_is_detected_by_pings_and_left(two_servers, proxy_to, make_client):
    frozen, healthy = two_servers
    watched = proxy_to(frozen)  # to count the PINGs that go unanswered
    client = make_client([watched.url, healthy.url], randomize=False, ping_interval=0.3)
    await connected(client)
    assert client.connected_url == watched.url
    collector = Collector()
    client.subscribe("after.stale", collector)
    await client.flush()
    disconnected = next_event(client, "disconnected")
    reconnected = next_event(client, "reconnected")
    frozen.freeze()
    url, reason = await disconnected
    assert url == watched.url
    assert isinstance(reason, ConnectionLostError) and "stale" in str(reason)
    assert unanswered_pings(watched.transcript) == 2  # max_outstanding_pings
    (new_url,) = await reconnected
    assert new_url == healthy.url == client.connected_url
    await client.flush()  # our SUB has reached the new server
    other = make_client([healthy.url])
    await connected(other)
    other.publish("after.stale", b"resumed")
    await collector.wait_for(1)


# --- 7. lame duck ----------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_lame_duck_server_keeps_serving_until_it_closes_us_then_subscriptions_move(two_servers, make_client):
    retiring, staying = two_servers
    client = make_client([retiring.url, staying.url], randomize=False)
    await connected(client)
    assert client.connected_url == retiring.url
    collector = Collector()
    client.subscribe("after.ldm", collector)
    await client.flush()
    pending_flush = client.flush(timeout=5)
    lame = next_event(client, "lame_duck")
    reconnected = next_event(client, "reconnected")
    retiring.lame_duck()
    assert await lame == (retiring.url,)
    await pending_flush
    # The notice alone moves nobody: the server spreads the closing of its clients over its
    # lame duck duration, and a flush on the still-healthy connection succeeds.
    await client.flush()
    assert client.connected_url == retiring.url
    await reconnected  # the server closed us after its grace period
    assert client.connected_url == staying.url
    await client.flush()  # our SUB has reached the new server
    other = make_client([staying.url])
    await connected(other)
    other.publish("after.ldm", b"moved")
    await collector.wait_for(1)


# --- 9. cluster: kill -9 under load ----------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_killed_node_subscription_resumes_and_buffered_publishes_all_arrive(nats_cluster, make_client):
    doomed, publisher_node, watcher_node = nats_cluster.servers
    ours = make_client(nats_cluster.urls, randomize=False)
    await connected(ours)
    assert ours.connected_url == doomed.url
    feed = Collector()
    ours.subscribe("cluster.feed", feed)
    await ours.flush()

    watcher = make_client([watcher_node.url])
    await connected(watcher)
    watched = Collector()
    watcher.subscribe("cluster.ours", watched)
    await watcher.flush()
    await wait_until(lambda: (ours.publish("cluster.ours", b"probe"), len(watched.messages))[1] > 0,
                     what="route interest from the watcher's node")

    publisher = make_client([publisher_node.url])
    await connected(publisher)
    sequence = itertools.count()
    feeding = task.LoopingCall(lambda: publisher.publish("cluster.feed", b"%d" % next(sequence)))
    feeding.clock = running_reactor()
    feeding.start(0.005)
    try:
        await feed.wait_for(5)

        sent_while_down = [b"down-%d" % i for i in range(50)]

        def publish_while_disconnected(url, reason):
            assert not ours.is_connected
            for payload in sent_while_down:
                ours.publish("cluster.ours", payload)

        ours.add_listener("disconnected", publish_while_disconnected)
        reconnected = next_event(ours, "reconnected")
        doomed.kill()
        await reconnected
        ours.remove_listener("disconnected", publish_while_disconnected)
        assert ours.connected_url in (publisher_node.url, watcher_node.url)

        received_before = len(feed.messages)
        await feed.wait_for(received_before + 20)  # the subscription lives on at the new node
        await wait_until(lambda: sum(d.startswith(b"down-") for d in watched.data) == 50, what="buffered publishes")
        assert [d for d in watched.data if d.startswith(b"down-")] == sent_while_down
    finally:
        feeding.stop()
