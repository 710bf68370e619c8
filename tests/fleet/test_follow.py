"""The fleet config in memory: cluster size for replicas, the cache file, the state directory, the
boot config, and `ConfigFollower` on a fake key-value bucket and a fake bridge (no server)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
from twisted.internet import defer, task
from twisted.logger import Logger, formatEvent
from twisted.python.failure import Failure

from bridge.cli.deploy import cluster_size, replicas_for
from bridge.config import load_config
from bridge.fleet import follow
from bridge.fleet.follow import BUCKET_RETRY, ConfigCache, ConfigFollower, boot_config, state_directory
from bridge.nats import NatsError
from bridge.nats.jetstream.kv import DEL, KvEntry

BOOTSTRAP = """\
version: 1
fleet:
  key: pis
  bucket: configs
device:
  id: pi7
  driver: memory
nats:
  servers: [nats://127.0.0.1:4222]
"""

STORED = """\
version: 1
subscriptions:
  - subject: cmd.${device.id}
    action: clear
"""

INVALID = "version: 1\nsubscriptions: 7\npublications: 8\n"


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


@pytest.fixture
def events(monkeypatch):
    """follow's log lines as (level, text)."""
    seen = []
    monkeypatch.setattr(follow, "log", Logger(namespace="bridge", observer=seen.append))
    return seen


def texts(events):
    return [(event["log_level"].name, formatEvent(event)) for event in events]


@pytest.fixture
def bootstrap(tmp_path):
    path = tmp_path / "bridge.yml"
    path.write_text(BOOTSTRAP)
    return load_config(path)


class FakeBridge:
    def __init__(self):
        self.client = object()
        self.reactor = task.Clock()
        self.reloaded = []
        self.config_origin = None

    def reload(self, config):
        self.reloaded.append(config)


class FakeWatcher:
    def __init__(self):
        self.initial_done = defer.Deferred()
        self.stopped = False

    def stop(self):
        self.stopped = True


def use_bucket(monkeypatch, bucket) -> None:
    """The follower reaches JetStream through `bucket` instead of a server."""
    monkeypatch.setattr(follow, "JetStream", bucket)
    monkeypatch.setattr(follow, "key_value", lambda js, name: js.key_value(name))


class FakeBucket:
    """Answers `key_value` with NatsError `missing` times, then with itself; `broken` raises it."""

    def __init__(self, missing=0, broken=None):
        self.missing = missing
        self.broken = broken
        self.asked = []
        self.watching = []
        self.clients = []

    def __call__(self, client):  # stands in for JetStream(client)
        self.clients.append(client)
        return self

    async def key_value(self, bucket):
        self.asked.append(bucket)
        if self.broken is not None:
            raise self.broken
        if self.missing:
            self.missing -= 1
            raise NatsError("bucket not found")
        return self

    def watch(self, key, callback):
        self.watcher = FakeWatcher()
        self.watching.append(key)
        self.callback = callback
        return self.watcher


def entry(revision, text=STORED, operation="PUT"):
    value = text if isinstance(text, bytes) else text.encode()
    return KvEntry("configs", "pis", value, revision, datetime.now(timezone.utc), operation)


def follower(bootstrap, tmp_path, applied_revision=0):
    bridge = FakeBridge()
    cache = ConfigCache(tmp_path / "state", "configs", "pis")
    return ConfigFollower(bridge, bootstrap, cache, applied_revision), bridge, cache


def test_an_empty_state_directory_variable_means_the_users():
    assert state_directory({"STATE_DIRECTORY": ""}) == Path.home() / ".local/state/bridge"


def test_the_cache_file_holds_bucket_key_revision_and_text_and_nothing_else(tmp_path):
    cache = ConfigCache(tmp_path, "b", "k")
    cache.save(3, "text")
    assert json.loads(cache.path.read_text()) == {"bucket": "b", "key": "k", "revision": 3, "text": "text"}
    assert [path.name for path in tmp_path.iterdir()] == [cache.path.name]


def test_the_cache_makes_the_state_directory_and_its_parents(tmp_path):
    cache = ConfigCache(tmp_path / "state" / "bridge", "b", "k")
    cache.save(3, "text")
    assert cache.load() == (3, "text")


def test_a_cache_of_another_bucket_or_key_is_not_used(tmp_path):
    ConfigCache(tmp_path, "b", "k").save(3, "text")
    cache = ConfigCache(tmp_path, "b", "k")
    cache.bucket = "other"
    assert cache.load() is None
    cache = ConfigCache(tmp_path, "b", "k")
    cache.key = "other"
    assert cache.load() is None


def test_a_damaged_cache_is_ignored_with_a_warning(tmp_path, events):
    cache = ConfigCache(tmp_path, "b", "k")
    cache.path.write_text('{"bucket": "b"}')
    assert cache.load() is None
    assert texts(events) == [("warn", f"ignoring the config cache {cache.path}: 'key'")]


def test_a_cache_that_cannot_be_written_is_a_warning(tmp_path, events):
    (tmp_path / "file").write_text("")
    cache = ConfigCache(tmp_path / "file", "b", "k")
    cache.save(3, "text")
    [(level, text)] = texts(events)
    assert level == "warn"
    assert text.startswith(f"could not cache kv:b/k@3 in {cache.path}: [Errno ")


def test_boot_starts_from_the_bootstrap_without_a_cache(bootstrap, tmp_path, events):
    cache = ConfigCache(tmp_path, "configs", "pis")
    assert boot_config(bootstrap, cache) == (bootstrap, 0)
    assert events == []


def test_boot_starts_from_a_valid_cached_revision(bootstrap, tmp_path, events):
    cache = ConfigCache(tmp_path, "configs", "pis")
    cache.save(5, STORED)
    config, revision = boot_config(bootstrap, cache)
    assert revision == 5
    assert [s.subject for s in config.subscriptions] == ["cmd.pi7"] and config.source == "kv:configs/pis@5"
    assert texts(events) == [("info", f"starting from the cached kv:configs/pis@5 ({cache.path})")]


def test_boot_ignores_an_invalid_cached_revision_saying_why(bootstrap, tmp_path, events):
    cache = ConfigCache(tmp_path, "configs", "pis")
    cache.save(5, INVALID)
    assert boot_config(bootstrap, cache) == (bootstrap, 0)
    [(level, text)] = texts(events)
    assert level == "error"
    assert text.startswith("the cached kv:configs/pis@5 is invalid, starting without it: kv:configs/pis@5:2:")
    assert [issue.split(": error: ")[0] for issue in text.split(": ", 1)[1].split("; ")] == [
        "kv:configs/pis@5:2:16", "kv:configs/pis@5:3:15"]


def test_a_follower_reports_what_runs_before_any_revision(bootstrap, tmp_path):
    following, bridge, _ = follower(bootstrap, tmp_path)
    assert bridge.config_origin is following
    assert following.info() == {"key": "pis", "bucket": "configs", "revision": None, "error": None}
    assert following.metadata() == {"config": "kv:configs/pis@0"}


def test_a_valid_revision_is_applied_cached_and_reported(bootstrap, tmp_path, events):
    following, bridge, cache = follower(bootstrap, tmp_path)
    following.on_entry(entry(4))
    assert [[s.subject for s in config.subscriptions] for config in bridge.reloaded] == [["cmd.pi7"]]
    assert cache.load() == (4, STORED)
    assert following.info() == {"key": "pis", "bucket": "configs", "revision": 4, "error": None}
    assert following.metadata() == {"config": "kv:configs/pis@4"}
    assert texts(events) == [("info", "applied kv:configs/pis@4")]


def test_an_invalid_revision_is_refused_and_the_running_one_kept(bootstrap, tmp_path, events):
    following, bridge, cache = follower(bootstrap, tmp_path)
    following.on_entry(entry(4, INVALID))
    assert bridge.reloaded == [] and cache.load() is None
    error = following.info()["error"]
    assert [issue.split(": error: ")[0] for issue in error.split("; ")] == ["kv:configs/pis@4:2:16", "kv:configs/pis@4:3:15"]
    assert following.info()["revision"] is None
    assert following.metadata() == {"config": "kv:configs/pis@0", "config_error": error}
    assert texts(events) == [("error", f"refused kv:configs/pis@4, keeping no stored config: {error}")]
    following.on_entry(entry(5))
    following.on_entry(entry(6, INVALID))
    assert texts(events)[-1][1].startswith("refused kv:configs/pis@6, keeping kv:configs/pis@5: kv:configs/pis@6:2:")
    following.on_entry(entry(7))
    assert following.info()["error"] is None and "config_error" not in following.metadata()


def test_a_delete_keeps_the_running_config(bootstrap, tmp_path, events):
    following, bridge, _ = follower(bootstrap, tmp_path, applied_revision=3)
    following.on_entry(entry(4, "", DEL))
    assert bridge.reloaded == [] and following.info()["revision"] == 3
    assert texts(events) == [("warn", "kv:configs/pis@4 deletes the stored config; keeping kv:configs/pis@3")]


def test_the_revision_started_from_the_cache_is_not_applied_again(bootstrap, tmp_path, events):
    following, bridge, _ = follower(bootstrap, tmp_path, applied_revision=3)
    following.on_entry(entry(3))
    assert bridge.reloaded == [] and events == []
    following.on_entry(entry(4))
    assert len(bridge.reloaded) == 1


def test_following_waits_for_the_bucket_then_watches_the_key(bootstrap, tmp_path, events, monkeypatch):
    bucket = FakeBucket(missing=2)
    use_bucket(monkeypatch, bucket)
    following, bridge, _ = follower(bootstrap, tmp_path)
    done = following.start()
    assert bucket.asked == ["configs"] and bucket.watching == []
    assert texts(events) == [("warn", "waiting for configs/pis: no bucket yet (bucket not found) (bridge deploy "
                                      "stores it); the running config stays")]
    bridge.reactor.advance(BUCKET_RETRY - 0.1)
    assert len(bucket.asked) == 1
    bridge.reactor.advance(0.1)
    bridge.reactor.advance(BUCKET_RETRY)
    assert bucket.asked == ["configs"] * 3 and bucket.watching == ["pis"]
    bucket.callback(entry(2))
    bucket.watcher.initial_done.callback(None)
    assert following.info()["revision"] == 2 and len(events) == 2  # waiting logged once; applied
    assert done.called
    following.stop()
    assert bucket.watcher.stopped


def test_a_key_without_a_value_is_waited_for_once(bootstrap, tmp_path, events, monkeypatch):
    bucket = FakeBucket()
    use_bucket(monkeypatch, bucket)
    following, _, _ = follower(bootstrap, tmp_path)
    done = following.start()
    bucket.watcher.initial_done.callback(None)
    assert done.called
    assert texts(events) == [("warn", "waiting for configs/pis: it has no value yet (bridge deploy stores it); "
                                      "the running config stays")]


def test_stopping_while_waiting_for_the_bucket_ends_following(bootstrap, tmp_path, monkeypatch):
    bucket = FakeBucket(missing=1)
    use_bucket(monkeypatch, bucket)
    following, bridge, _ = follower(bootstrap, tmp_path)
    done = following.start()
    following.stop()
    bridge.reactor.advance(BUCKET_RETRY)
    assert done.called and bucket.asked == ["configs"] and bucket.watching == []
    assert bridge.reactor.getDelayedCalls() == []


def test_stopping_before_the_first_values_ends_following_quietly(bootstrap, tmp_path, events, monkeypatch):
    bucket = FakeBucket()
    use_bucket(monkeypatch, bucket)
    following, _, _ = follower(bootstrap, tmp_path)
    done = following.start()
    bucket.watcher.initial_done.cancel()  # what KeyWatcher.stop does before the first values
    results = []
    done.addBoth(results.append)
    assert not isinstance(results[0], Failure) and events == []


def test_a_failure_while_following_is_logged_once(bootstrap, tmp_path, events, monkeypatch):
    bucket = FakeBucket()
    use_bucket(monkeypatch, bucket)
    following, _, _ = follower(bootstrap, tmp_path)
    done = following.start()
    bucket.watcher.initial_done.errback(RuntimeError("watch broke"))
    results = []
    done.addBoth(results.append)
    assert results == [None]
    assert texts(events) == [("critical", "following configs/pis failed")]
    assert events[0]["log_failure"].check(RuntimeError)


def test_a_follower_without_a_cached_revision_applies_the_first_one(bootstrap, tmp_path):
    following = ConfigFollower(FakeBridge(), bootstrap, ConfigCache(tmp_path, "configs", "pis"))
    following.on_entry(entry(1))
    assert following.info()["revision"] == 1 and len(following.bridge.reloaded) == 1


def test_a_value_that_is_not_utf8_is_refused_not_raised(bootstrap, tmp_path, events):
    following, bridge, _ = follower(bootstrap, tmp_path)
    following.on_entry(entry(4, b"version: 1\nsubscriptions: \xff\n"))
    assert bridge.reloaded == [] and "\ufffd" in following.info()["error"]


def test_the_bucket_is_looked_up_through_the_bridges_client(bootstrap, tmp_path, monkeypatch):
    bucket = FakeBucket()
    use_bucket(monkeypatch, bucket)
    following, bridge, _ = follower(bootstrap, tmp_path)
    following.start()
    assert bucket.clients == [bridge.client]


def test_a_bucket_lookup_that_fails_at_once_is_logged(bootstrap, tmp_path, events, monkeypatch):
    use_bucket(monkeypatch, FakeBucket(broken=RuntimeError("no JetStream")))
    following, _, _ = follower(bootstrap, tmp_path)
    results = []
    following.start().addBoth(results.append)
    assert results == [None]
    assert texts(events) == [("critical", "following configs/pis failed")]
    assert events[0]["log_failure"].check(RuntimeError)
