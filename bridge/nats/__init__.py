"""A Twisted NATS client: sans-io wire layer (`protocol`), subject helpers, and `Client`."""

from bridge.nats.client import Client, ClientStats, Msg, Subscription
from bridge.nats.errors import (
    AuthConfigError,
    AuthorizationError,
    ConnectionClosedError,
    ConnectionLostError,
    HandshakeError,
    InvalidSubjectError,
    MaxPayloadError,
    NatsError,
    NatsTimeoutError,
    NoRespondersError,
    OutboundBufferFullError,
    PermissionViolationError,
    ServerError,
    TlsError,
)
from bridge.nats.protocol import Headers
from bridge.nats.tls import TlsOptions

__all__ = [
    "AuthConfigError",
    "AuthorizationError",
    "Client",
    "ClientStats",
    "ConnectionClosedError",
    "ConnectionLostError",
    "HandshakeError",
    "Headers",
    "InvalidSubjectError",
    "MaxPayloadError",
    "Msg",
    "NatsError",
    "NatsTimeoutError",
    "NoRespondersError",
    "OutboundBufferFullError",
    "PermissionViolationError",
    "ServerError",
    "Subscription",
    "TlsOptions",
    "TlsError",
]
