"""Filters on a publication's readings, ESPHome's names and meanings: pure objects with state.

`feed(value, now)` takes a reading (a number, or a mapping of components for the vector sensors)
and the publication's monotonic time, and returns the value to pass on, or None to drop this
reading. `FilterChain` runs them in order and never lets a NaN or infinity through.

On vectors, the numeric filters work on each component with their own state (a window per
component); a component dropped drops the whole reading. `throttle` looks at the whole reading and
`delta` at the size of the change (the Euclidean length of the per-component differences, angles
taken the short way round).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import deque
from typing import Any, Callable, Sequence

from bridge.config import filters as spec

Value = Any  # float, or dict[str, float] for a vector


class Filter:
    def feed(self, value: Value, now: float) -> Value | None:
        raise NotImplementedError


class NumberFilter(Filter):
    """A filter that works on one number; on a vector, one instance per component."""

    def feed(self, value: float, now: float) -> float | None:
        raise NotImplementedError


class Scale(NumberFilter):
    """`offset` (add) and `multiply`: with a per-component amount on vectors."""

    def __init__(self, amount: float, multiply: bool):
        self.amount = amount
        self.multiply = multiply

    def feed(self, value, now):
        return value * self.amount if self.multiply else value + self.amount


class CalibrateLinear(NumberFilter):
    """Piecewise linear through (measured, true) points; outside them, the end segments extended."""

    def __init__(self, points: Sequence[tuple[float, float]]):
        self.measured = [measured for measured, _ in points]
        self.true = [true for _, true in points]

    def feed(self, value, now):
        segment = min(max(bisect_right(self.measured, value) - 1, 0), len(self.measured) - 2)
        x0, x1 = self.measured[segment], self.measured[segment + 1]
        y0, y1 = self.true[segment], self.true[segment + 1]
        return y0 + (value - x0) * (y1 - y0) / (x1 - x0)


class SendEvery:
    """ESPHome's `send_every`/`send_first_at`: the first output at the send_first_at-th input, then every N-th."""

    def __init__(self, send_every: int, send_first_at: int):
        self.send_every = send_every
        self.count = send_every - send_first_at

    def due(self) -> bool:
        self.count += 1
        if self.count >= self.send_every:
            self.count = 0
            return True
        return False


class Window(NumberFilter):
    """`moving_average` and `median` over the last `window` inputs (fewer until it has filled)."""

    def __init__(self, window: int, send_every: int, send_first_at: int, summary: Callable[[Sequence[float]], float]):
        self.values: deque[float] = deque(maxlen=window)
        self.sending = SendEvery(send_every, send_first_at)
        self.summary = summary

    def feed(self, value, now):
        self.values.append(value)
        return self.summary(self.values) if self.sending.due() else None


class ExponentialMovingAverage(NumberFilter):
    def __init__(self, alpha: float, send_every: int, send_first_at: int):
        self.alpha = alpha
        self.average: float | None = None
        self.sending = SendEvery(send_every, send_first_at)

    def feed(self, value, now):
        if self.average is None:
            self.average = value
        else:
            self.average = self.alpha * value + (1 - self.alpha) * self.average
        return self.average if self.sending.due() else None


class Clamp(NumberFilter):
    def __init__(self, low: float | None, high: float | None, drop: bool):
        self.low = -math.inf if low is None else low
        self.high = math.inf if high is None else high
        self.drop = drop

    def feed(self, value, now):
        if self.low <= value <= self.high:
            return value
        if self.drop:
            return None
        return min(max(value, self.low), self.high)


class Round(NumberFilter):
    def __init__(self, digits: int):
        self.digits = digits

    def feed(self, value, now):
        return round(value, self.digits)


class PerComponent(Filter):
    """A number filter on each component of a vector, each with its own state."""

    def __init__(self, make: Callable[[str], NumberFilter]):
        self.make = make
        self.filters: dict[str, NumberFilter] = {}

    def feed(self, value, now):
        if not isinstance(value, dict):
            return self._filter("").feed(value, now)
        out = {component: self._filter(component).feed(number, now) for component, number in value.items()}
        return None if any(number is None for number in out.values()) else out

    def _filter(self, component: str) -> NumberFilter:
        if component not in self.filters:
            self.filters[component] = self.make(component)
        return self.filters[component]


