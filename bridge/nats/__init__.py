"""A Twisted NATS client: sans-io wire layer (`protocol`), subject helpers, `Client`, and
JetStream (`jetstream`) with its key-value store (`kv`) on top.

Names load on first use (PEP 562), so `bridge.nats.subjects` and `bridge.nats.protocol` stay cheap
to import — `bridge validate` checks subjects without ever loading Twisted or pyOpenSSL.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "Client": "bridge.nats.client",
    "Credentials": "bridge.nats.auth",
    "ClientOptions": "bridge.nats.options",
    "KeepAlive": "bridge.nats.options",
    "Reconnect": "bridge.nats.options",
    "ClientStats": "bridge.nats.client",
    "Msg": "bridge.nats.client",
    "Subscription": "bridge.nats.client",
    "AuthConfigError": "bridge.nats.errors",
    "AuthorizationError": "bridge.nats.errors",
    "ConnectionClosedError": "bridge.nats.errors",
    "ConnectionLostError": "bridge.nats.errors",
    "HandshakeError": "bridge.nats.errors",
    "InvalidSubjectError": "bridge.nats.errors",
    "MaxPayloadError": "bridge.nats.errors",
    "NatsError": "bridge.nats.errors",
    "NatsTimeoutError": "bridge.nats.errors",
    "NoRespondersError": "bridge.nats.errors",
    "OutboundBufferFullError": "bridge.nats.errors",
    "PermissionViolationError": "bridge.nats.errors",
    "ServerError": "bridge.nats.errors",
    "TlsError": "bridge.nats.errors",
    "JetStreamError": "bridge.nats.errors",
    "JetStreamNotEnabledError": "bridge.nats.errors",
    "NoStreamResponseError": "bridge.nats.errors",
    "JetStreamApiError": "bridge.nats.errors",
    "StreamNotFoundError": "bridge.nats.errors",
    "StreamNameInUseError": "bridge.nats.errors",
    "ConsumerNotFoundError": "bridge.nats.errors",
    "NoMessageFoundError": "bridge.nats.errors",
    "WrongLastSequenceError": "bridge.nats.errors",
    "MessageIdMismatchError": "bridge.nats.errors",
    "KeyValueError": "bridge.nats.errors",
    "InvalidBucketNameError": "bridge.nats.errors",
    "InvalidKeyError": "bridge.nats.errors",
    "BucketNotFoundError": "bridge.nats.errors",
    "KeyNotFoundError": "bridge.nats.errors",
    "KeyWrongLastSequenceError": "bridge.nats.errors",
    "KeyExistsError": "bridge.nats.errors",
    "JetStream": "bridge.nats.jetstream",
    "PubAck": "bridge.nats.jetstream",
    "KeyValue": "bridge.nats.jetstream",
    "KvEntry": "bridge.nats.jetstream",
    "KeyWatcher": "bridge.nats.jetstream",
    "create_key_value": "bridge.nats.jetstream",
    "key_value": "bridge.nats.jetstream",
    "Headers": "bridge.nats.protocol",
    "TlsOptions": "bridge.nats.tls",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'bridge.nats' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
