"""A bridge with a `fleet:` bootstrap file follows its stored config in a NATS key-value bucket.

At boot the bridge starts from the last applied revision cached on disk (if any), so it comes up
with its subscriptions even when no server is reachable; that revision counts as `stale` until the
live bucket stream confirms it. Once connected, `ConfigFollower` watches the key. Each revision is
checked for this device (`load_stored`, in a short-lived child process: bridge/config/isolated.py) and handled in the order it came: a valid one
is applied with the same atomic `Bridge.reload` as a SIGHUP and cached; an invalid one is refused,
logged on one line and reported (`bridge.ID.info` `config`, `$SRV` metadata `config_error` and
`config_refused`) while the previous revision keeps running.

A revision is named by its stream too: the bucket's stream `created` time is its identity, so a
bucket deleted and created again (its revisions counting from 1 again) is followed from its last
value, whatever that value's number.

    kv watch -> load_stored (child process) -> Bridge.reload -> ConfigCache.save
"""

from __future__ import annotations

import hashlib
import json
from collections import deque
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable
from urllib.parse import quote

from twisted.internet import defer, task
from twisted.logger import Logger

from bridge.config.errors import ConfigError
from bridge.config.isolated import load_stored_at_start, load_stored_isolated
from bridge.config.model import BridgeConfig
from bridge.config.redact import mask_secrets
from bridge.config.sources import kv_key, kv_source
from bridge.nats import NatsError
from bridge.nats.jetstream.kv import PUT, key_value
from bridge.nats.jetstream.streams import JetStream
from bridge.state import write_private_file

log = Logger(namespace="bridge")

BUCKET_RETRY = 2.0  # seconds between looks for a bucket that does not exist yet


def masked(message: str, bootstrap: BridgeConfig) -> str:
    """Every refusal message passes here before it is logged or reported: the one place where
    values that came from the Pi's files or environment are hidden."""
    return mask_secrets(message, bootstrap)


def content_hash(value: bytes) -> str:
    return hashlib.sha256(value).hexdigest()


@dataclass(frozen=True)
class StoredRevision:
    """One revision of the followed key as this bridge knows it: which stream it came from (the
    stream's `created` time), its number there, its text and the sha256 of its bytes."""

    revision: int
    text: str
    stream_created: str | None
    sha256: str

    @classmethod
    def of(cls, revision: int, value: bytes, stream_created: str | None) -> "StoredRevision":
        return cls(revision, value.decode("utf-8"), stream_created, content_hash(value))


class ConfigCache:
    """The last applied revision of one key, as a small JSON file only its owner can read."""

    def __init__(self, directory: Path, bucket: str, key: str):
        self.bucket = bucket
        self.key = key
        # A bucket name has no '.' (and quoting keeps it so): the first '.' ends it.
        self.path = Path(directory) / f"fleet-{quote(bucket, safe='')}.{quote(key, safe='')}.json"

    def load(self) -> StoredRevision | None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if data["bucket"] != self.bucket or data["key"] != self.key:
                return None
            cached = StoredRevision(int(data["revision"]), str(data["text"]), data["stream_created"],
                                    str(data["sha256"]))
            if content_hash(cached.text.encode("utf-8")) != cached.sha256:
                raise ValueError("its text does not match its sha256")
            return cached
        except FileNotFoundError:
            return None
        except Exception as error:  # noqa: BLE001 - whatever is in the file, the Pi boots from its bootstrap
            log.warn("ignoring the config cache {path}: {error}", path=str(self.path), error=one_line(error))
        return None

    def save(self, stored: StoredRevision) -> None:
        """After a power cut the cache is the old revision or the new one, never empty."""
        document = {"bucket": self.bucket, "key": self.key, **asdict(stored)}
        try:
            write_private_file(self.path, json.dumps(document).encode("utf-8"))
        except OSError as error:
            log.warn("could not cache {source} in {path}: {error}",
                     source=kv_source(self.bucket, self.key, stored.revision), path=str(self.path), error=str(error))