class Throttle(Filter):
    """Pass a reading only when at least `seconds` have passed since the last one passed."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.last_passed: float | None = None

    def feed(self, value, now):
        if self.last_passed is not None and now - self.last_passed < self.seconds:
            return None
        self.last_passed = now
        return value


class Delta(Filter):
    """Pass a reading only when it moved at least `amount` from the last one passed."""

    def __init__(self, amount: float, angles: bool):
        self.amount = amount
        self.angles = angles
        self.last_passed: Value | None = None

    def feed(self, value, now):
        if self.last_passed is not None and change(self.last_passed, value, self.angles) < self.amount:
            return None
        self.last_passed = value
        return value


def change(previous: Value, current: Value, angles: bool = False) -> float:
    """How far a reading moved: the difference of numbers, the Euclidean length for vectors."""
    if not isinstance(current, dict):
        return abs(current - previous)
    total = 0.0
    for component, number in current.items():
        moved = abs(number - previous.get(component, number))
        if angles:
            moved %= 360
            moved = min(moved, 360 - moved)
        total += moved * moved
    return math.sqrt(total)


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def median(values: Sequence[float]) -> float:
    """The middle value; for an even count, the mean of the middle two."""
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def _amount_for(amount: spec.Amount, component: str, neutral: float) -> float:
    if isinstance(amount, tuple):
        return dict(amount).get(component, neutral)
    return amount


def build(config: spec.FilterConfig, sensor: str) -> Filter:
    """The running filter for one configured entry."""
    if isinstance(config, spec.Offset):
        return PerComponent(lambda component: Scale(_amount_for(config.amount, component, 0.0), multiply=False))
    if isinstance(config, spec.Multiply):
        return PerComponent(lambda component: Scale(_amount_for(config.factor, component, 1.0), multiply=True))
    if isinstance(config, spec.CalibrateLinear):
        return PerComponent(lambda component: CalibrateLinear(config.points))
    if isinstance(config, spec.MovingAverage):
        return PerComponent(lambda component: Window(config.window, config.send_every, config.send_first_at,
                                                     mean))
    if isinstance(config, spec.Median):
        return PerComponent(lambda component: Window(config.window, config.send_every, config.send_first_at,
                                                     median))
    if isinstance(config, spec.ExponentialMovingAverage):
        return PerComponent(lambda component: ExponentialMovingAverage(config.alpha, config.send_every,
                                                                       config.send_first_at))
    if isinstance(config, spec.Clamp):
        return PerComponent(lambda component: Clamp(config.min, config.max, config.ignore_out_of_range))
    if isinstance(config, spec.Round):
        return PerComponent(lambda component: Round(config.digits))
    if isinstance(config, spec.Throttle):
        return Throttle(config.seconds)
    if isinstance(config, spec.Delta):
        return Delta(config.amount, angles=sensor == "orientation")
    raise ValueError(f"unknown filter {config!r}")


def is_finite(value: Value) -> bool:
    numbers = value.values() if isinstance(value, dict) else (value,)
    return all(isinstance(number, (int, float)) and math.isfinite(number) for number in numbers)


class FilterChain:
    """A publication's filters in order. A NaN or infinity, read or computed, is dropped where it
    appears and counted in `invalid`; no filter after it sees it."""

    def __init__(self, configs: Sequence[spec.FilterConfig], sensor: str):
        self.configs = tuple(configs)
        self.filters = [build(config, sensor) for config in configs]
        self.invalid = 0

    def feed(self, value: Value, now: float) -> Value | None:
        if not is_finite(value):
            self.invalid += 1
            return None
        for item in self.filters:
            value = item.feed(value, now)
            if value is None:
                return None
            if not is_finite(value):
                self.invalid += 1
                return None
        return value
