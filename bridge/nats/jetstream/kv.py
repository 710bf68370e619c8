"""Key-value buckets (ADR-8) on JetStream: bucket `B` is stream `KV_B`, key `k` is subject `$KV.B.k`,
a value's revision is its stream sequence, and a delete is a marker message (`KV-Operation: DEL`).

`KeyWatcher` is an ordered push consumer (ADR-15) — the one piece with state. Theory of operation:
it subscribes to a fresh inbox, then creates an ephemeral consumer delivering there (no acks, flow
control, idle heartbeats). Every delivered message's reply subject (`$JS.ACK...`) carries the
consumer and stream sequences. Delivery is trusted only while the consumer sequence counts up by
one and heartbeats keep coming; on a gap, on ~2 missed heartbeats, or once the client reconnected,
the watcher drops that subscription and consumer and creates a new pair starting right after the
last stream sequence it delivered. So the callback sees every revision once, in order.

A `409` status on the inbox ("Consumer Deleted") starts a new consumer at once; a consumer deleted
without a word, or a node that died, says nothing, so heartbeats come every half second and two
missed ones start a new consumer.
Before each consumer the watcher reads the stream's `created` time, its identity: when the stream
was created again (or its last sequence went below the last one delivered) there is nothing to
continue from, so it starts over as at first and tells `on_stream`.
"""

from __future__ import annotations

import base64
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

from twisted.internet import defer, task
from twisted.logger import Logger

from bridge.nats.errors import (
    BucketNotFoundError,
    InvalidBucketNameError,
    InvalidKeyError,
    JetStreamApiError,
    KeyExistsError,
    KeyNotFoundError,
    KeyWrongLastSequenceError,
    NoMessageFoundError,
    NoRespondersError,
    StreamNotFoundError,
    WrongLastSequenceError,
)
from bridge.nats.jetstream import api
from bridge.nats.protocol import Headers, parse_headers
from bridge.nats.requests import timeout_as

__all__ = ["KeyValue", "KvEntry", "KeyWatcher", "PUT", "DEL", "PURGE", "create_key_value", "key_value",
           "validate_key", "validate_bucket"]

log = Logger()

PUT, DEL, PURGE = "PUT", "DEL", "PURGE"
_BUCKET = re.compile(r"[a-zA-Z0-9_-]+\Z")
_KEY = re.compile(r"[-/_=.a-zA-Z0-9]+\Z")
_WATCH_TOKEN = re.compile(r"([-/_=a-zA-Z0-9]+|\*|>)\Z")
_NS = 1_000_000_000
DEFAULT_IDLE_HEARTBEAT = 0.5
INACTIVE_THRESHOLD = 300.0  # seconds an abandoned watcher's consumer outlives it on the server
_RETRY_DELAYS = (0.1, 0.25, 0.5, 1.0, 2.0)


def validate_bucket(bucket: str) -> None:
    if not isinstance(bucket, str) or not _BUCKET.match(bucket):
        raise InvalidBucketNameError(f"bucket name {bucket!r} must match [a-zA-Z0-9_-]+")


def validate_key(key: str) -> None:
    if not isinstance(key, str) or not _KEY.match(key) or key.startswith(".") or key.endswith("."):
        raise InvalidKeyError(f"key {key!r} must match [-/_=.a-zA-Z0-9]+ and not start or end with '.'")


def validate_watch_key(key: str) -> None:
    """A key, or a pattern of them with `*` / `>` tokens (`>` last)."""
    tokens = key.split(".") if isinstance(key, str) else [""]
    if not all(_WATCH_TOKEN.match(t) for t in tokens) or ">" in tokens[:-1]:
        raise InvalidKeyError(f"{key!r} is no key or key pattern (tokens of [-/_=a-zA-Z0-9], '*', a final '>')")


@dataclass(frozen=True)
class KvEntry:
    """One revision of a key. `operation` is PUT, DEL or PURGE (then `value` is empty); `headers`:
    the stored message's own, e.g. what a writer marked it with."""

    bucket: str
    key: str
    value: bytes
    revision: int
    created: datetime
    operation: str = PUT
    headers: Headers | None = field(default=None, compare=False, repr=False)


