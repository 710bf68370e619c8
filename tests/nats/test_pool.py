"""pool.py in memory: server URLs, and the rotation through configured and discovered servers."""

from __future__ import annotations

import random

import pytest

from bridge.nats.pool import DEFAULT_PORT, Server, ServerPool, discovered_server, is_ip_address, parse_server_url
from tests.nats.inmemory import logged, texts


# --- pool.py: server URLs ---------------------------------------------------------------------


def test_parse_server_url_fills_in_scheme_and_port_and_keeps_credentials_out_of_the_url():
    assert DEFAULT_PORT == 4222
    server = parse_server_url("  demo.example.com  ")
    assert server == Server(url="nats://demo.example.com:4222", host="demo.example.com", port=4222, tls=False,
                            tls_name="demo.example.com", user=None, password=None, implicit=False)
    secure = parse_server_url("TLS://al%40ice:p%3Ass@h:4443")
    assert (secure.url, secure.host, secure.port, secure.tls, secure.tls_name) == ("tls://h:4443", "h", 4443, True, "h")
    assert (secure.user, secure.password) == ("al@ice", "p:ss")
    token = parse_server_url("nats://s3cret@h")
    assert (token.user, token.password) == ("s3cret", None)
    empty_password = parse_server_url("nats://u:@h")
    assert (empty_password.user, empty_password.password) == ("u", "")
    v6 = parse_server_url("nats://[fd00::1]:4223")
    assert (v6.url, v6.host, v6.tls_name) == ("nats://[fd00::1]:4223", "fd00::1", "fd00::1")


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://h:4222", "server URL 'http://h:4222': scheme must be nats:// or tls://"),
        ("nats://h:port", "server URL 'nats://h:port': bad port"),
        ("nats://h:99999", "server URL 'nats://h:99999': bad port"),
        ("nats://:4222", "server URL 'nats://:4222' has no host"),
    ],
)
def test_parse_server_url_refuses_what_it_cannot_dial(url, problem):
    with pytest.raises(ValueError) as caught:
        parse_server_url(url)
    assert str(caught.value) == problem


def test_is_ip_address_knows_both_families_and_not_names():
    assert is_ip_address("10.0.0.1") and is_ip_address("fd00::1")
    assert not is_ip_address("node1.example.com") and not is_ip_address("10.0.0")


def test_discovered_server_checks_tls_against_its_own_name_unless_announced_as_an_ip():
    """Guards `announced_by.tls_name if is_ip_address(server.host) else server.host` in
    pool.discovered_server (inverted, or always the seed's name, the names below swap)."""
    seed = parse_server_url("tls://bob:pw@seed.example.com:4222")
    by_name = discovered_server("node2.example.com:4223", seed)
    assert by_name.tls_name == "node2.example.com"
    assert (by_name.url, by_name.user, by_name.password, by_name.tls, by_name.implicit) == (
        "tls://node2.example.com:4223", "bob", "pw", True, True)
    by_ip = discovered_server("10.1.2.3:4224", seed)
    assert by_ip.tls_name == "seed.example.com"
    assert discovered_server("[fd00::3]:4225", seed).tls_name == "seed.example.com"
    token_seed = parse_server_url("nats://tok@10.0.0.1")
    learned = discovered_server("10.0.0.2:4222", token_seed)
    assert (learned.url, learned.user, learned.password, learned.tls, learned.tls_name) == (
        "nats://10.0.0.2:4222", "tok", None, False, "10.0.0.1")


# --- pool.py: the rotation --------------------------------------------------------------------


def test_pool_keeps_the_configured_order_without_duplicates_and_rotates():
    pool = ServerPool(["a:1", "nats://a:1", "b:2", " c:3 "], randomize=False, rng=random.Random(0))
    assert len(pool) == 3
    assert pool.urls == ["nats://a:1", "nats://b:2", "nats://c:3"]
    assert [pool.next().url for _ in range(4)] == ["nats://a:1", "nats://b:2", "nats://c:3", "nats://a:1"]
    assert pool.urls == ["nats://b:2", "nats://c:3", "nats://a:1"]  # each pick moves to the back


