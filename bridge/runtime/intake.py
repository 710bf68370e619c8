"""One subscription's door: what a message must pass before it becomes a device command.

In order: the rate limit (a token bucket; past it the message is dropped with "rate limited"),
then `actions.parse_command` with the subscription's limits (max_payload before anything is
decoded, locked args, max_scroll); a batch needs only each command's arguments, read by the
subscription's `actions.args_parser`. Warnings about messages that were not applied go through one
`RepeatSummary` per subscription: the first in full, then a count per interval.
"""

from __future__ import annotations

import time
from typing import Callable, Mapping

from twisted.logger import Logger

from bridge.actions import NO_LIMITS, Command, Limits, args_parser, parse_command
from bridge.config.model import SubscriptionConfig
from bridge.devices.worker import Dropped
from bridge.display.model import Picture
from bridge.nats.repeats import RepeatSummary

SCROLLING_ACTIONS = ("show_message", "notify", "app")  # those whose text max_scroll caps
SUMMARY_INTERVAL = 10.0  # seconds between two summary lines of one subscription


class RateLimited(Dropped):
    """A message past the subscription's rate; counted as dropped."""


class TokenBucket:
    """`rate` tokens a second, at most `burst` saved up; each message takes one."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic):
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock()

    def take(self) -> bool:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False


class Intake:
    def __init__(self, config: SubscriptionConfig, reactor, log: Logger,
                 clock: Callable[[], float] = time.monotonic, interval: float = SUMMARY_INTERVAL,
                 icons: Mapping[str, Picture] = NO_LIMITS.icons):
        self.config = config
        scrolls = config.action in SCROLLING_ACTIONS
        self.limits = Limits(config.max_payload, config.max_scroll if scrolls else None, frozenset(config.locked),
                             icons)
        self.bucket = None if config.rate is None else TokenBucket(config.rate, config.burst_size, clock)
        self._parse_args = args_parser(config.action, config.args, self.limits)
        self.problems = RepeatSummary(
            log, "{subject}: {n} message(s) not applied, the latest because: {error}", reactor, interval)

    def command(self, payload: bytes) -> Command:
        """The device command, or RateLimited / PayloadError (a bug in parsing: any other exception)."""
        self._take_token()
        return parse_command(self.config.action, payload, self.config.args, self.limits)

    def command_args(self, payload: bytes) -> tuple:
        """`command(payload).args`, for a batch of one action."""
        self._take_token()
        return self._parse_args(payload)

    def _take_token(self) -> None:
        if self.bucket is not None and not self.bucket.take():
            raise RateLimited(f"{self.config.action}: rate limited (rate {self.config.rate:g}/s, "
                              f"burst {self.bucket.burst})")

    def not_applied(self, subject: str, error: BaseException) -> None:
        text = str(error) if isinstance(error, (ValueError, RuntimeError, Dropped)) else f"{type(error).__name__}: {error}"
        self.problems.add(subject=subject, error=text)