def one_line(error: BaseException) -> str:
    """An exception as one sentence: a ConfigError's issues joined, anything else its first line."""
    if isinstance(error, ConfigError):
        return "; ".join(str(issue) for issue in error.errors)
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


def boot_config(bootstrap: BridgeConfig, cache: ConfigCache) -> tuple[BridgeConfig, StoredRevision | None]:
    """What to start with: the cached revision if it is still valid here, else the bootstrap alone
    (no subscriptions or publications until the key's value arrives). (config, the cached revision or None)."""
    cached = cache.load()
    if cached is None:
        return bootstrap, None
    source = kv_source(cache.bucket, cache.key, cached.revision)
    try:
        config = load_stored_at_start(cached.text, bootstrap, source)
    except Exception as error:  # noqa: BLE001 - a cache that cannot be used must not stop the Pi from booting
        log.error("the cached {source} is invalid, starting without it: {issues}", source=source,
                  issues=masked(one_line(error), bootstrap))
        return bootstrap, None
    log.info("starting from the cached {source} ({path})", source=source, path=str(cache.path))
    return config, cached


class ConfigFollower:
    """Watches the bootstrap's fleet key once the bridge runs and applies each valid revision.

    `booted_from`: the cached revision the bridge started with. `on_applied(revision)` is called
    after each revision applied. `check(text, bootstrap, source)` validates a revision off the
    reactor and fires with its config (default: in a child process, so the loader never stays resident).
    """

    def __init__(self, bridge, bootstrap: BridgeConfig, cache: ConfigCache, booted_from: StoredRevision | None = None,
                 *, on_applied: Callable[[int], object] | None = None,
                 check: Callable[[str, BridgeConfig, str], defer.Deferred] = load_stored_isolated):
        self.bridge = bridge
        self.bootstrap = bootstrap
        self.bucket = bootstrap.fleet.bucket
        self.key = bootstrap.fleet.key
        self.cache = cache
        self.applied: StoredRevision | None = booted_from
        self.confirmed = booted_from is None  # the running revision was seen in the live stream
        self.live_stream: str | None = None  # the `created` time of the bucket's stream as the watcher sees it
        self.error: str | None = None  # why the latest revision was refused
        self.refused_revision: int | None = None
        self.watcher = None
        self.on_applied = on_applied
        self._check = check
        self._queue: deque = deque()
        self._handling = False
        self._stopped = False
        self._waiting_logged = False
        bridge.config_origin = self

    # -- what the bridge reports ---------------------------------------------------------------

    @property
    def applied_revision(self) -> int | None:
        return None if self.applied is None else self.applied.revision

    @property
    def source(self) -> str:
        """`kv:BUCKET/KEY@REV` of the running revision; `kv:BUCKET/KEY` while none is applied."""
        if self.applied is None:
            return kv_key(self.bucket, self.key)
        return kv_source(self.bucket, self.key, self.applied.revision)

    @property
    def stale(self) -> bool:
        """The running revision came from the disk cache and the live stream has not confirmed it."""
        if self.applied is None:
            return False
        return not self.confirmed or self.live_stream != self.applied.stream_created

    def info(self) -> dict:
        """`bridge.ID.info`'s `config`: the revision running (None: none yet) and why the latest was refused."""
        return {"key": self.key, "bucket": self.bucket, "revision": self.applied_revision, "error": self.error,
                "refused_revision": self.refused_revision, "stale": self.stale}

    def metadata(self) -> dict:
        """The same for `$SRV` metadata (strings only)."""
        metadata = {"config": self.source}
        if self.error is not None:
            metadata["config_error"] = self.error
            metadata["config_refused"] = kv_source(self.bucket, self.key, self.refused_revision)
        if self.stale:
            metadata["config_stale"] = "true"
        return metadata

    # -- following the key ---------------------------------------------------------------------

    def start(self) -> defer.Deferred:
        following = defer.ensureDeferred(self._follow())
        following.addErrback(lambda failure: failure.trap(defer.CancelledError))  # stopped before the first values
        following.addErrback(lambda failure: log.failure("following {bucket}/{key} failed", failure,
                                                         bucket=self.bucket, key=self.key))
        return following

    def stop(self) -> None:
        self._stopped = True
        self._queue.clear()
        if self.watcher is not None:
            self.watcher.stop()

    async def _follow(self) -> None:
        js = JetStream(self.bridge.client)
        while not self._stopped:
            try:
                kv = await key_value(js, self.bucket)
                break
            except NatsError as error:
                self._waiting(f"no bucket yet ({error})")
                await task.deferLater(self.bridge.reactor, BUCKET_RETRY)
        if self._stopped:
            return
        seen = []
        self.watcher = kv.watch(self.key, lambda entry: (seen.append(entry), self.on_entry(entry)),
                                on_stream=self.on_stream)
        await self.watcher.initial_done
        if not seen:
            self._waiting("it has no value yet")

    def _waiting(self, why: str) -> None:
        if not self._waiting_logged:  # once: a Pi may wait for its first deploy for days
            self._waiting_logged = True
            log.warn("waiting for {bucket}/{key}: {why} (bridge deploy stores it); the running config stays",
                     bucket=self.bucket, key=self.key, why=why)

    def on_stream(self, created: str | None) -> None:
        """The watcher reads the key from a stream with this identity (at first, and after the bucket was created again)."""
        if self.live_stream is not None and created != self.live_stream:
            log.warn("the stream of bucket {bucket} was created again; following {key} from its last value",
                     bucket=self.bucket, key=self.key)
        self.live_stream = created

    def on_entry(self, entry) -> None:
        """Queue a revision: revisions are checked one at a time, in the order they came."""
        self._queue.append((entry, self.live_stream))
        if not self._handling:
            self._handling = True
            defer.ensureDeferred(self._handle_queue())

    async def _handle_queue(self) -> None:
        try:
            while self._queue and not self._stopped:
                entry, stream = self._queue.popleft()
                await self._handle(entry, stream)
        finally:
            self._handling = False

    async def _handle(self, entry, stream: str | None) -> None:
        source = kv_source(self.bucket, self.key, entry.revision)
        if entry.operation != PUT:
            log.warn("{source} deletes the stored config; keeping {running}", source=source, running=self._running())
            return
        running = self.applied
        if running is not None and (entry.revision, stream, content_hash(entry.value)) == (
                running.revision, running.stream_created, running.sha256):
            self.confirmed = True  # the cached revision is the live one
            return
        try:
            stored = StoredRevision.of(entry.revision, entry.value, stream)
        except UnicodeDecodeError as error:
            self._refuse(entry.revision, f"{source}: the stored value is not UTF-8 text ({error.reason} at byte "
                                         f"{error.start})")
            return
        try:
            config = await self._check(stored.text, self.bootstrap, source)
        except Exception as error:  # noqa: BLE001 - ConfigError, a checker that died, or a bug: a refusal
            self._refuse(entry.revision, one_line(error))
            return
        if self._stopped:
            return
        try:
            self.bridge.reload(config)
        except Exception as error:  # noqa: BLE001 - a bug in reload: refused on one line, the follower goes on
            self._refuse(entry.revision, one_line(error))
            return
        self.applied = stored
        self.confirmed = True
        self.error = self.refused_revision = None
        self.cache.save(stored)
        log.info("applied {source}", source=source)
        if self.on_applied is not None:
            self.on_applied(entry.revision)

    def _refuse(self, revision: int, why: str) -> None:
        self.error = masked(why, self.bootstrap)
        self.refused_revision = revision
        log.error("refused {source}, keeping {running}: {error}", source=kv_source(self.bucket, self.key, revision),
                  running=self._running(), error=self.error)

    def _running(self) -> str:
        return self.source if self.applied is not None else "no stored config"