def operation_of(headers: Headers | None) -> str:
    if headers is None:
        return PUT
    op = headers.get("KV-Operation")
    if op in (DEL, PURGE):
        return op
    reason = headers.get("Nats-Marker-Reason")  # server-side markers (2.11+)
    if reason == "Remove":
        return DEL
    if reason in ("MaxAge", "Purge"):
        return PURGE
    return PUT


_RFC3339 = re.compile(r"(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d:\d\d)(?:\.(\d+))?\s*(Z|[+-]\d\d:?\d\d)?")


def parse_time(text: str) -> datetime:
    """An RFC 3339 time with up to nanoseconds, as the server writes them (UTC unless an offset says)."""
    match = _RFC3339.match(text or "")
    if not match:
        raise ValueError(f"not a time: {text!r}")
    day, clock, fraction, offset = match.groups()
    micros = (fraction or "0")[:6].ljust(6, "0")
    zone = "+00:00" if offset in (None, "Z") else offset[:3] + ":" + offset[-2:]
    return datetime.fromisoformat(f"{day}T{clock}.{micros}{zone}").astimezone(timezone.utc)


@dataclass(frozen=True)
class AckInfo:
    """What a delivered message's `$JS.ACK...` reply subject says about it."""

    stream: str
    consumer: str
    stream_seq: int
    consumer_seq: int
    timestamp_ns: int
    pending: int


def parse_ack_reply(reply: str | None) -> AckInfo | None:
    """`$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>` (9 tokens), or the v2
    form with `<domain>.<account hash>` after `ACK` and maybe one more token at the end (11 or 12)."""
    if not reply or not reply.startswith("$JS.ACK."):
        return None
    tokens = reply.split(".")
    if len(tokens) == 9:
        fields = tokens[2:9]
    elif len(tokens) >= 11:
        fields = tokens[4:11]
    else:
        return None
    stream, consumer, _delivered, sseq, cseq, ts, pending = fields
    try:
        return AckInfo(stream, consumer, int(sseq), int(cseq), int(ts), int(pending))
    except ValueError:
        return None


def stream_config(bucket: str, history: int, replicas: int, description: str | None, *,
                  max_bytes: int = -1, max_value_size: int = -1, ttl: float = 0,
                  storage: str = "file") -> dict:
    """The stream behind a bucket, as ADR-8 and the official clients configure it."""
    validate_bucket(bucket)
    if not 1 <= history <= 64:
        raise ValueError("history must be between 1 and 64")
    if replicas not in (1, 2, 3, 4, 5):
        raise ValueError("replicas must be between 1 and 5")
    config = {
        "name": f"KV_{bucket}",
        "subjects": [f"$KV.{bucket}.>"],
        "retention": "limits",
        "max_msgs_per_subject": history,
        "max_msgs": -1,
        "max_bytes": max_bytes,
        "max_age": int(ttl * _NS),
        "max_msg_size": max_value_size,
        "storage": storage,
        "num_replicas": replicas,
        "discard": "new",
        "duplicate_window": int((min(ttl, 120) if ttl else 120) * _NS),
        "allow_rollup_hdrs": True,
        "deny_delete": True,
        "allow_direct": True,
    }
    if description:
        config["description"] = description
    return config


def create_key_value(js, bucket: str, history: int = 10, replicas: int = 1, description: str | None = None,
                     **options) -> defer.Deferred:
    """Create (or open, when the config matches) the bucket through `js` (a `JetStream`); fires
    with a `KeyValue`. `options`: `max_bytes`, `max_value_size`, `ttl`, `storage` (`stream_config`)."""
    return defer.ensureDeferred(_create(js, bucket, history, replicas, description, options))


def key_value(js, bucket: str) -> defer.Deferred:
    """Bind to an existing bucket through `js` (a `JetStream`); fails with `BucketNotFoundError`."""
    return defer.ensureDeferred(_bind(js, bucket))


async def _create(js, bucket: str, history: int, replicas: int, description: str | None, options: dict) -> "KeyValue":
    info = await js.add_stream(stream_config(bucket, history, replicas, description, **options))
    return KeyValue(js, bucket, direct=bool(info.get("config", {}).get("allow_direct")))


async def _bind(js, bucket: str) -> "KeyValue":
    validate_bucket(bucket)
    try:
        info = await js.stream_info(f"KV_{bucket}")
    except StreamNotFoundError:
        raise BucketNotFoundError(f"no bucket {bucket!r} (stream KV_{bucket})") from None
    return KeyValue(js, bucket, direct=bool(info.get("config", {}).get("allow_direct")))


