"""A Device over a `SenseHat` object from the `sense_hat` or `sense_emu` library (same API).

The drivers in sensehat.py and emulator.py only differ in how they obtain that object and what
they release on close.
"""

from __future__ import annotations

import struct
import threading
import time
from typing import Any, Callable, Sequence

from bridge.devices import scroll
from bridge.devices.base import SENSOR_UNITS, THERMAL_ZONE, Colour, Device, read_thermal_zone, rounded

_FRAMEBUFFER_PIXELS = struct.Struct("=64H")  # RGB565, physical order


def _rotate_left(grid: list[list[int]]) -> list[list[int]]:
    # numpy.rot90, which the libraries use for their pixel maps
    return [[grid[column][7 - row] for column in range(8)] for row in range(8)]


def _rotation_maps() -> dict[int, tuple[int, ...]]:
    grid = [[row * 8 + column for column in range(8)] for row in range(8)]
    maps = {}
    for rotation in (0, 90, 180, 270):
        maps[rotation] = tuple(index for row in grid for index in row)
        grid = _rotate_left(grid)
    return maps


# Logical pixel index (as set_pixel/get_pixels see it) -> framebuffer index, per rotation.
ROTATION_MAPS = _rotation_maps()


def _decode_rgb565(value: int) -> Colour:
    return ((value >> 11) << 3, ((value >> 5) & 0x3F) << 2, (value & 0x1F) << 3)


class SenseHatDevice(Device):
    def __init__(self, hat: Any, driver: str, on_close: Callable[[], None] = lambda: None):
        self._hat = hat
        self.driver = driver
        self._on_close = on_close
        self._closed = False
        # The libraries keep no public name for their framebuffer; both call it _fb_device.
        self._framebuffer = hat._fb_device
        self._rotation = hat.rotation
        self._low_light = hat.low_light
        self.thermal_zone = THERMAL_ZONE

    # -- display --------------------------------------------------------------------------

    def show_message(self, text: str, text_colour: Colour, back_colour: Colour, scroll_speed: float,
                     interrupt: threading.Event | None = None) -> None:
        # The library's frames in the bridge's font (scroll.py), stepped here so that `interrupt` can end them.
        hat = self._hat
        for picture in scroll.frames(text, text_colour, back_colour):
            hat.set_pixels(picture)
            if interrupt is None:
                time.sleep(scroll_speed)
            elif interrupt.wait(scroll_speed):
                return

    def show_letter(self, letter: str, text_colour: Colour, back_colour: Colour) -> None:
        # The library's own show_letter would draw a character outside its font as "?".
        self._hat.set_pixels(scroll.letter(letter, text_colour, back_colour))

    def set_pixel(self, x: int, y: int, colour: Colour) -> None:
        self._hat.set_pixel(x, y, colour)

    def set_pixels(self, pixels: Sequence[Colour]) -> None:
        self._hat.set_pixels(pixels)

    def get_pixels(self) -> list[list[int]]:
        return [list(colour) for colour in self.snapshot()]

    def clear(self, colour: Colour) -> None:
        self._hat.clear(colour)

    def set_rotation(self, rotation: int) -> None:
        self._hat.set_rotation(rotation)
        self._rotation = rotation

    def flip_h(self) -> None:
        self._hat.flip_h()

    def flip_v(self) -> None:
        self._hat.flip_v()

    def set_low_light(self, enabled: bool) -> None:
        self._hat.low_light = enabled
        self._low_light = enabled

    def snapshot(self) -> tuple[Colour, ...]:
        # Read the framebuffer directly rather than through the library: show_message turns the
        # library's rotation while it scrolls, and this runs on other threads meanwhile.
        with open(self._framebuffer, "rb") as framebuffer:
            physical = _FRAMEBUFFER_PIXELS.unpack(framebuffer.read(_FRAMEBUFFER_PIXELS.size))
        return tuple(_decode_rgb565(physical[index]) for index in ROTATION_MAPS[self._rotation])

    # -- sensors --------------------------------------------------------------------------

    def read(self, sensor: str) -> tuple[Any, str]:
        unit = SENSOR_UNITS[sensor]
        hat = self._hat
        if sensor == "temperature":
            return rounded(hat.get_temperature(), 2), unit
        if sensor == "humidity":
            return rounded(hat.get_humidity(), 2), unit
        if sensor == "pressure":
            return rounded(hat.get_pressure(), 2), unit
        if sensor == "temperature_from_humidity":
            return rounded(hat.get_temperature_from_humidity(), 2), unit
        if sensor == "temperature_from_pressure":
            return rounded(hat.get_temperature_from_pressure(), 2), unit
        if sensor == "cpu_temperature":
            return read_thermal_zone(self.thermal_zone), unit
        if sensor == "orientation":
            return rounded(hat.get_orientation_degrees(), 2), unit
        # The *_raw getters leave the IMU configuration alone; get_compass() and friends would
        # switch fusion to one sensor for good and break later orientation readings.
        if sensor == "accelerometer":
            return rounded(hat.get_accelerometer_raw(), 4), unit
        if sensor == "gyroscope":
            return rounded(hat.get_gyroscope_raw(), 4), unit
        return rounded(hat.get_compass_raw(), 2), unit

    # -- joystick -------------------------------------------------------------------------

    def poll_joystick(self) -> list[tuple[str, str]]:
        return [(event.direction, event.action) for event in self._hat.stick.get_events()]

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._hat.stick.close()
        finally:
            self._on_close()
