"""A Sense HAT in memory: 8×8 state and simulated sensors, for tests, demos and benchmarks.

It sits on the benchmark path (tens of thousands of set_pixel commands), so each display call is a
couple of list operations. A scroll is recorded, not stepped: after show_message the display holds
the back colour at once, which is also where a real scroll ends. show_letter draws the letter as
the hardware drivers do.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections import deque
from typing import Any, Callable, Sequence

from bridge.devices import scroll
from bridge.devices.base import SENSOR_UNITS, Colour, Device, rounded

BLACK = (0, 0, 0)
JOYSTICK_DIRECTIONS = ("up", "down", "left", "right", "middle")
JOYSTICK_ACTIONS = ("pressed", "released", "held")


class MemoryDevice(Device):
    driver = "memory"

    def __init__(self, rotation: int = 0, low_light: bool = False, clock: Callable[[], float] = time.monotonic):
        # Logical picture (as get_pixels presents it); rotation only changes how hardware maps it,
        # and set_rotation redraws so the logical picture stays the same.
        self._pixels: list[Colour] = [BLACK] * 64
        self._rotation = rotation
        self._low_light = low_light
        self.messages: list[str] = []  # every show_message text, oldest first
        self.letters: list[str] = []  # every show_letter letter, oldest first
        self._joystick: deque[tuple[str, str]] = deque()
        self._pinned: dict[str, Any] = {}
        self._clock = clock
        self._started = clock()
        self._noise = random.Random()
        self.closed = False

    # -- display --------------------------------------------------------------------------

    def show_message(self, text: str, text_colour: Colour, back_colour: Colour, scroll_speed: float,
                     interrupt: threading.Event | None = None) -> None:
        self.messages.append(text)
        self._pixels = [back_colour] * 64

    def show_letter(self, letter: str, text_colour: Colour, back_colour: Colour) -> None:
        self.letters.append(letter)
        self._pixels = scroll.letter(letter, text_colour, back_colour)

    def set_pixel(self, x: int, y: int, colour: Colour) -> None:
        self._pixels[y * 8 + x] = colour

    def set_pixels(self, pixels: Sequence[Colour]) -> None:
        self._pixels = list(pixels)

    def get_pixels(self) -> list[list[int]]:
        return [list(colour) for colour in self._pixels]

    def clear(self, colour: Colour) -> None:
        self._pixels = [colour] * 64

    def set_rotation(self, rotation: int) -> None:
        self._rotation = rotation

    def flip_h(self) -> None:
        pixels = self._pixels
        self._pixels = [colour for row in range(8) for colour in reversed(pixels[row * 8 : row * 8 + 8])]

    def flip_v(self) -> None:
        pixels = self._pixels
        self._pixels = [colour for row in reversed(range(8)) for colour in pixels[row * 8 : row * 8 + 8]]

    def set_low_light(self, enabled: bool) -> None:
        self._low_light = enabled

    def snapshot(self) -> tuple[Colour, ...]:
        return tuple(self._pixels)

    # -- sensors --------------------------------------------------------------------------

    def set_sensor(self, sensor: str, value: Any) -> None:
        """Pin a sensor to a value (None lets it drift again): lets tests drive change/heartbeat."""
        if sensor not in SENSOR_UNITS:
            raise ValueError(f"unknown sensor {sensor!r}; known: {', '.join(SENSOR_UNITS)}")
        if value is None:
            self._pinned.pop(sensor, None)
        else:
            self._pinned[sensor] = value

    def read(self, sensor: str) -> tuple[Any, str]:
        unit = SENSOR_UNITS[sensor]  # KeyError names the unknown sensor
        if sensor in self._pinned:
            return self._pinned[sensor], unit
        return self._simulate(sensor, self._clock() - self._started), unit

    def _wave(self, elapsed: float, period: float, amplitude: float, noise: float, phase: float = 0.0) -> float:
        return amplitude * math.sin(2 * math.pi * elapsed / period + phase) + self._noise.gauss(0, noise)

    def _simulate(self, sensor: str, elapsed: float) -> Any:
        # Slow waves around a room's typical values, with a little sensor noise on top.
        wave = self._wave
        if sensor == "temperature":
            return rounded(21.0 + wave(elapsed, 900, 1.5, 0.03), 2)
        # A real HAT sits above the CPU and reads warm: these are what Home Assistant's correction
        # (mean of the two, minus (cpu - mean) / 1.5) turns back into the room's 21 °C.
        if sensor == "temperature_from_humidity":
            return rounded(29.1 + wave(elapsed, 900, 1.5, 0.03), 2)
        if sensor == "temperature_from_pressure":
            return rounded(28.1 + wave(elapsed, 900, 1.5, 0.03), 2)
        if sensor == "cpu_temperature":
            return rounded(40.0 + wave(elapsed, 900, 1.5, 0.05), 2)
        if sensor == "humidity":
            return rounded(45.0 + wave(elapsed, 1200, 5.0, 0.1, 1.0), 2)
        if sensor == "pressure":
            return rounded(1013.25 + wave(elapsed, 3600, 2.0, 0.02, 2.0), 2)
        yaw = (elapsed * 0.5) % 360.0
        if sensor == "orientation":
            pitch = wave(elapsed, 120, 2.0, 0.05) % 360.0
            roll = wave(elapsed, 150, 2.0, 0.05, 1.0) % 360.0
            # -0.001 % 360 is 359.999, which rounds to 360.0: wrap again after rounding.
            return {axis: angle % 360.0 for axis, angle in rounded({"pitch": pitch, "roll": roll, "yaw": yaw}, 2).items()}
        if sensor == "accelerometer":
            return rounded({"x": wave(elapsed, 120, 0.02, 0.002), "y": wave(elapsed, 150, 0.02, 0.002), "z": 1.0 + wave(elapsed, 90, 0.005, 0.002)}, 4)
        if sensor == "gyroscope":
            return rounded({"x": wave(elapsed, 60, 0.01, 0.002), "y": wave(elapsed, 70, 0.01, 0.002), "z": 0.5 * math.pi / 180 + wave(elapsed, 80, 0.001, 0.001)}, 4)
        heading = math.radians(yaw)
        return rounded({"x": 30.0 * math.cos(heading), "y": -30.0 * math.sin(heading), "z": -40.0 + wave(elapsed, 300, 0.5, 0.2)}, 2)

    # -- joystick -------------------------------------------------------------------------

    def push_joystick(self, direction: str, action: str = "pressed") -> None:
        """Queue a joystick event as if the stick moved; safe from any thread."""
        if direction not in JOYSTICK_DIRECTIONS:
            raise ValueError(f"joystick direction must be one of {', '.join(JOYSTICK_DIRECTIONS)}, got {direction!r}")
        if action not in JOYSTICK_ACTIONS:
            raise ValueError(f"joystick action must be one of {', '.join(JOYSTICK_ACTIONS)}, got {action!r}")
        self._joystick.append((direction, action))

    def poll_joystick(self) -> list[tuple[str, str]]:
        events = []
        queue = self._joystick
        while queue:
            events.append(queue.popleft())
        return events

    def close(self) -> None:
        self.closed = True
