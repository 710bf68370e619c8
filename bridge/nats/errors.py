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


# --- JetStream and key-value (bridge/nats/jetstream/streams.py, bridge/nats/jetstream/kv.py) -------------------


class JetStreamError(NatsError):
    """Base of the JetStream and key-value errors."""


class JetStreamNotEnabledError(JetStreamError):
    """Nobody answers on `$JS.API.>`: the server (or this account) has no JetStream."""


class NoStreamResponseError(JetStreamError):
    """A JetStream publish reached no stream: no stream captures the subject (or no JetStream)."""

    def __init__(self, subject: str):
        super().__init__(f"no stream answered a publish on {subject!r}")
        self.subject = subject


class JetStreamApiError(JetStreamError):
    """The JetStream API answered with an error: HTTP-like `code`, JetStream `err_code`, `description`."""

    def __init__(self, code: int | None, err_code: int | None, description: str):
        super().__init__(f"{description} (code {code}, err_code {err_code})")
        self.code = code
        self.err_code = err_code
        self.description = description


class StreamNotFoundError(JetStreamApiError):
    """err_code 10059."""


class StreamNameInUseError(JetStreamApiError):
    """err_code 10058: a stream of that name exists with a different configuration."""


class ConsumerNotFoundError(JetStreamApiError):
    """err_code 10014."""


class NoMessageFoundError(JetStreamApiError):
    """err_code 10037."""


class WrongLastSequenceError(JetStreamApiError):
    """err_code 10071: an expected-last-(subject-)sequence header did not match."""


class MessageIdMismatchError(JetStreamApiError):
    """err_code 10070 (wrong last msg id) or a duplicate the server refused."""


_API_ERRORS = {
    10059: StreamNotFoundError,
    10058: StreamNameInUseError,
    10014: ConsumerNotFoundError,
    10037: NoMessageFoundError,
    10071: WrongLastSequenceError,
    10070: MessageIdMismatchError,
}


def api_error(error: dict) -> JetStreamApiError:
    """The exception for the `"error"` object of a JetStream API answer."""
    err_code = error.get("err_code")
    kind = _API_ERRORS.get(err_code, JetStreamApiError)
    return kind(error.get("code"), err_code, error.get("description") or "JetStream API error")


class KeyValueError(JetStreamError):
    """Base of the key-value errors."""


class InvalidBucketNameError(KeyValueError, ValueError):
    """A bucket name outside `[a-zA-Z0-9_-]+`; nothing was sent."""


class InvalidKeyError(KeyValueError, ValueError):
    """A key outside `[-/_=.a-zA-Z0-9]+` or starting/ending with `.`; nothing was sent."""


class BucketNotFoundError(KeyValueError):
    """No stream `KV_<bucket>`."""


class KeyNotFoundError(KeyValueError):
    """The key has no value: never put, deleted or purged. `entry` is the delete marker, if any."""

    def __init__(self, key: str, entry=None):
        what = "was deleted" if entry is not None else "not found"
        super().__init__(f"key {key!r} {what}")
        self.key = key
        self.entry = entry


class KeyWrongLastSequenceError(KeyValueError):
    """`update(key, value, last)`: the key's latest revision is not `last`."""

    def __init__(self, key: str, api: JetStreamApiError):
        super().__init__(f"key {key!r}: {api.description}")
        self.key = key
        self.api_error = api


class KeyExistsError(KeyWrongLastSequenceError):
    """`create(key, value)`: the key has a value already."""
