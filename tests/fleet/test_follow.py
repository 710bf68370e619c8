"""The fleet config in memory: cluster size for replicas, the cache file, the state directory, the
boot config, and `ConfigFollower` on a fake key-value bucket and a fake bridge (no server): the
revisions it applies, refuses, confirms and takes from a bucket created again."""

from __future__ import annotations

import dataclasses
import json
import os
import stat
from datetime import datetime, timezone
from pathlib import Path

import pytest
from twisted.internet import defer, task
from twisted.logger import Logger, formatEvent
from twisted.python.failure import Failure

from bridge.nats.jetstream.streams import cluster_size, replicas_for
from bridge.config import load_config, load_stored
from bridge.config.redact import MASK
from bridge.config.sources import parse_source
from bridge.fleet import follow
from bridge.fleet.follow import (
    BUCKET_RETRY,
    ConfigCache,
    ConfigFollower,
    StoredRevision,
    boot_config,
    content_hash,
)
from bridge.nats import NatsError
from bridge.state import state_directory
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


def stored(revision, text="version: 1\n", stream="2026-01-01T00:00:00Z") -> StoredRevision:
    return StoredRevision.of(revision, text.encode(), stream)


def test_the_cache_keeps_one_file_per_bucket_and_key(tmp_path):
    one = ConfigCache(tmp_path / "new", "b", "site/pis")
    assert one.load() is None
    one.save(stored(7))
    assert one.load() == stored(7)
    assert ConfigCache(tmp_path / "new", "b", "site/other").load() is None
    assert one.path.parent == tmp_path / "new" and "/" not in one.path.name


def test_cache_file_names_cannot_collide_and_stay_readable(tmp_path):
    names = {ConfigCache(tmp_path, bucket, key).path.name
             for bucket, key in [("a-b", "c"), ("a", "b-c"), ("a", "b.c"), ("a--b", "c"), ("a", "-b-c")]}
    assert len(names) == 5
    assert ConfigCache(tmp_path, "configs", "site/pis").path.name == "fleet-configs.site%2Fpis.json"


def test_a_bucket_name_with_a_slash_still_names_one_file_in_the_state_directory(tmp_path):
    cache = ConfigCache(tmp_path, "a/b", "k")
    assert cache.path == tmp_path / "fleet-a%2Fb.k.json"


def test_the_cache_file_is_readable_by_its_owner_only_and_leaves_no_temporary_file(tmp_path):
    cache = ConfigCache(tmp_path, "b", "k")
    cache.save(stored(1))
    cache.save(stored(2))
    assert stat.S_IMODE(os.stat(cache.path).st_mode) == 0o600
    assert [path.name for path in tmp_path.iterdir()] == [cache.path.name]


def test_the_cache_is_synced_to_disk_before_and_after_the_rename(tmp_path, monkeypatch):
    calls = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(("fsync", os.path.isdir(f"/proc/self/fd/{fd}"))),
                                                  real_fsync(fd)))
    monkeypatch.setattr(os, "replace", lambda *args: (calls.append(("replace",)), real_replace(*args)))
    ConfigCache(tmp_path, "b", "k").save(stored(1))
    assert calls == [("fsync", False), ("replace",), ("fsync", True)]


def test_a_cache_whose_text_does_not_match_its_hash_is_ignored(tmp_path, events):
    cache = ConfigCache(tmp_path, "b", "k")
    cache.save(stored(3))
    document = json.loads(cache.path.read_text())
    cache.path.write_text(json.dumps({**document, "text": "version: 2\n"}))
    assert cache.load() is None
    assert texts(events) == [("warn", f"ignoring the config cache {cache.path}: ValueError: its text does not "
                                      "match its sha256")]


@pytest.mark.parametrize("content", ["{not json", "[]", '"text"', "\x00\xff", '{"bucket": "b", "key": "k"}',
                                     '{"bucket": "b", "key": "k", "revision": "x", "text": "", "sha256": "",'
                                     ' "stream_created": null}'])
