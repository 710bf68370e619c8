"""A bridge with a `fleet:` bootstrap file follows its stored config in a NATS key-value bucket.

At boot the bridge starts from the last applied revision cached on disk (if any), so it comes up
with its subscriptions even when no server is reachable; once connected, `ConfigFollower` watches
the key. Each revision is checked for this device (`load_stored`): a valid one is applied with the
same atomic `Bridge.reload` as a SIGHUP and cached; an invalid one is refused, logged on one line
and reported (`bridge.ID.info` `config`, `$SRV` metadata `config_error`) while the previous
revision keeps running.

    kv watch -> load_stored -> Bridge.reload -> ConfigCache.save
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import quote

from twisted.internet import defer, task
from twisted.logger import Logger

from bridge.config import ConfigError, load_stored
from bridge.config.model import BridgeConfig
from bridge.config.sources import kv_source
from bridge.nats import NatsError
from bridge.nats.jetstream.kv import PUT, key_value
from bridge.nats.jetstream.streams import JetStream

log = Logger(namespace="bridge")

BUCKET_RETRY = 2.0  # seconds between looks for a bucket that does not exist yet


def state_directory(environ=os.environ) -> Path:
    """systemd's StateDirectory= (the first one), else ~/.local/state/bridge."""
    given = environ.get("STATE_DIRECTORY", "").split(":")[0]
    return Path(given) if given else Path.home() / ".local" / "state" / "bridge"


class ConfigCache:
    """The last applied revision of one key, as a small JSON file: bucket, key, revision, text."""

    def __init__(self, directory: Path, bucket: str, key: str):
        self.bucket = bucket
        self.key = key
        self.path = Path(directory) / f"fleet-{bucket}-{quote(key, safe='')}.json"

    def load(self) -> tuple[int, str] | None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if data["bucket"] == self.bucket and data["key"] == self.key:
                return int(data["revision"]), str(data["text"])
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as error:
            log.warn("ignoring the config cache {path}: {error}", path=str(self.path), error=str(error))
        return None

    def save(self, revision: int, text: str) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temporary = self.path.with_suffix(".tmp")
            temporary.write_text(json.dumps({"bucket": self.bucket, "key": self.key, "revision": revision,
                                             "text": text}), encoding="utf-8")
            os.replace(temporary, self.path)
        except OSError as error:
            log.warn("could not cache {source} in {path}: {error}", source=kv_source(self.bucket, self.key, revision),
                     path=str(self.path), error=str(error))


def boot_config(bootstrap: BridgeConfig, cache: ConfigCache) -> tuple[BridgeConfig, int]:
    """What to start with: the cached revision if it is still valid here, else the bootstrap alone
    (no subscriptions or publications until the key's value arrives). (config, revision or 0)."""
    cached = cache.load()
    if cached is None:
        return bootstrap, 0
    revision, text = cached
    source = kv_source(cache.bucket, cache.key, revision)
    try:
        config = load_stored(text, bootstrap, source)
    except ConfigError as error:
        log.error("the cached {source} is invalid, starting without it: {issues}", source=source,
                  issues="; ".join(str(issue) for issue in error.errors))
        return bootstrap, 0
    log.info("starting from the cached {source} ({path})", source=source, path=str(cache.path))
    return config, revision


class ConfigFollower:
    """Watches the bootstrap's fleet key once the bridge runs and applies each valid revision."""

    def __init__(self, bridge, bootstrap: BridgeConfig, cache: ConfigCache, applied_revision: int = 0):
        self.bridge = bridge
        self.bootstrap = bootstrap
        self.bucket = bootstrap.fleet.bucket
        self.key = bootstrap.fleet.key
        self.cache = cache
        self.applied_revision = applied_revision  # 0: none yet
        self.error: str | None = None  # why the latest revision was refused
        self.watcher = None
        self._stopped = False
        self._waiting_logged = False
        bridge.config_origin = self

    # -- what the bridge reports ---------------------------------------------------------------

    @property
    def source(self) -> str:
        return kv_source(self.bucket, self.key, self.applied_revision)

    def info(self) -> dict:
        """`bridge.ID.info`'s `config`: the revision running (None: none yet) and why the latest was refused."""
        return {"key": self.key, "bucket": self.bucket, "revision": self.applied_revision or None,
                "error": self.error}

    def metadata(self) -> dict:
        metadata = {"config": self.source}
        if self.error is not None:
            metadata["config_error"] = self.error
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
        self.watcher = kv.watch(self.key, lambda entry: (seen.append(entry), self.on_entry(entry)))
        await self.watcher.initial_done
        if not seen:
            self._waiting("it has no value yet")

    def _waiting(self, why: str) -> None:
        if not self._waiting_logged:  # once: a Pi may wait for its first deploy for days
            self._waiting_logged = True
            log.warn("waiting for {bucket}/{key}: {why} (bridge deploy stores it); the running config stays",
                     bucket=self.bucket, key=self.key, why=why)

    def on_entry(self, entry) -> None:
        source = kv_source(self.bucket, self.key, entry.revision)
        if entry.operation != PUT:
            log.warn("{source} deletes the stored config; keeping {running}", source=source, running=self.source)
            return
        if entry.revision == self.applied_revision:
            return  # started from the cache with this very revision
        text = entry.value.decode("utf-8", "replace")
        try:
            config = load_stored(text, self.bootstrap, source)
        except ConfigError as error:
            self.error = "; ".join(str(issue) for issue in error.errors)
            log.error("refused {source}, keeping {running}: {error}", source=source,
                      running=self.source if self.applied_revision else "no stored config", error=self.error)
            return
        self.bridge.reload(config)
        self.applied_revision = entry.revision
        self.error = None
        self.cache.save(entry.revision, text)
        log.info("applied {source}", source=source)
