"""JetStream on the core client: the stream API (`api.request` on `$JS.API.>`) and headers on publishes.

Everything here is a plain `Client.request`; nothing in the client knows about JetStream.
Key-value buckets (`kv.create_key_value`, `kv.key_value`) take a `JetStream` from here.
"""

from __future__ import annotations

from dataclasses import dataclass

from twisted.internet import defer

from bridge.nats.errors import JetStreamError, NoRespondersError, NoStreamResponseError
from bridge.nats.jetstream.api import parse_json_reply, request
from bridge.nats.protocol import Headers

__all__ = ["JetStream", "PubAck", "cluster_size", "replicas_for"]


def cluster_size(info: dict) -> int:
    """How many servers the cluster has, from a server's INFO: its `connect_urls` list every
    server's client address, the one answering included once it knows its routes."""
    urls = set(info.get("connect_urls") or ())
    own = f"{info.get('host')}:{info.get('port')}"
    return max(1, len(urls) + (0 if own in urls or not urls else 1))


def replicas_for(info: dict) -> int:
    """Replicas for a stream created through that server: three on a cluster of three or more."""
    return min(3, cluster_size(info))


@dataclass(frozen=True)
class PubAck:
    """The stream's receipt for a publish: which stream stored it, at which sequence, and whether
    it was a repeat of a `msg_id` seen within the stream's duplicate window (then nothing was stored)."""

    stream: str
    seq: int
    duplicate: bool = False
    domain: str | None = None


class JetStream:
    """JetStream through `client` (a connected `Client`); every call fails after `timeout` s."""

    def __init__(self, client, timeout: float = 5.0):
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.client = client
        self.timeout = timeout

    # --- the API ---------------------------------------------------------------------------

    async def api(self, verb: str, body: dict | None = None, timeout: float | None = None) -> dict:
        """Request `$JS.API.<verb>` with `body` as JSON; the answer's JSON, or its error raised."""
        return await request(self.client, verb, body, timeout or self.timeout)

    def account_info(self) -> defer.Deferred:
        return defer.ensureDeferred(self.api("INFO"))

    def stream_info(self, name: str) -> defer.Deferred:
        """The stream's info (`config`, `state`, `cluster`, ...); `StreamNotFoundError` if absent."""
        return defer.ensureDeferred(self.api(f"STREAM.INFO.{name}"))

    def add_stream(self, config: dict) -> defer.Deferred:
        """Create the stream `config["name"]`; the server answers with its info. Creating it again
        with the same config succeeds; a different one fails with `StreamNameInUseError`."""
        name = config.get("name")
        if not name:
            raise ValueError("a stream config needs a name")
        return defer.ensureDeferred(self.api(f"STREAM.CREATE.{name}", config))

    def delete_stream(self, name: str) -> defer.Deferred:
        return defer.ensureDeferred(self.api(f"STREAM.DELETE.{name}"))

    # --- publishing ------------------------------------------------------------------------

    def publish(self, subject: str, payload: bytes = b"", headers=None, *, msg_id: str | None = None,
                expected_stream: str | None = None, expected_last_sequence: int | None = None,
                expected_last_subject_sequence: int | None = None, expected_last_msg_id: str | None = None,
                timeout: float | None = None) -> defer.Deferred:
        """Publish and wait for the stream's `PubAck`. `msg_id` sets `Nats-Msg-Id` (the stream
        drops a repeat within its duplicate window and acks it with `duplicate=True`); the
        `expected_*` options are the server-checked conditions (`WrongLastSequenceError` when
        one does not hold). Fails with `NoStreamResponseError` when no stream takes the subject."""
        conditions = Headers(headers.items() if isinstance(headers, Headers) else headers or ())
        for key, value in (("Nats-Msg-Id", msg_id), ("Nats-Expected-Stream", expected_stream),
                           ("Nats-Expected-Last-Sequence", expected_last_sequence),
                           ("Nats-Expected-Last-Subject-Sequence", expected_last_subject_sequence),
                           ("Nats-Expected-Last-Msg-Id", expected_last_msg_id)):
            if value is not None:
                conditions.add(key, str(value))
        return defer.ensureDeferred(self._publish(subject, payload, conditions if len(conditions) else None,
                                                  timeout or self.timeout))

    async def _publish(self, subject: str, payload: bytes, headers, timeout: float) -> PubAck:
        try:
            msg = await self.client.request(subject, payload, timeout, headers=headers)
        except NoRespondersError:
            raise NoStreamResponseError(subject) from None
        body = parse_json_reply(msg)
        if "stream" not in body or "seq" not in body:
            raise JetStreamError(f"a publish on {subject!r} got an answer that is no PubAck: {body!r}")
        return PubAck(body["stream"], int(body["seq"]), bool(body.get("duplicate", False)), body.get("domain"))
