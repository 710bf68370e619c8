"""Helpers for the in-memory tests of the NATS client (tests/nats/test_pool.py and its siblings)."""

from __future__ import annotations

from twisted.internet import defer
from twisted.logger import capturedLogs, formatEvent


def logged() -> "capturedLogs":
    """Capture log events; `[formatEvent(e) for e in events]` gives their text."""
    return capturedLogs()


def texts(events) -> list[str]:
    return [formatEvent(event) for event in events]


def failure_of(deferred: defer.Deferred) -> Exception:
    failures = []
    deferred.addErrback(failures.append)
    assert failures, "the Deferred has not failed"
    return failures[0].value


def result_of(deferred: defer.Deferred):
    results = []
    deferred.addBoth(results.append)
    assert results, "the Deferred has not fired"
    return results[0]
