"""The in-memory device: display state, rotation/flip semantics, simulated sensors, joystick."""

from __future__ import annotations

import threading

import pytest

from bridge.config.model import POLLED_SENSORS, DeviceConfig
from bridge.devices import SENSOR_UNITS, DeviceUnavailable, open_device
from bridge.devices.memory import MemoryDevice

RED = (255, 0, 0)
GREEN = (0, 255, 0)
BLUE = (0, 0, 255)
BLACK = (0, 0, 0)


def test_open_device_picks_memory_and_applies_the_config():
    device = open_device(DeviceConfig(id="t", driver="memory", rotation=180, low_light=True))
    assert isinstance(device, MemoryDevice)
    assert device.driver == "memory"
    assert device.rotation == 180 and device.low_light is True


def test_open_device_rejects_an_unknown_driver_in_one_sentence():
    with pytest.raises(DeviceUnavailable, match=r"^unknown driver 'lcd'; choose sense-hat, sense-emu or memory$"):
        open_device(DeviceConfig(id="t", driver="lcd"))


def test_pixels_start_black_and_are_addressed_row_by_row():
    device = MemoryDevice()
    assert device.get_pixels() == [[0, 0, 0]] * 64
    device.set_pixel(3, 2, RED)
    pixels = device.get_pixels()
    assert pixels[2 * 8 + 3] == [255, 0, 0]
    assert sum(1 for p in pixels if p != [0, 0, 0]) == 1


def test_set_pixels_clear_and_snapshot():
    device = MemoryDevice()
    picture = [(i, i, i) for i in range(64)]
    device.set_pixels(picture)
    assert device.snapshot() == tuple(picture)
    assert device.get_pixels() == [list(c) for c in picture]
    device.clear(GREEN)
    assert device.snapshot() == (GREEN,) * 64


def test_flips_mirror_rows_and_columns():
    device = MemoryDevice()
    device.set_pixel(0, 0, RED)
    device.set_pixel(1, 7, BLUE)
    device.flip_h()
    assert device.snapshot()[7] == RED and device.snapshot()[7 * 8 + 6] == BLUE
    device.flip_v()
    assert device.snapshot()[7 * 8 + 7] == RED and device.snapshot()[6] == BLUE


def test_rotation_keeps_the_picture_upright_like_the_library_redraw():
    device = MemoryDevice()
    device.set_pixel(0, 0, RED)
    device.set_rotation(90)
    assert device.rotation == 90
    assert device.snapshot()[0] == RED


def test_show_message_is_recorded_and_ends_on_the_back_colour():
    device = MemoryDevice()
    device.set_pixel(4, 4, RED)
    device.show_message("hello", (255, 255, 255), BLUE, 0.1)
    assert device.messages == ["hello"]
    assert device.snapshot() == (BLUE,) * 64


def picture_of(rows: list[str], lit, back) -> tuple:
    return tuple(lit if char == "#" else back for row in rows for char in row)


def test_show_letter_draws_the_letter_where_the_library_puts_it():
    device = MemoryDevice()
    device.show_letter("A", RED, GREEN)
    assert device.letters == ["A"]
    assert device.snapshot() == picture_of([
        "........",
        "..###...",
        ".#...#..",
        ".#...#..",
        ".#####..",
        ".#...#..",
        ".#...#..",
        ".#...#..",
    ], RED, GREEN)


def test_show_letter_draws_a_character_outside_the_librarys_font():
    device = MemoryDevice()
    device.show_letter("°", RED, BLACK)
    assert device.snapshot() == picture_of([
        "........",
        "..#.....",
        ".#.#....",
        "..#.....",
        "........",
        "........",
        "........",
        "........",
    ], RED, BLACK)


def test_low_light_property_and_setter():
    device = MemoryDevice()
    device.low_light = True
    assert device.low_light is True
    device.set_low_light(False)
    assert device.low_light is False


@pytest.mark.parametrize("sensor", POLLED_SENSORS)
def test_every_polled_sensor_has_a_unit_and_a_plausible_value(sensor):
    device = MemoryDevice()
    value, unit = device.read(sensor)
    assert unit == SENSOR_UNITS[sensor]
    plausible = {
        "temperature": lambda v: 15 < v < 30,
        "humidity": lambda v: 30 < v < 60,
        "temperature_from_humidity": lambda v: 25 < v < 33,
        "temperature_from_pressure": lambda v: 25 < v < 33,
        "cpu_temperature": lambda v: 35 < v < 45,
        "pressure": lambda v: 1000 < v < 1030,
        "orientation": lambda v: set(v) == {"pitch", "roll", "yaw"} and all(0 <= a < 360 for a in v.values()),
        "accelerometer": lambda v: set(v) == {"x", "y", "z"} and 0.9 < v["z"] < 1.1,
        "gyroscope": lambda v: set(v) == {"x", "y", "z"} and all(abs(a) < 0.2 for a in v.values()),
        "compass": lambda v: set(v) == {"x", "y", "z"} and 20 < (v["x"] ** 2 + v["y"] ** 2 + v["z"] ** 2) ** 0.5 < 80,
    }[sensor]
    assert plausible(value), value


def test_sensors_vary_slowly_over_time():
    now = [0.0]
    device = MemoryDevice(clock=lambda: now[0])
    first, _ = device.read("temperature")
    now[0] = 1.0
    second, _ = device.read("temperature")
    now[0] = 225.0  # a quarter of the temperature wave
    later, _ = device.read("temperature")
    assert abs(second - first) < 0.5
    assert later - first > 1.0


def test_set_sensor_pins_a_value_until_released():
    device = MemoryDevice()
    device.set_sensor("humidity", 80.0)
    assert device.read("humidity") == (80.0, "%RH")
    device.set_sensor("humidity", None)
    assert device.read("humidity")[0] != 80.0
    with pytest.raises(ValueError, match="unknown sensor 'humidty'"):
        device.set_sensor("humidty", 1.0)


def test_joystick_events_come_out_in_order_once():
    device = MemoryDevice()
    assert device.poll_joystick() == []
    device.push_joystick("up")
    device.push_joystick("middle", "released")
    assert device.poll_joystick() == [("up", "pressed"), ("middle", "released")]
    assert device.poll_joystick() == []
    with pytest.raises(ValueError, match="direction must be one of"):
        device.push_joystick("north")
    with pytest.raises(ValueError, match="action must be one of"):
        device.push_joystick("up", "tapped")


def test_joystick_events_pushed_from_other_threads_are_not_lost():
    device = MemoryDevice()
    pushers = [threading.Thread(target=lambda: [device.push_joystick("left") for _ in range(500)]) for _ in range(4)]
    for pusher in pushers:
        pusher.start()
    seen = []
    while any(p.is_alive() for p in pushers):
        seen += device.poll_joystick()
    for pusher in pushers:
        pusher.join()
    seen += device.poll_joystick()
    assert len(seen) == 2000


def test_close_marks_the_device_closed():
    device = MemoryDevice()
    device.close()
    assert device.closed


def test_orientation_angles_stay_below_360_after_rounding():
    """-0.001 % 360 is 359.999, which rounds to 360.0: the device wraps again after rounding."""
    now = [0.0]
    device = MemoryDevice(clock=lambda: now[0])
    for step in range(5000):
        now[0] = step * 0.013
        angles, _ = device.read("orientation")
        assert all(0 <= angle < 360 for angle in angles.values()), (now[0], angles)
