"""Waiting from a test's or a benchmark's own thread for something a subprocess does (no reactor involved)."""

from __future__ import annotations

import time


def wait_for(predicate, timeout: float = 15.0, what: str = "condition"):
    """The first truthy value of `predicate()`, polled; fail naming `what` if none came within
    `timeout` s (a bound that only stops a broken test from hanging)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
