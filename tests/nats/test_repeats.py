"""repeats.py in memory: a repeated log line summarised once per period."""

from __future__ import annotations

from twisted.internet import task

from bridge.nats.repeats import RepeatSummary


class _Log:
    def __init__(self):
        self.lines: list = []

    def warn(self, text, **fields):
        self.lines.append((text, fields))


def test_repeat_summary_logs_the_first_then_one_line_per_interval():
    """Guards RepeatSummary.add counting repeats instead of logging each, and flush() re-arming
    its timer only when repeats came (`if again`)."""
    log, clock = _Log(), task.Clock()
    summary = RepeatSummary(log, "{n} {subject}", clock, interval=60)
    for i in range(1000):
        summary.add(subject=f"s{i}")
    assert log.lines == [("{n} {subject}", {"n": 1, "subject": "s0"})]
    clock.advance(59.9)
    assert len(log.lines) == 1
    clock.advance(0.1)
    assert log.lines[1:] == [("{n} {subject}", {"n": 999, "subject": "s999"})]
    assert [c.getTime() for c in clock.getDelayedCalls()] == [120]  # repeats came: re-armed
    clock.advance(60)  # nothing new: no line, and the timer stops
    assert len(log.lines) == 2 and not clock.getDelayedCalls()
    summary.add(subject="again")  # after a quiet interval: logged at once
    assert log.lines[-1] == ("{n} {subject}", {"n": 1, "subject": "again"})
    summary.add(subject="last")
    summary.flush(again=False)
    assert log.lines[-1] == ("{n} {subject}", {"n": 1, "subject": "last"}) and not clock.getDelayedCalls()
    summary.flush(again=False)  # nothing counted since: no line
    assert len(log.lines) == 4
    summary.add(subject="after")  # flushed for good, yet a new one still gets its first line
    assert log.lines[-1] == ("{n} {subject}", {"n": 1, "subject": "after"})


def test_repeat_summary_interval_defaults_to_a_minute_and_flush_keeps_counting():
    log, clock = _Log(), task.Clock()
    summary = RepeatSummary(log, "{n}", clock)
    summary.add(k=1)
    assert [c.getTime() for c in clock.getDelayedCalls()] == [60.0]
    summary.add(k=2)
    summary.add(k=3)
    clock.advance(10)
    summary.flush()  # early, but repeats keep coming: the timer is re-armed from now
    assert log.lines[-1] == ("{n}", {"n": 2, "k": 3})
    assert [c.getTime() for c in clock.getDelayedCalls()] == [70.0]
    summary.add(k=4)
    assert len(log.lines) == 2  # counted, not logged in full
    clock.advance(60)
    assert log.lines[-1] == ("{n}", {"n": 1, "k": 4})
