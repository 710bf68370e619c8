"""Waiting on the running reactor in Twisted tests. Every timeout here only stops a broken test
from hanging: it fails the test naming what never happened."""

from __future__ import annotations

from twisted.internet import defer, task


def running_reactor():
    """The global reactor, imported late: pytest-twisted installs it after test modules are imported."""
    from twisted.internet import reactor

    return reactor


async def wait_until(predicate, timeout: float = 10.0, what: str = "condition") -> None:
    """Poll `predicate` on the reactor; fail naming `what` if it is still false after `timeout` s."""
    for _ in range(int(timeout / 0.01)):
        if predicate():
            return
        await task.deferLater(running_reactor(), 0.01)
    raise AssertionError(f"{what} not reached within {timeout}s")


class TimedOut(AssertionError):
    """Something a test awaited neither succeeded nor failed in time."""


async def within(deferred: defer.Deferred, timeout: float, what: str, error: type[TimedOut] = TimedOut):
    """`await deferred`, cancelling it and failing with `error` naming `what` after `timeout` s."""
    try:
        return await deferred.addTimeout(timeout, running_reactor())
    except defer.TimeoutError:
        raise error(f"{what} did not complete within {timeout}s") from None
