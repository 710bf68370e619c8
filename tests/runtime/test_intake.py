"""A subscription's intake in memory: the token bucket on a fake clock, the limits it hands to
`parse_command`, and the summarised warnings about messages that were not applied."""

from __future__ import annotations

import pytest
from twisted.internet import task
from twisted.logger import Logger, formatEvent

from bridge.actions import PayloadError
from bridge.config.model import SubscriptionConfig
from bridge.devices.worker import Dropped
from bridge.runtime.intake import Intake, RateLimited, TokenBucket


class Now:
    """A settable monotonic clock."""

    def __init__(self, at=100.0):
        self.at = at

    def __call__(self):
        return self.at


def make(clock=None, interval=10.0, **options):
    events = []
    reactor = task.Clock()
    config = SubscriptionConfig(subject="s.x", action=options.pop("action", "show_message"), **options)
    intake = Intake(config, reactor, Logger(namespace="test", observer=events.append), clock=clock or Now(), interval=interval)
    return intake, reactor, events


def lines(events):
    return [formatEvent(event) for event in events]


def test_a_bucket_starts_full_and_then_refills_at_its_rate():
    clock = Now()
    bucket = TokenBucket(rate=2.0, burst=3, clock=clock)
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    clock.at += 0.25  # half a token
    assert not bucket.take()
    clock.at += 0.25  # the other half
    assert bucket.take()
    assert not bucket.take()


def test_a_bucket_saves_up_at_most_its_burst():
    clock = Now()
    bucket = TokenBucket(rate=10.0, burst=2, clock=clock)
    assert bucket.take() and bucket.take()
    clock.at += 60.0  # long enough for 600 tokens
    assert [bucket.take() for _ in range(3)] == [True, True, False]


def test_a_bucket_counts_time_from_its_last_take():
    clock = Now()
    bucket = TokenBucket(rate=1.0, burst=1, clock=clock)
    assert bucket.take()
    clock.at += 0.6
    assert not bucket.take()  # 0.6 of a token
    clock.at += 0.6
    assert bucket.take()  # 1.2: the refusal did not lose the time before it
    clock.at += 0.6
    assert not bucket.take()  # 0.2 left over + 0.6


def test_without_a_rate_every_message_passes():
    intake, _, _ = make(action="clear")
    assert intake.bucket is None
    assert [intake.command(b"").action for _ in range(1000)] == ["clear"] * 1000


def test_past_the_rate_a_message_is_dropped_saying_so():
    clock = Now()
    intake, _, _ = make(clock, action="clear", rate=0.5, burst=2)
    assert intake.command(b"").args == ((0, 0, 0),)
    intake.command(b"")
    with pytest.raises(RateLimited) as refused:
        intake.command(b"")
    assert isinstance(refused.value, Dropped)
    assert str(refused.value) == "clear: rate limited (rate 0.5/s, burst 2)"
    clock.at += 2.0
    assert intake.command(b"").action == "clear"


def test_the_burst_defaults_to_the_rate_per_second():
    intake, _, _ = make(action="clear", rate=3.0)
    for _ in range(3):
        intake.command(b"")
    with pytest.raises(RateLimited, match=r"rate 3/s, burst 3\)$"):
        intake.command(b"")


def test_commands_take_the_subscriptions_args_and_limits():
    intake, _, _ = make(action="clear", args={"color": [0, 0, 255]}, max_payload=30, locked=("color",))
    assert intake.command(b"").args == ((0, 0, 255),)
    with pytest.raises(PayloadError, match="more than this subscription's max_payload of 30"):
        intake.command(b" " * 31)
    with pytest.raises(PayloadError, match="color is locked"):
        intake.command(b'{"color": [255, 0, 0]}')


def test_max_scroll_applies_to_show_message_only():
    intake, _, _ = make(action="show_message", max_scroll=5.0)
    assert intake.limits.max_scroll == 5.0
    with pytest.raises(PayloadError, match="max_scroll of 5 s"):
        intake.command(b"a long text that takes far more than a second")
    assert intake.command(b"hi").args[0] == "hi"
    other, _, _ = make(action="clear", max_scroll=1.0)
    assert other.limits.max_scroll is None


def test_the_first_problem_is_logged_in_full_then_counted_per_interval():
    intake, reactor, events = make(interval=10.0)
    intake.not_applied("s.x", PayloadError("show_message: text is missing"))
    intake.not_applied("s.x", RateLimited("show_message: rate limited"))
    intake.not_applied("s.y", Dropped("queue full"))
    assert lines(events) == ["s.x: 1 message(s) not applied, the latest because: show_message: text is missing"]
    reactor.advance(9.9)
    assert len(events) == 1
    reactor.advance(0.1)
    assert lines(events)[1:] == ["s.y: 2 message(s) not applied, the latest because: queue full"]
    assert events[0]["log_level"].name == "warn"


def test_an_unexpected_error_is_named_by_its_type():
    intake, _, events = make()
    intake.not_applied("s.x", KeyError("text"))
    assert lines(events) == ["s.x: 1 message(s) not applied, the latest because: KeyError: 'text'"]
    again, _, events = make()
    again.not_applied("s.x", RuntimeError("show_message: device busy"))
    assert lines(events) == ["s.x: 1 message(s) not applied, the latest because: show_message: device busy"]


def test_command_args_share_the_rate_with_commands():
    intake, _, _ = make(action="clear", rate=0.5, burst=2)
    assert intake.command_args(b"") == ((0, 0, 0),)
    intake.command(b"")
    with pytest.raises(RateLimited, match=r"^clear: rate limited"):
        intake.command_args(b"")


def test_command_args_read_with_the_subscriptions_args_and_limits():
    pixel = b'{"x": 1, "y": 2, "color": [3, 4, 5]}'
    assert make(action="set_pixel")[0].command_args(pixel) == (1, 2, (3, 4, 5))
    assert make(action="set_pixel", args={"color": [9, 9, 9]})[0].command_args(b'{"x": 1, "y": 2}') == (1, 2, (9, 9, 9))
    with pytest.raises(PayloadError, match="^set_pixel: payload is 36 bytes, more than this subscription's max_payload of 20$"):
        make(action="set_pixel", max_payload=20)[0].command_args(pixel)
    with pytest.raises(PayloadError, match="^set_pixel: color is locked"):
        make(action="set_pixel", args={"color": [9, 9, 9]}, locked=("color",))[0].command_args(pixel)
    with pytest.raises(PayloadError, match="^set_pixel: x must be an integer 0..7"):
        make(action="set_pixel")[0].command_args(b'{"x": 8, "y": 0, "color": [0, 0, 0]}')
