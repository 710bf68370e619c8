"""The one small interface every driver implements, and what drivers share.

All methods except `snapshot` and `poll_joystick` block and must run on the
device's worker thread. Arguments arrive already validated and normalised by `bridge.actions`
(colours as (r, g, b) tuples of ints 0..255, x/y 0..7, rotation 0/90/180/270).
"""

from __future__ import annotations

import math
import threading
from abc import ABC, abstractmethod
from typing import Any, Sequence

Colour = tuple[int, int, int]

SENSOR_UNITS = {
    "temperature": "°C",
    "humidity": "%RH",
    "pressure": "hPa",
    "orientation": "°",
    "accelerometer": "g",
    "gyroscope": "rad/s",
    "compass": "µT",
    "cpu_temperature": "°C",
    "temperature_from_humidity": "°C",
    "temperature_from_pressure": "°C",
}
# The SoC's temperature in millidegrees Celsius, as the Linux thermal driver reports it.
THERMAL_ZONE = "/sys/class/thermal/thermal_zone0/temp"


class DeviceUnavailable(Exception):
    """The driver cannot reach its device; str() is one sentence fit for a start-up error."""


class Device(ABC):
    driver: str

    @abstractmethod
    def show_message(self, text: str, text_colour: Colour, back_colour: Colour, scroll_speed: float,
                     interrupt: threading.Event | None = None) -> None:
        """Scroll text; on hardware this takes about (6 × characters + 8) × scroll_speed seconds.

        Once `interrupt` is set the scroll stops at its next frame and the call returns.
        """

    @abstractmethod
    def show_letter(self, letter: str, text_colour: Colour, back_colour: Colour) -> None: ...

    @abstractmethod
    def set_pixel(self, x: int, y: int, colour: Colour) -> None: ...

    @abstractmethod
    def set_pixels(self, pixels: Sequence[Colour]) -> None: ...

    @abstractmethod
    def get_pixels(self) -> list[list[int]]:
        """64 [r, g, b] lists, row by row, as the current rotation presents them."""

    @abstractmethod
    def clear(self, colour: Colour) -> None: ...

    @abstractmethod
    def set_rotation(self, rotation: int) -> None:
        """Turn the display; the picture is redrawn so it stays upright for the viewer."""

    @abstractmethod
    def flip_h(self) -> None: ...

    @abstractmethod
    def flip_v(self) -> None: ...

    @abstractmethod
    def set_low_light(self, enabled: bool) -> None:
        """Dim the LEDs (a gamma table made for dark rooms) or return to full brightness."""

    _low_light = False
    _rotation = 0

    @property
    def low_light(self) -> bool:
        return self._low_light

    @low_light.setter
    def low_light(self, enabled: bool) -> None:
        self.set_low_light(enabled)

    @property
    def rotation(self) -> int:
        return self._rotation

    @abstractmethod
    def read(self, sensor: str) -> tuple[Any, str]:
        """(value, unit) for one of POLLED_SENSORS; orientation and the IMU sensors give dicts."""

    def read_many(self, sensors: Sequence[str]) -> dict[str, tuple[Any, str]]:
        """Several readings in one blocking call: the inputs of a compensated reading, taken together."""
        return {sensor: self.read(sensor) for sensor in sensors}

    @abstractmethod
    def poll_joystick(self) -> list[tuple[str, str]]:
        """(direction, action) events since the last poll; never blocks, safe from any thread."""

    @abstractmethod
    def snapshot(self) -> tuple[Colour, ...]:
        """The 64 colours shown right now, like get_pixels but safe and cheap from any thread.

        Meant for the web view, which may call it while the worker thread is scrolling text.
        """

    @abstractmethod
    def close(self) -> None: ...

    def run_batch(self, method: str, calls: Sequence[tuple]) -> list[tuple[int, Exception]]:
        """`method(*args)` for each argument tuple in order, as one blocking call (the hang
        watchdog watches it once, not per call): the (position, exception) of each call that
        raised; the others went through."""
        run = getattr(self, method)
        failures = []
        for position, args in enumerate(calls):
            try:
                run(*args)
            except Exception as error:
                failures.append((position, error))
        return failures


def rounded(value: Any, digits: int) -> Any:
    """Round a reading (a number or a dict of numbers) to a precision the sensor actually has."""
    if isinstance(value, dict):
        return {key: round(float(item), digits) for key, item in value.items()}
    return round(float(value), digits)


def read_thermal_zone(path: str) -> float:
    """The CPU temperature in °C from a thermal zone file; NaN (a failed read) when it cannot be read."""
    try:
        with open(path, encoding="ascii") as zone:
            return round(int(zone.read().strip()) / 1000, 2)
    except (OSError, ValueError):
        return math.nan
