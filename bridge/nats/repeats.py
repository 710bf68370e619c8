"""One log line for the first of a kind of problem, then one summary per interval.

A publisher that sends thousands of bad messages a second must not flood the journal (journald
rate-limits per service, which would silence the real errors too)."""

from __future__ import annotations

from twisted.logger import Logger


class RepeatSummary:
    """`add(**fields)` logs the first occurrence at once and counts the rest; every `interval`
    seconds with repeats, one line gives their number and the latest occurrence's fields."""

    def __init__(self, log: Logger, text: str, reactor, interval: float = 60.0):
        self._log = log
        self._text = text  # a twisted.logger format with {n} and the fields given to add()
        self._reactor = reactor
        self._interval = interval
        self._count = 0
        self._last: dict = {}
        self._timer = None

    def add(self, **fields) -> None:
        if self._timer is None:
            self._log.warn(self._text, n=1, **fields)
            self._timer = self._reactor.callLater(self._interval, self.flush)
            return
        self._count += 1
        self._last = fields

    def flush(self, *, again: bool = True) -> None:
        """Log the repeats counted so far (if any); `again=False` when nothing more will come."""
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        if self._count:
            self._log.warn(self._text, n=self._count, **self._last)
            self._count = 0
            if again:  # repeats keep coming: the next one is counted, not logged in full again
                self._timer = self._reactor.callLater(self._interval, self.flush)
