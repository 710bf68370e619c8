"""A publication's `filters:` and `compensate:` as typed values, and the rules the schema cannot express.

The schema checks each filter's shape (names, numbers, windows 1..100, at most 8 per publication);
`filter_issues` checks what depends on the sensor or on several values at once. The filters
themselves run in `bridge.telemetry.filters`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Iterator, Union

from bridge.names import VECTOR_SENSORS

MAX_FILTERS = 8
MAX_WINDOW = 100
VECTOR_COMPONENTS = {
    "orientation": ("pitch", "roll", "yaw"),
    "accelerometer": ("x", "y", "z"),
    "gyroscope": ("x", "y", "z"),
    "compass": ("x", "y", "z"),
}
ALL_COMPONENTS = ("x", "y", "z", "pitch", "roll", "yaw")
# Averaging angles that wrap at 360° is wrong: the mean of 359° and 1° is not 180°.
AVERAGING = ("moving_average", "exponential_moving_average", "median")
COMPENSATION_INPUTS = ("temperature_from_humidity", "temperature_from_pressure", "cpu_temperature")

Amount = Union[float, tuple[tuple[str, float], ...]]  # one number, or (component, number) pairs for a vector


@dataclass(frozen=True)
class Offset:
    amount: Amount


@dataclass(frozen=True)
class Multiply:
    factor: Amount


@dataclass(frozen=True)
class CalibrateLinear:
    points: tuple[tuple[float, float], ...]  # (measured, true), measured strictly increasing


@dataclass(frozen=True)
class MovingAverage:
    window: int = 5
    send_every: int = 1
    send_first_at: int = 1


@dataclass(frozen=True)
class ExponentialMovingAverage:
    alpha: float = 0.1
    send_every: int = 1
    send_first_at: int = 1


@dataclass(frozen=True)
class Median:
    window: int = 5
    send_every: int = 1
    send_first_at: int = 1


@dataclass(frozen=True)
class Clamp:
    min: float | None = None
    max: float | None = None
    ignore_out_of_range: bool = False  # drop the reading instead of clamping it


@dataclass(frozen=True)
class Round:
    digits: int


@dataclass(frozen=True)
class Throttle:
    seconds: float


@dataclass(frozen=True)
class Delta:
    amount: float


FilterConfig = Union[Offset, Multiply, CalibrateLinear, MovingAverage, ExponentialMovingAverage, Median, Clamp, Round,
                     Throttle, Delta]
FILTERS: dict[str, type] = {
    "offset": Offset,
    "multiply": Multiply,
    "calibrate_linear": CalibrateLinear,
    "moving_average": MovingAverage,
    "exponential_moving_average": ExponentialMovingAverage,
    "median": Median,
    "clamp": Clamp,
    "round": Round,
    "throttle": Throttle,
    "delta": Delta,
}


@dataclass(frozen=True)
class CompensateConfig:
    """`compensate: cpu`: Home Assistant's sensehat correction of the heat the Pi's CPU puts into the HAT."""

    method: str = "cpu"
    factor: float = 1.5
    samples: int = 3  # readings averaged, as Home Assistant does


def _amount(value: Any) -> Amount:
    if isinstance(value, dict):
        return tuple((component, float(number)) for component, number in value.items())
    return float(value)


def to_filter(entry: dict, parse_duration) -> FilterConfig:
    """One checked `filters:` entry (a one-key mapping) as its typed value."""
    (name, value), = entry.items()
    if name == "offset":
        return Offset(_amount(value))
    if name == "multiply":
        return Multiply(_amount(value))
    if name == "calibrate_linear":
        return CalibrateLinear(tuple((float(measured), float(true)) for measured, true in value))
    if name == "round":
        return Round(int(value))
    if name == "throttle":
        return Throttle(parse_duration(value))
    if name == "delta":
        return Delta(float(value))
    if name == "clamp":
        return Clamp(min=None if value.get("min") is None else float(value["min"]),
                     max=None if value.get("max") is None else float(value["max"]),
                     ignore_out_of_range=value.get("ignore_out_of_range", False))
    if name == "exponential_moving_average":
        return ExponentialMovingAverage(**{key: float(item) if key == "alpha" else item for key, item in value.items()})
    return FILTERS[name](**value)


def filter_to_plain(config: FilterConfig, format_duration) -> dict:
    """A filter as the config file spells it: `to_filter` undone (for `bridge validate --print`)."""
    name = next(name for name, kind in FILTERS.items() if isinstance(config, kind))
    if isinstance(config, (Offset, Multiply)):
        amount = config.amount if isinstance(config, Offset) else config.factor
        return {name: dict(amount) if isinstance(amount, tuple) else amount}
    if isinstance(config, CalibrateLinear):
        return {name: [list(point) for point in config.points]}
    if isinstance(config, Round):
        return {name: config.digits}
    if isinstance(config, Throttle):
        return {name: format_duration(config.seconds)}
    if isinstance(config, Delta):
        return {name: config.amount}
    options = dataclasses.asdict(config)
    if isinstance(config, Clamp):
        options = {key: value for key, value in options.items() if value is not None}
    return {name: options}


def to_compensate(value: Any) -> CompensateConfig:
    if isinstance(value, str):
        return CompensateConfig(method=value)
    return CompensateConfig(method=value.get("method", CompensateConfig.method),
                            factor=float(value.get("factor", CompensateConfig.factor)),
                            samples=value.get("samples", CompensateConfig.samples))


Found = Iterator[tuple[tuple, str]]  # (path inside the publication, message)


def filter_issues(sensor: Any, filters: Any) -> Found:
    """Problems of a `filters:` list for `sensor` that the schema does not see."""
    if not isinstance(filters, list):
        return
    if sensor == "joystick":
        yield ("filters",), "the joystick sends events, not numbers: filters do not apply; remove 'filters'"
        return
    vector = sensor in VECTOR_SENSORS
    for index, entry in enumerate(filters):
        if not isinstance(entry, dict) or len(entry) != 1:
            continue
        (name, value), = entry.items()
        path = ("filters", index, name)
        if name in ("offset", "multiply") and isinstance(value, dict):
            if not vector:
                yield path, (f"a mapping of components applies to a vector sensor; {sensor!r} is one number: "
                             f"give {name} a number")
            elif sensor in VECTOR_COMPONENTS:
                components = VECTOR_COMPONENTS[sensor]
                for component in value:
                    if component not in components and component in ALL_COMPONENTS:  # others: the schema's error
                        yield path + (component,), (f"{sensor!r} has no component {component!r}; "
                                                    f"it has {', '.join(components)}")
        elif name == "calibrate_linear" and vector:
            yield path, (f"calibrate_linear maps one measured number to a true one; {sensor!r} is a vector: "
                         "use offset or multiply with a mapping per component")
        elif name == "calibrate_linear" and isinstance(value, list):
            yield from _calibration_issues(path, value)
        elif name in AVERAGING and sensor == "orientation":
            yield path, (f"{name} would average angles that wrap at 360° (359° and 1° average to 180°); "
                         "use delta or throttle on orientation")
        elif name in ("moving_average", "exponential_moving_average", "median") and isinstance(value, dict):
            send_every, send_first_at = value.get("send_every", 1), value.get("send_first_at", 1)
            if isinstance(send_every, int) and isinstance(send_first_at, int) and send_first_at > send_every:
                yield path + ("send_first_at",), (f"send_first_at ({send_first_at}) must be at most send_every "
                                                  f"({send_every})")
        elif name == "clamp" and isinstance(value, dict):
            low, high = value.get("min"), value.get("max")
            if low is None and high is None:
                yield path, "clamp needs min, max or both"
            elif isinstance(low, (int, float)) and isinstance(high, (int, float)) and low > high:
                yield path + ("max",), f"max ({high}) must be at least min ({low})"


def _calibration_issues(path: tuple, points: list) -> Found:
    measured = [point[0] for point in points
                if isinstance(point, list) and len(point) == 2 and isinstance(point[0], (int, float))]
    if len(measured) != len(points):
        return  # the schema reports malformed points
    for index in range(1, len(measured)):
        if measured[index] <= measured[index - 1]:
            yield path + (index, 0), (f"measured values must increase from point to point: {measured[index]} "
                                      f"follows {measured[index - 1]}")


def compensate_issues(sensor: Any, compensate: Any) -> Found:
    if compensate is not None and sensor != "temperature":
        yield ("compensate",), (f"compensate corrects the Sense HAT's temperature; it does not apply to {sensor!r} "
                                "(use it on sensor: temperature)")


def may_hold_back(filters: tuple[FilterConfig, ...]) -> bool:
    """Can the chain keep a steady sensor silent indefinitely (so a `heartbeat` cannot help)?"""
    return any(isinstance(item, Delta) or (isinstance(item, Clamp) and item.ignore_out_of_range) for item in filters)


def longest_gap(interval: float, filters: tuple[FilterConfig, ...]) -> float:
    """The longest time between two readings out of the chain, when it does not hold them back."""
    gap = interval
    for item in filters:
        if isinstance(item, (MovingAverage, ExponentialMovingAverage, Median)):
            gap *= item.send_every
        elif isinstance(item, Throttle):
            gap = max(gap, item.seconds + interval)
    return gap
