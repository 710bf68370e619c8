"""The pure parts of the fleet config: cluster size for replicas, the cache file, the state directory."""

from __future__ import annotations

from pathlib import Path

from bridge.cli.deploy import cluster_size, replicas_for
from bridge.fleet.follow import ConfigCache, state_directory


def test_cluster_size_counts_connect_urls_with_the_answering_server_once():
    assert cluster_size({"host": "0.0.0.0", "port": 4222}) == 1
    assert cluster_size({"host": "127.0.0.1", "port": 1, "connect_urls": ["127.0.0.1:2", "127.0.0.1:3"]}) == 3
    assert cluster_size({"host": "127.0.0.1", "port": 1,
                         "connect_urls": ["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"]}) == 3
    assert replicas_for({"host": "h", "port": 1, "connect_urls": [f"h:{p}" for p in range(2, 7)]}) == 3
    assert replicas_for({}) == 1


def test_the_cache_keeps_one_file_per_bucket_and_key(tmp_path):
    one = ConfigCache(tmp_path / "new", "b", "site/pis")
    assert one.load() is None
    one.save(7, "version: 1\n")
    assert one.load() == (7, "version: 1\n")
    assert ConfigCache(tmp_path / "new", "b", "site/other").load() is None
    assert one.path.parent == tmp_path / "new" and "/" not in one.path.name


def test_a_damaged_cache_is_ignored(tmp_path):
    cache = ConfigCache(tmp_path, "b", "k")
    cache.path.write_text("{not json")
    assert cache.load() is None


def test_the_state_directory_is_systemds_else_the_users():
    assert state_directory({"STATE_DIRECTORY": "/var/lib/bridge:/other"}) == Path("/var/lib/bridge")
    assert state_directory({}) == Path.home() / ".local/state/bridge"
