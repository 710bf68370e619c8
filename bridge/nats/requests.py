"""Request/reply over one shared inbox subscription (`_INBOX.<random>.*`), as nats.go does it:
each request gets a token; the reply's subject names the waiting Deferred."""

from __future__ import annotations

import re
import secrets
from typing import Callable

from twisted.internet import defer
from twisted.python.failure import Failure

from bridge.nats.errors import NatsTimeoutError, NoRespondersError, PermissionViolationError

# The server's text names the subject Go-quoted: `Permissions Violation for Publish to "SUBJ"`.
_VIOLATION = re.compile(r'permissions violation for (publish|subscription) to "([^"]*)"', re.IGNORECASE)


def new_inbox() -> str:
    return "_INBOX." + secrets.token_urlsafe(16)


class RequestMux:
    """`subscribe(subject, callback)` is called once, on the first request."""

    def __init__(self, subscribe: Callable, reactor):
        self._subscribe = subscribe
        self._reactor = reactor
        self._prefix: str | None = None
        self.subscription = None
        self._waiting: dict[str, tuple[defer.Deferred, str]] = {}
        self._next_token = 0

    def __len__(self) -> int:
        return len(self._waiting)

    def open(self, subject: str, timeout: float) -> tuple[str, defer.Deferred]:
        """A reply subject for a request on `subject`, and the Deferred its reply fires."""
        if self.subscription is None:
            self._prefix = new_inbox() + "."
            self.subscription = self._subscribe(self._prefix + "*", self._on_reply)
        self._next_token += 1
        token = str(self._next_token)
        waiting = self._waiting
        reply: defer.Deferred = defer.Deferred(canceller=lambda _: waiting.pop(token, None))
        waiting[token] = (reply, subject)
        reply.addTimeout(timeout, self._reactor, onTimeoutCancel=timeout_as(f"no reply to request on {subject!r}"))
        return self._prefix + token, reply

    def forget(self, reply_subject: str) -> None:
        """The request was never sent: stop waiting, and stop its timeout (nobody listens to it)."""
        entry = self._waiting.pop(reply_subject[len(self._prefix):], None)
        if entry is not None:
            reply, _subject = entry
            reply.addErrback(_cancelled_quietly)
            reply.cancel()

    def fail_all(self, error: Exception) -> None:
        waiting, self._waiting = self._waiting, {}
        for reply, _subject in waiting.values():
            reply.errback(error)

    def refused(self, error: PermissionViolationError) -> None:
        """The server refused a publish or a subscription: the requests it concerns fail now with
        `error` instead of timing out (all of them when it was the shared inbox)."""
        match = _VIOLATION.search(str(error))
        if match is None:
            return
        operation, subject = match.group(1).lower(), match.group(2)
        if operation == "subscription":
            if self.subscription is not None and subject == self._prefix + "*":
                self.fail_all(error)
            return
        for token, (reply, requested) in list(self._waiting.items()):
            if requested == subject:
                del self._waiting[token]
                reply.errback(error)

    def _on_reply(self, msg) -> None:
        entry = self._waiting.pop(msg.subject[len(self._prefix):], None)
        if entry is None:
            return  # timed out or cancelled already
        reply, subject = entry
        if msg.status == 503 and not msg.data:
            reply.errback(NoRespondersError(subject))
        else:
            reply.callback(msg)


def _cancelled_quietly(failure: Failure) -> None:
    failure.trap(defer.CancelledError)


def timeout_as(what: str):
    """An `addTimeout` onTimeoutCancel hook: the cancellation becomes `NatsTimeoutError`."""

    def timed_out(result, seconds):
        if isinstance(result, Failure):
            raise NatsTimeoutError(f"{what} within {seconds}s")
        return result

    return timed_out