def test_a_damaged_cache_is_ignored(tmp_path, content):
    cache = ConfigCache(tmp_path, "b", "k")
    cache.path.write_text(content, encoding="latin-1")
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


def check_here(text, bootstrap, source):
    """The follower's check in the test's process: the result at once."""
    return defer.maybeDeferred(load_stored, text, bootstrap, source)


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

    def watch(self, key, callback, on_stream):
        self.watcher = FakeWatcher()
        self.watching.append(key)
        self.callback = callback
        on_stream(STREAM)
        return self.watcher


STREAM = "2026-12-01T10:00:00.123456789Z"  # the bucket stream's `created`: its identity
NEW_STREAM = "2026-12-03T08:00:00.5Z"


def entry(revision, text=STORED, operation="PUT"):
    value = text if isinstance(text, bytes) else text.encode()
    return KvEntry("configs", "pis", value, revision, datetime.now(timezone.utc), operation)


def follower(bootstrap, tmp_path, booted_from=None, check=check_here):
    bridge = FakeBridge()
    cache = ConfigCache(tmp_path / "state", "configs", "pis")
    following = ConfigFollower(bridge, bootstrap, cache, booted_from, check=check)
    return following, bridge, cache


def live(following, stream=STREAM):
    """The follower as it is once its watcher read the stream."""
    following.on_stream(stream)
    return following


def test_an_empty_state_directory_variable_means_the_users():
    assert state_directory({"STATE_DIRECTORY": ""}) == Path.home() / ".local/state/bridge"


def test_the_cache_file_holds_bucket_key_revision_stream_text_and_hash(tmp_path):
    cache = ConfigCache(tmp_path, "b", "k")
    cache.save(stored(3, "text", STREAM))
    assert json.loads(cache.path.read_text()) == {"bucket": "b", "key": "k", "revision": 3, "text": "text",
                                                  "stream_created": STREAM, "sha256": content_hash(b"text")}


def test_the_cache_makes_the_state_directory_and_its_parents(tmp_path):
    cache = ConfigCache(tmp_path / "state" / "bridge", "b", "k")
    cache.save(stored(3))
    assert cache.load() == stored(3)


def test_a_cache_of_another_bucket_or_key_is_not_used(tmp_path):
    ConfigCache(tmp_path, "b", "k").save(stored(3))
    cache = ConfigCache(tmp_path, "b", "k")
    cache.bucket = "other"
    assert cache.load() is None
    cache = ConfigCache(tmp_path, "b", "k")
    cache.key = "other"
    assert cache.load() is None


def test_a_damaged_cache_is_ignored_with_a_warning(tmp_path, events):
    cache = ConfigCache(tmp_path, "b", "k")
    cache.path.write_text('{"bucket": "b", "key": "k"}')
    assert cache.load() is None
    assert texts(events) == [("warn", f"ignoring the config cache {cache.path}: KeyError: 'revision'")]


def test_a_cache_that_cannot_be_written_is_a_warning(tmp_path, events):
    (tmp_path / "file").write_text("")
    cache = ConfigCache(tmp_path / "file", "b", "k")
    cache.save(stored(3))
    [(level, text)] = texts(events)
    assert level == "warn"
    assert text.startswith(f"could not cache kv:b/k@3 in {cache.path}: [Errno ")


def test_boot_starts_from_the_bootstrap_without_a_cache(bootstrap, tmp_path, events):
    cache = ConfigCache(tmp_path, "configs", "pis")
    assert boot_config(bootstrap, cache) == (bootstrap, None)
    assert events == []


def test_boot_starts_from_a_valid_cached_revision(bootstrap, tmp_path, events):
    cache = ConfigCache(tmp_path, "configs", "pis")
    cache.save(stored(5, STORED))
    config, cached = boot_config(bootstrap, cache)
    assert cached == stored(5, STORED)
    assert [s.subject for s in config.subscriptions] == ["cmd.pi7"] and config.source == "kv:configs/pis@5"
    assert texts(events) == [("info", f"starting from the cached kv:configs/pis@5 ({cache.path})")]