class KeyValue:
    """A bucket through `js` (a `JetStream`); every method returns a Deferred. Build it with
    `create_key_value` or `key_value`. `direct`: read with direct get (`allow_direct` streams)."""

    def __init__(self, js, bucket: str, *, direct: bool = True):
        validate_bucket(bucket)
        self.js = js
        self.bucket = bucket
        self.stream = f"KV_{bucket}"
        self.prefix = f"$KV.{bucket}."
        self.direct = direct

    @property
    def clock(self):
        """The client's reactor, so tests with a fake one stay consistent."""
        return self.js.client.reactor

    def __repr__(self) -> str:
        return f"<KeyValue {self.bucket!r}>"

    # --- reading ---------------------------------------------------------------------------

    def get(self, key: str) -> defer.Deferred:
        """The key's current `KvEntry`; `KeyNotFoundError` if it never had a value or was deleted."""
        validate_key(key)
        return defer.ensureDeferred(self._get(key))

    async def _get(self, key: str) -> KvEntry:
        entry = await self._last_entry(key)
        if entry is None or entry.operation != PUT:
            raise KeyNotFoundError(key, entry)
        return entry

    def entry(self, key: str) -> defer.Deferred:
        """The key's latest entry, delete markers included; None if it has none."""
        validate_key(key)
        return defer.ensureDeferred(self._last_entry(key))

    async def _last_entry(self, key: str) -> KvEntry | None:
        subject = self.prefix + key
        if self.direct:
            try:
                msg = await self.js.client.request(f"{api.API_PREFIX}.DIRECT.GET.{self.stream}.{subject}", b"",
                                                   self.js.timeout)
            except NoRespondersError:
                pass  # no replica answers direct gets (yet): ask the stream leader
            else:
                if msg.status == 404:
                    return None
                if msg.status is not None:
                    raise JetStreamApiError(msg.status, None, msg.description or "direct get failed")
                return self._entry_from_direct(msg)
        try:
            body = await self.js.api(f"STREAM.MSG.GET.{self.stream}", {"last_by_subj": subject})
        except NoMessageFoundError:
            return None
        return self._entry_from_stored(body["message"])

    def _entry_from_direct(self, msg) -> KvEntry:
        headers = msg.headers or Headers()
        subject = headers.get("Nats-Subject", "")
        return KvEntry(self.bucket, subject[len(self.prefix):], msg.data, int(headers.get("Nats-Sequence", "0")),
                       parse_time(headers.get("Nats-Time-Stamp", "")), operation_of(headers), headers)

    def _entry_from_stored(self, stored: dict) -> KvEntry:
        headers = None
        if stored.get("hdrs"):
            headers = parse_headers(base64.b64decode(stored["hdrs"]))[0]
        value = base64.b64decode(stored.get("data") or b"")
        return KvEntry(self.bucket, stored["subject"][len(self.prefix):], value, int(stored["seq"]),
                       parse_time(stored["time"]), operation_of(headers), headers)

    def history(self, key: str, timeout: float | None = None) -> defer.Deferred:
        """Every entry the bucket keeps for `key`, oldest first, markers included; [] if none.
        Fails with `NatsTimeoutError` when they are not all in after `timeout` s."""
        validate_watch_key(key)
        return defer.ensureDeferred(self._history(key, timeout or self.js.timeout))

    async def _history(self, key: str, timeout: float) -> list[KvEntry]:
        entries: list[KvEntry] = []
        watcher = self.watch(key, entries.append, include_history=True)
        try:
            await watcher.initial_done.addTimeout(
                timeout, self.clock, onTimeoutCancel=timeout_as(f"history of {key!r} in bucket {self.bucket!r}"))
        finally:
            watcher.stop()
        return entries

    # --- writing ---------------------------------------------------------------------------

    def put(self, key: str, value: bytes, headers: Headers | None = None) -> defer.Deferred:
        """Store `value` (with `headers` of the writer's own) as the key's new revision; fires with that revision."""
        validate_key(key)
        return defer.ensureDeferred(self._put(key, value, headers=headers))

    def update(self, key: str, value: bytes, last: int, headers: Headers | None = None) -> defer.Deferred:
        """Store `value` only if the key's latest revision is `last` (0: the key has none);
        else `KeyWrongLastSequenceError`."""
        validate_key(key)
        return defer.ensureDeferred(self._put(key, value, last=last, headers=headers))

    def create(self, key: str, value: bytes, headers: Headers | None = None) -> defer.Deferred:
        """Store `value` only if the key has no value (never put, or deleted); else `KeyExistsError`."""
        validate_key(key)
        return defer.ensureDeferred(self._create(key, value, headers))

    def delete(self, key: str, last: int | None = None) -> defer.Deferred:
        """Mark the key deleted (its history stays); fires with the marker's revision."""
        validate_key(key)
        return defer.ensureDeferred(self._put(key, b"", last=last, headers=Headers([("KV-Operation", DEL)])))

    def purge(self, key: str, last: int | None = None) -> defer.Deferred:
        """Mark the key deleted and drop its history; fires with the marker's revision."""
        validate_key(key)
        headers = Headers([("KV-Operation", PURGE), ("Nats-Rollup", "sub")])
        return defer.ensureDeferred(self._put(key, b"", last=last, headers=headers))

    async def _put(self, key: str, value: bytes, last: int | None = None, headers=None) -> int:
        try:
            ack = await self.js.publish(self.prefix + key, value, headers, expected_last_subject_sequence=last)
        except WrongLastSequenceError as exc:
            raise KeyWrongLastSequenceError(key, exc) from None
        return ack.seq

    async def _create(self, key: str, value: bytes, headers: Headers | None = None) -> int:
        try:
            return await self._put(key, value, last=0, headers=headers)
        except KeyWrongLastSequenceError as exc:
            first_refusal = exc
        latest = await self._last_entry(key)
        if latest is not None and latest.operation != PUT:
            try:
                return await self._put(key, value, last=latest.revision, headers=headers)
            except KeyWrongLastSequenceError as exc:
                first_refusal = exc
        raise KeyExistsError(key, first_refusal.api_error)

    # --- watching --------------------------------------------------------------------------

    def watch(self, key: str, callback: Callable[[KvEntry], object], *, include_history: bool = False,
              idle_heartbeat: float = DEFAULT_IDLE_HEARTBEAT,
              on_stream: Callable[[str | None], object] | None = None) -> "KeyWatcher":
        """Call `callback(entry)` with the key's current entry (every kept one with
        `include_history`), then with each new one, markers included. `key` may be a pattern
        (`*`, `>`). The returned watcher's `initial_done` fires once the current entries are in.
        `on_stream(created)` is called with the stream's identity before the first entry from it."""
        validate_watch_key(key)
        watcher = KeyWatcher(self, key, callback, include_history=include_history, idle_heartbeat=idle_heartbeat,
                             clock=self.clock, on_stream=on_stream)
        watcher.start()
        return watcher


