"""What can go wrong talking to NATS, as exception types a caller can tell apart."""

from __future__ import annotations


class NatsError(Exception):
    """Base of every error this package raises or reports."""


class InvalidSubjectError(NatsError, ValueError):
    """A subject, reply subject or queue name the server would reject; nothing was sent."""


class MaxPayloadError(NatsError, ValueError):
    """The payload is larger than the server's `max_payload`; nothing was sent."""


class OutboundBufferFullError(NatsError):
    """Disconnected, and the reconnect buffer cannot hold this publish; it was not queued."""


class ConnectionClosedError(NatsError):
    """The client was closed (or gave up reconnecting) before the operation could complete."""


class ConnectionLostError(NatsError):
    """The connection dropped before the server confirmed the operation."""


class NatsTimeoutError(NatsError, TimeoutError):
    """A request, flush or handshake did not complete in time."""


class NoRespondersError(NatsError):
    """A request reached no subscriber: the server answered with status 503 at once."""

    def __init__(self, subject: str):
        super().__init__(f"no responders for request on {subject!r}")
        self.subject = subject


class ServerError(NatsError):
    """An `-ERR` from the server; `message` is its text as sent. `fatal`: the server closes the connection."""

    def __init__(self, message: str, server: str | None = None, *, fatal: bool = True):
        super().__init__(f"{server}: {message}" if server else message)
        self.message = message
        self.server = server
        self.fatal = fatal


class PermissionViolationError(ServerError):
    """Publish or subscribe denied by the server's permissions; the connection stays up."""


class AuthorizationError(ServerError):
    """The server rejected our credentials (or they expired); the client moves to another server."""


class HandshakeError(NatsError):
    """The server did not complete INFO → CONNECT → PING → PONG."""


class TlsError(HandshakeError):
    """TLS could not be set up: certificate not trusted, client certificate refused, no TLS offered."""


class AuthConfigError(NatsError, ValueError):
    """Credentials given to the client are unusable (unreadable creds file, bad seed, ...)."""