def test_boot_ignores_an_invalid_cached_revision_saying_why(bootstrap, tmp_path, events):
    cache = ConfigCache(tmp_path, "configs", "pis")
    cache.save(stored(5, INVALID))
    assert boot_config(bootstrap, cache) == (bootstrap, None)
    [(level, text)] = texts(events)
    assert level == "error"
    assert text.startswith("the cached kv:configs/pis@5 is invalid, starting without it: kv:configs/pis@5:2:")
    assert [issue.split(": error: ")[0] for issue in text.split(": ", 1)[1].split("; ")] == [
        "kv:configs/pis@5:2:16", "kv:configs/pis@5:3:15"]


def test_boot_survives_a_cached_revision_that_makes_load_stored_raise_anything(bootstrap, tmp_path, events,
                                                                               monkeypatch):
    def broken(*_):
        raise RuntimeError("unexpected control character\nsecond line")
    monkeypatch.setattr(follow, "load_stored_at_start", broken)
    cache = ConfigCache(tmp_path, "configs", "pis")
    cache.save(stored(5, STORED))
    assert boot_config(bootstrap, cache) == (bootstrap, None)
    assert texts(events) == [("error", "the cached kv:configs/pis@5 is invalid, starting without it: "
                                       "RuntimeError: unexpected control character")]


def test_a_follower_reports_what_runs_before_any_revision(bootstrap, tmp_path):
    following, bridge, _ = follower(bootstrap, tmp_path)
    assert bridge.config_origin is following
    assert following.info() == {"key": "pis", "bucket": "configs", "revision": None, "error": None,
                                "refused_revision": None, "stale": False}
    assert following.metadata() == {"config": "kv:configs/pis"}


def test_a_valid_revision_is_applied_cached_and_reported(bootstrap, tmp_path, events):
    following, bridge, cache = follower(bootstrap, tmp_path)
    live(following).on_entry(entry(4))
    assert [[s.subject for s in config.subscriptions] for config in bridge.reloaded] == [["cmd.pi7"]]
    assert cache.load() == stored(4, STORED, STREAM)
    assert following.info() == {"key": "pis", "bucket": "configs", "revision": 4, "error": None,
                                "refused_revision": None, "stale": False}
    assert following.metadata() == {"config": "kv:configs/pis@4"}
    assert texts(events) == [("info", "applied kv:configs/pis@4")]


def test_an_invalid_revision_is_refused_and_the_running_one_kept(bootstrap, tmp_path, events):
    following, bridge, cache = follower(bootstrap, tmp_path)
    live(following).on_entry(entry(4, INVALID))
    assert bridge.reloaded == [] and cache.load() is None
    error = following.info()["error"]
    assert [issue.split(": error: ")[0] for issue in error.split("; ")] == ["kv:configs/pis@4:2:16", "kv:configs/pis@4:3:15"]
    assert following.info()["revision"] is None and following.info()["refused_revision"] == 4
    assert following.metadata() == {"config": "kv:configs/pis", "config_error": error,
                                    "config_refused": "kv:configs/pis@4"}
    assert texts(events) == [("error", f"refused kv:configs/pis@4, keeping no stored config: {error}")]
    following.on_entry(entry(5))
    following.on_entry(entry(6, INVALID))
    assert texts(events)[-1][1].startswith("refused kv:configs/pis@6, keeping kv:configs/pis@5: kv:configs/pis@6:2:")
    assert following.metadata()["config_refused"] == "kv:configs/pis@6"
    following.on_entry(entry(7))
    assert following.info()["error"] is None and following.info()["refused_revision"] is None
    assert following.metadata() == {"config": "kv:configs/pis@7"}


def test_a_revision_whose_check_fails_with_anything_is_refused_on_one_line(bootstrap, tmp_path, events):
    def broken(*_):
        return defer.fail(ValueError("special characters are not allowed\n  in \"<unicode string>\", position 3"))
    following, bridge, _ = follower(bootstrap, tmp_path, check=broken)
    live(following).on_entry(entry(4))
    assert bridge.reloaded == []
    assert following.info()["error"] == "ValueError: special characters are not allowed"
    assert following.info()["refused_revision"] == 4
    assert texts(events) == [("error", "refused kv:configs/pis@4, keeping no stored config: ValueError: special "
                                       "characters are not allowed")]