def create_consumer_verb(stream: str, name: str, filter_subject: str) -> str:
    """`CONSUMER.CREATE.<stream>.<name>.<filter>` (servers 2.9+): the filter in the subject lets
    NATS permissions limit a user to watching its own keys. A pattern cannot be a publish subject,
    so a watch of one goes without it."""
    if "*" in filter_subject.split(".") or ">" in filter_subject.split("."):
        return f"CONSUMER.CREATE.{stream}.{name}"
    return f"CONSUMER.CREATE.{stream}.{name}.{filter_subject}"


class KeyWatcher:
    """An ordered push consumer on a bucket (see the module docstring); `stop()` ends it.

    `initial_done` fires (with None) once the entries present when watching began are delivered,
    or at once when there are none. `consumers_created` counts consumers made for it (1 + resets),
    `flow_control_answered` the flow-control requests it answered; `stream_created` is the identity
    of the stream it reads.
    """

    def __init__(self, kv: KeyValue, key: str, callback, *, include_history: bool, idle_heartbeat: float, clock,
                 on_stream: Callable[[str | None], object] | None = None):
        if idle_heartbeat <= 0:
            raise ValueError("idle_heartbeat must be positive")
        self.kv = kv
        self.key = key
        self.callback = callback
        self.include_history = include_history
        self.idle_heartbeat = idle_heartbeat
        self.initial_done: defer.Deferred = defer.Deferred()
        self.consumers_created = 0
        self.flow_control_answered = 0
        self.consumer_name: str | None = None
        self.stream_created: str | None = None
        self._stream_read = False
        self._on_stream = on_stream
        self._clock = clock
        self._client = kv.js.client
        self._sub = None
        self._consumer_seq = 0
        self._last_stream_seq = 0
        self._last_activity = 0.0
        self._stopped = False
        self._want_consumer = False
        self._creating = False
        self._caught_up = False
        self._heartbeat_check = task.LoopingCall(self._check_heartbeats)
        self._heartbeat_check.clock = clock

    @property
    def subscription(self):
        """The inbox subscription of the current consumer (None while re-creating it)."""
        return self._sub

    def start(self) -> None:
        self._client.add_listener("reconnected", self._reconnected)
        self._heartbeat_check.start(self.idle_heartbeat, now=False)
        self._reset("start")

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._client.remove_listener("reconnected", self._reconnected)
        if self._heartbeat_check.running:
            self._heartbeat_check.stop()
        self._drop_consumer()
        if not self.initial_done.called:
            self.initial_done.cancel()

    # --- (re)creating the consumer ---------------------------------------------------------

    def _reconnected(self, _url) -> None:
        self._reset("the client reconnected")

    def _reset(self, reason: str) -> None:
        if self._stopped:
            return
        if reason != "start":
            log.info("KV watcher on {bucket}/{key}: new consumer ({reason})", bucket=self.kv.bucket, key=self.key,
                     reason=reason)
        self._drop_consumer()
        self._want_consumer = True
        if not self._creating:
            defer.ensureDeferred(self._create_until_done())

    def _drop_consumer(self) -> None:
        sub, self._sub = self._sub, None
        if sub is not None and sub.is_active:
            sub.unsubscribe()
        name, self.consumer_name = self.consumer_name, None
        if name is not None and self._client.is_connected:
            deleted = defer.ensureDeferred(
                api.request(self._client, f"CONSUMER.DELETE.{self.kv.stream}.{name}", None, self.kv.js.timeout))
            deleted.addErrback(lambda _: None)  # it may be gone already; inactive_threshold reaps it anyway

    async def _create_until_done(self) -> None:
        self._creating = True
        attempt = 0
        try:
            while self._want_consumer and not self._stopped:
                self._want_consumer = False
                try:
                    await self._create_consumer()
                    attempt = 0
                except Exception as exc:  # noqa: BLE001 - any failure: try again, the watcher must not die
                    if self._client.is_closed:
                        self.stop()  # no client to retry with
                        return
                    log.info("KV watcher on {bucket}/{key}: creating its consumer failed ({error}); retrying",
                             bucket=self.kv.bucket, key=self.key, error=exc)
                    self._drop_consumer()
                    self._want_consumer = True
                    delay = _RETRY_DELAYS[min(attempt, len(_RETRY_DELAYS) - 1)]
                    attempt += 1
                    await task.deferLater(self._clock, delay)
        finally:
            self._creating = False

    async def _create_consumer(self) -> None:
        inbox = self._client.new_inbox()
        sub = self._client.subscribe(inbox, lambda msg: self._on_message(sub, msg))
        self._sub = sub
        self._consumer_seq = 0
        self._last_activity = self._clock.seconds()
        await self._check_stream()
        if self._sub is not sub:
            return
        name = "watch_" + secrets.token_hex(8)
        filter_subject = self.kv.prefix + self.key
        config = {
            "name": name,
            "deliver_subject": inbox,
            "filter_subject": filter_subject,
            "ack_policy": "none",
            "max_deliver": 1,
            "flow_control": True,
            "idle_heartbeat": int(self.idle_heartbeat * _NS),
            "mem_storage": True,
            "num_replicas": 1,
            "inactive_threshold": int(INACTIVE_THRESHOLD * _NS),
        }
        if self._last_stream_seq:
            config.update(deliver_policy="by_start_sequence", opt_start_seq=self._last_stream_seq + 1)
        else:
            config["deliver_policy"] = "all" if self.include_history else "last_per_subject"
        info = await api.request(self._client, create_consumer_verb(self.kv.stream, name, filter_subject),
                                 {"stream_name": self.kv.stream, "config": config}, self.kv.js.timeout)
        if self._sub is not sub:  # reset (or stopped) while the request was out: that one is stale
            name = info.get("name")
            if name:
                defer.ensureDeferred(api.request(self._client, f"CONSUMER.DELETE.{self.kv.stream}.{name}", None,
                                                 self.kv.js.timeout)).addErrback(lambda _: None)
            return
        self.consumer_name = info.get("name")
        self.consumers_created += 1
        delivered = (info.get("delivered") or {}).get("consumer_seq", 0)
        if info.get("num_pending", 0) == 0 and delivered == 0:
            self._caught_up = True  # nothing to deliver at all
        self._maybe_initial_done()

    async def _check_stream(self) -> None:
        """Read the stream's identity; start over when it is another stream than the one delivered from."""
        info = await api.request(self._client, f"STREAM.INFO.{self.kv.stream}", None, self.kv.js.timeout)
        created = info.get("created")
        last_seq = (info.get("state") or {}).get("last_seq", 0)
        if self._stream_read:
            if created == self.stream_created and last_seq >= self._last_stream_seq:
                return
            log.info("KV watcher on {bucket}/{key}: the stream is not the one it read (created {created}, last "
                     "sequence {last_seq}); starting over", bucket=self.kv.bucket, key=self.key, created=created,
                     last_seq=last_seq)
            self._last_stream_seq = 0
        self.stream_created = created
        self._stream_read = True
        if self._on_stream is not None:
            self._on_stream(created)

    # --- delivery --------------------------------------------------------------------------

    def _on_message(self, sub, msg) -> None:
        if sub is not self._sub or self._stopped:
            return  # a dropped consumer's late message
        self._last_activity = self._clock.seconds()
        if msg.status is not None:
            self._on_status(msg)
            return
        ack = parse_ack_reply(msg.reply)
        if ack is None:
            log.warn("KV watcher on {bucket}/{key}: delivery without an ack subject: {msg!r}",
                     bucket=self.kv.bucket, key=self.key, msg=msg)
            return
        if ack.consumer_seq != self._consumer_seq + 1:
            self._reset(f"consumer sequence {ack.consumer_seq} after {self._consumer_seq}")
            return
        self._consumer_seq = ack.consumer_seq
        self._last_stream_seq = ack.stream_seq
        entry = KvEntry(self.kv.bucket, msg.subject[len(self.kv.prefix):], msg.data, ack.stream_seq,
                        _from_ns(ack.timestamp_ns), operation_of(msg.headers), msg.headers)
        try:
            self.callback(entry)
        except Exception:  # noqa: BLE001 - one bad callback run must not end the watch
            log.failure("KV watcher callback raised")
        if ack.pending == 0:
            self._caught_up = True
            self._maybe_initial_done()

    def _on_status(self, msg) -> None:
        if msg.status == 409:  # "Consumer Deleted", or any other reason the server stopped delivering
            self._reset(f"the server says {msg.status} {msg.description or ''}".rstrip())
            return
        if msg.status != 100:
            return
        if msg.reply:  # "FlowControl Request": delivery stalls until it is answered
            self._client.publish(msg.reply, b"")
            self.flow_control_answered += 1
            return
        headers = msg.headers or Headers()
        stalled = headers.get("Nats-Consumer-Stalled")
        if stalled:
            self._client.publish(stalled, b"")
            self.flow_control_answered += 1
        last = headers.get("Nats-Last-Consumer")
        if last is not None and last.isdigit() and int(last) != self._consumer_seq and self.consumer_name:
            self._reset(f"heartbeat says consumer sequence {last}, we saw {self._consumer_seq}")

    def _check_heartbeats(self) -> None:
        if self._creating or self._stopped:
            return
        if self._clock.seconds() - self._last_activity > 2 * self.idle_heartbeat:
            self._reset(f"no heartbeat for {2 * self.idle_heartbeat}s")

    def _maybe_initial_done(self) -> None:
        # Deliveries can overtake the consumer's create response: done needs both.
        if self._caught_up and self.consumer_name is not None and not self.initial_done.called:
            self.initial_done.callback(None)


def _from_ns(ns: int) -> datetime:
    return datetime.fromtimestamp(ns // _NS, timezone.utc).replace(microsecond=ns % _NS // 1000)
