"""What can go wrong talking to NATS, as exception types a caller can tell apart."""

from __future__ import annotations


class NatsError(Exception):
    """Base of every error this package raises or reports."""


class InvalidSubjectError(NatsError, ValueError):
    """A subject, reply subject or queue name the server would reject; nothing was sent."""


class MaxPayloadError(NatsError, ValueError):
    """The payload is larger than the server's `max_payload`; nothing was sent."""


class OutboundBufferFullError(NatsError):
    """More than `buffer_size` bytes wait to be sent (server slow or frozen, or no connection);
    this publish was not queued."""


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


class MaxSubscriptionsError(ServerError):
    """The server refused a SUB: the account's subscription limit is reached; the connection stays up."""


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


# -ERR texts as nats-server sends them, lower-cased (capitalisation varies between versions).
_AUTH_FAILURES = (
    "authorization violation",
    "authentication timeout",
    "user authentication expired",
    "user authentication revoked",
    "account authentication expired",
)
# Errors about one operation, after which the server keeps the connection (nats.go's
# "transient" errors plus the subject checks a server without `pedantic` never sends).
_PER_OPERATION = ("invalid subject", "invalid publish subject")


def classify_server_error(message: str, server_url: str | None = None) -> ServerError:
    """Which kind of `-ERR` this is, as nats.go sorts them.

    `fatal` means the server closes the connection after sending it; the client never closes it
    itself because of an `-ERR`: the server's close is what starts a reconnect.
    """
    lowered = message.lower()
    if lowered.startswith("permissions violation"):
        return PermissionViolationError(message, server_url, fatal=False)
    if lowered.startswith("maximum subscriptions exceeded"):
        return MaxSubscriptionsError(message, server_url, fatal=False)
    if lowered.startswith(_AUTH_FAILURES):
        return AuthorizationError(message, server_url)
    return ServerError(message, server_url, fatal=not lowered.startswith(_PER_OPERATION))