def test_a_check_that_fails_without_a_message_is_refused_by_the_errors_name(bootstrap, tmp_path):
    following, _, _ = follower(bootstrap, tmp_path, check=lambda *_: defer.fail(RuntimeError(" \n")))
    live(following).on_entry(entry(4))
    assert following.info()["error"] == "RuntimeError"


def test_every_refusal_message_masks_the_bootstraps_secrets(bootstrap, tmp_path, events):
    with_secret = dataclasses.replace(bootstrap, secrets=frozenset({"hunter22"}))
    following, _, _ = follower(with_secret, tmp_path, check=lambda *_: defer.fail(RuntimeError("no hunter22 here")))
    live(following).on_entry(entry(4))
    assert following.info()["error"] == f"RuntimeError: no {MASK} here"
    assert following.metadata()["config_error"] == f"RuntimeError: no {MASK} here"
    assert "hunter22" not in texts(events)[0][1]


def test_a_delete_keeps_the_running_config(bootstrap, tmp_path, events):
    following, bridge, _ = follower(bootstrap, tmp_path, booted_from=stored(3, STORED, STREAM))
    live(following).on_entry(entry(4, "", DEL))
    assert bridge.reloaded == [] and following.info()["revision"] == 3
    assert texts(events) == [("warn", "kv:configs/pis@4 deletes the stored config; keeping kv:configs/pis@3")]


def test_a_cached_revision_without_a_stream_identity_is_stale_until_the_live_stream_confirms_it(bootstrap, tmp_path):
    following, bridge, _ = follower(bootstrap, tmp_path, booted_from=stored(3, STORED, None))
    assert following.info()["stale"] is True
    following.on_stream(None)
    assert following.info()["stale"] is True
    following.on_entry(entry(3))
    assert bridge.reloaded == [] and following.info()["stale"] is False


def test_the_cached_revision_confirmed_by_the_live_stream_is_not_applied_again(bootstrap, tmp_path, events):
    following, bridge, _ = follower(bootstrap, tmp_path, booted_from=stored(3, STORED, STREAM))
    assert following.info()["stale"] is True and following.metadata()["config_stale"] == "true"
    live(following).on_entry(entry(3))
    assert bridge.reloaded == [] and events == []
    assert following.info()["stale"] is False and "config_stale" not in following.metadata()
    following.on_entry(entry(4))
    assert len(bridge.reloaded) == 1


def test_a_cached_revision_from_another_stream_is_stale_and_the_same_number_there_is_applied(bootstrap, tmp_path):
    following, bridge, cache = follower(bootstrap, tmp_path, booted_from=stored(3, STORED, STREAM))
    live(following, NEW_STREAM)
    assert following.info()["stale"] is True
    following.on_entry(entry(3))
    assert len(bridge.reloaded) == 1
    assert following.info()["stale"] is False and cache.load() == stored(3, STORED, NEW_STREAM)


def test_the_same_number_with_another_text_is_applied(bootstrap, tmp_path):
    following, bridge, _ = follower(bootstrap, tmp_path, booted_from=stored(3, STORED, STREAM))
    live(following).on_entry(entry(3, STORED + "publications: []\n"))
    assert len(bridge.reloaded) == 1 and following.info()["stale"] is False


def test_after_the_bucket_is_created_again_a_lower_revision_is_applied_and_until_then_stale(bootstrap, tmp_path,
                                                                                           events):
    following, bridge, _ = follower(bootstrap, tmp_path)
    live(following).on_entry(entry(5))
    following.on_stream(NEW_STREAM)
    assert following.info()["stale"] is True and following.info()["revision"] == 5
    assert texts(events)[-1] == ("warn", "the stream of bucket configs was created again; following pis from its "
                                         "last value")
    following.on_entry(entry(1))
    assert len(bridge.reloaded) == 2
    assert following.info()["revision"] == 1 and following.info()["stale"] is False