def test_pool_randomizes_with_the_rng_it_is_given():
    urls = [f"nats://h{i}:4222" for i in range(10)]
    expected = list(urls)
    random.Random(7).shuffle(expected)
    assert ServerPool(urls, randomize=True, rng=random.Random(7)).urls == expected != urls


def test_pool_needs_a_server():
    with pytest.raises(ValueError, match="^at least one server URL is needed$"):
        ServerPool([], randomize=False, rng=random.Random(0))


def test_pool_adds_announced_servers_ahead_of_the_current_one_with_its_credentials():
    pool = ServerPool(["nats://u:p@10.0.0.1:4222", "nats://10.0.0.9:4222"], randomize=False, rng=random.Random(0))
    current = pool.next()  # 10.0.0.1, now at the back
    added = pool.update_discovered(["10.0.0.1:4222", "10.0.0.2:4222", "10.0.0.9:4222", "10.0.0.3:4222"], current)
    assert added == ["nats://10.0.0.2:4222", "nats://10.0.0.3:4222"]  # the known ones are not added again
    assert pool.urls == ["nats://10.0.0.9:4222", "nats://10.0.0.2:4222", "nats://10.0.0.3:4222", "nats://10.0.0.1:4222"]
    learned = [pool.next() for _ in range(3)][1:]
    assert [(s.user, s.password, s.implicit) for s in learned] == [("u", "p", True)] * 2
    assert pool.update_discovered(["10.0.0.2:4222", "10.0.0.3:4222"], current) == []


def test_pool_appends_announced_servers_when_the_current_one_is_not_in_it():
    pool = ServerPool(["nats://10.0.0.1:4222"], randomize=False, rng=random.Random(0))
    stranger = parse_server_url("nats://10.0.0.7:4222")
    assert pool.update_discovered(["10.0.0.2:4222"], stranger) == ["nats://10.0.0.2:4222"]
    assert pool.urls == ["nats://10.0.0.1:4222", "nats://10.0.0.2:4222"]


def test_pool_forgets_learned_servers_the_cluster_no_longer_announces():
    """Guards `not s.implicit or s.url in announced_urls or s is current` in update_discovered."""
    pool = ServerPool(["nats://10.0.0.1:4222"], randomize=False, rng=random.Random(0))
    current = pool.next()
    pool.update_discovered(["10.0.0.2:4222", "10.0.0.3:4222"], current)
    assert pool.update_discovered(["10.0.0.3:4222"], current) == []
    assert pool.urls == ["nats://10.0.0.3:4222", "nats://10.0.0.1:4222"]
    # Configured servers stay however little is announced; so does a learned one we are on.
    on_learned = pool.next()
    assert on_learned.url == "nats://10.0.0.3:4222" and on_learned.implicit
    assert pool.update_discovered(["10.0.0.4:4222"], on_learned) == ["nats://10.0.0.4:4222"]
    assert pool.urls == ["nats://10.0.0.1:4222", "nats://10.0.0.4:4222", "nats://10.0.0.3:4222"]


def test_pool_skips_an_unparsable_connect_url_and_says_so():
    pool = ServerPool(["nats://10.0.0.1:4222"], randomize=False, rng=random.Random(0))
    current = pool.next()
    with logged() as events:
        added = pool.update_discovered(["10.0.0.2:notaport", "10.0.0.3:4222"], current)
    assert added == ["nats://10.0.0.3:4222"]
    assert texts(events) == ["ignoring unparsable connect_url '10.0.0.2:notaport'"]


def test_pool_shuffles_announced_servers_when_randomized():
    rng = random.Random(3)
    pool = ServerPool(["nats://10.0.0.1:4222"], randomize=True, rng=rng)
    current = pool.next()
    announced = [f"10.0.1.{i}:4222" for i in range(12)]
    expected = [f"nats://{a}" for a in announced]
    replay = random.Random(3)
    replay.shuffle(["x"])  # the pool's own shuffle of its one configured server
    replay.shuffle(expected)
    assert pool.update_discovered(announced, current) == expected
    assert pool.urls == expected + ["nats://10.0.0.1:4222"]
