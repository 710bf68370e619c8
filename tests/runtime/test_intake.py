"""A subscription's rate limit on a task.Clock: how many messages a burst lets through, when a token
comes back, and what a message past the rate is told."""

from __future__ import annotations

import pytest
from twisted.internet import task
from twisted.logger import Logger

from bridge.config.model import SubscriptionConfig
from bridge.runtime.intake import Intake, RateLimited, TokenBucket


def test_a_burst_lets_that_many_through_then_one_token_comes_back_per_period():
    clock = task.Clock()
    bucket = TokenBucket(rate=5, burst=3, clock=clock.seconds)
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    clock.advance(0.19)
    assert bucket.take() is False
    clock.advance(0.01)
    assert [bucket.take() for _ in range(2)] == [True, False]


def test_saved_tokens_never_exceed_the_burst():
    clock = task.Clock()
    bucket = TokenBucket(rate=5, burst=3, clock=clock.seconds)
    clock.advance(60)
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]


def test_a_message_past_the_rate_is_refused_saying_the_rate_and_burst():
    clock = task.Clock()
    intake = Intake(SubscriptionConfig(subject="t.clear", action="clear", rate=2, burst=1), clock, Logger(),
                    clock=clock.seconds)
    intake.command(b"")
    with pytest.raises(RateLimited, match=r"^clear: rate limited \(rate 2/s, burst 1\)$"):
        intake.command(b"")
    clock.advance(0.5)
    assert intake.command(b"").action == "clear"


def test_without_a_rate_nothing_is_limited():
    clock = task.Clock()
    intake = Intake(SubscriptionConfig(subject="t.clear", action="clear"), clock, Logger(), clock=clock.seconds)
    assert [intake.command(b"").action for _ in range(1000)] == ["clear"] * 1000