def test_revisions_are_checked_off_the_reactor_one_at_a_time_in_order(bootstrap, tmp_path):
    threads = []

    def on_a_thread(*args):
        threads.append((defer.Deferred(), load_stored, args))
        return threads[-1][0]

    following, bridge, _ = follower(bootstrap, tmp_path, check=on_a_thread)
    live(following)
    following.on_entry(entry(4))
    following.on_entry(entry(5, INVALID))
    following.on_entry(entry(6))
    assert len(threads) == 1 and bridge.reloaded == []  # 5 and 6 wait their turn

    def finish(index):
        done, function, args = threads[index]
        try:
            done.callback(function(*args))
        except Exception as error:  # noqa: BLE001 - as deferToThread hands it over
            done.errback(error)

    finish(0)
    assert following.info()["revision"] == 4 and len(threads) == 2
    finish(1)
    assert following.info()["refused_revision"] == 5 and len(threads) == 3
    finish(2)
    assert following.info()["revision"] == 6 and following.info()["error"] is None
    assert [config.source for config in bridge.reloaded] == ["kv:configs/pis@4", "kv:configs/pis@6"]


def test_a_revision_applied_is_reported_to_on_applied(bootstrap, tmp_path):
    applied = []
    following = ConfigFollower(FakeBridge(), bootstrap, ConfigCache(tmp_path, "configs", "pis"),
                               on_applied=applied.append, check=check_here)
    following.on_entry(entry(1))
    following.on_entry(entry(2, INVALID))
    assert applied == [1]


def test_entries_arriving_after_stop_are_not_applied(bootstrap, tmp_path):
    following, bridge, _ = follower(bootstrap, tmp_path)
    following.stop()
    following.on_entry(entry(1))
    assert bridge.reloaded == []


def test_entries_arriving_after_stop_are_not_even_checked(bootstrap, tmp_path, events):
    checked = []
    following, _, _ = follower(bootstrap, tmp_path, check=lambda *args: checked.append(args) or defer.succeed(None))
    following.stop()
    following.on_entry(entry(1))
    following.on_entry(entry(2, b"\xff"))
    assert checked == [] and following.info()["refused_revision"] is None and events == []


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
    following = ConfigFollower(FakeBridge(), bootstrap, ConfigCache(tmp_path, "configs", "pis"),
                               check=check_here)
    following.on_entry(entry(1))
    assert following.info()["revision"] == 1 and len(following.bridge.reloaded) == 1


def test_a_value_that_is_not_utf8_is_refused_not_raised(bootstrap, tmp_path, events):
    following, bridge, _ = follower(bootstrap, tmp_path)
    following.on_entry(entry(4, b"version: 1\nsubscriptions: \xff\n"))
    assert bridge.reloaded == [] and following.info()["refused_revision"] == 4
    assert following.info()["error"] == "kv:configs/pis@4: the stored value is not UTF-8 text (invalid start byte " \
                                        "at byte 26)"


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


def test_a_reload_that_raises_is_a_refusal_and_the_follower_goes_on(bootstrap, tmp_path, events):
    following, bridge, cache = follower(bootstrap, tmp_path)

    def broken(config):
        raise RuntimeError("reload broke")
    bridge.reload = broken
    live(following).on_entry(entry(4))
    assert following.info()["refused_revision"] == 4 and following.info()["revision"] is None
    assert cache.load() is None
    assert texts(events) == [("error", "refused kv:configs/pis@4, keeping no stored config: RuntimeError: reload "
                                       "broke")]
    del bridge.reload
    following.on_entry(entry(5))
    assert following.info()["revision"] == 5


def test_bridge_fleet_reads_the_key_and_no_revision_from_a_follower_with_none_applied(bootstrap, tmp_path):
    following, _, _ = follower(bootstrap, tmp_path)
    assert parse_source(following.metadata()["config"]) == {"file": None, "key": "configs/pis", "revision": None}
    live(following).on_entry(entry(4))
    assert parse_source(following.metadata()["config"]) == {"file": None, "key": "configs/pis", "revision": 4}
