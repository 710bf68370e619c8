"""The sense-emu driver, headless: LEDs visible from another process, sensors, joystick, cleanup.

The emulator's state is machine-global (/dev/shm), so these tests hold an exclusive file lock
while they run; anything else that drives the emulator in tests should take the same lock.
"""

from __future__ import annotations

import os
import time

import pytest

sense_emu = pytest.importorskip("sense_emu", reason="sense-emu is not installed (pip install '.[emu]')")

from sense_emu.lock import EmulatorLock, lock_filename  # noqa: E402
from sense_emu.stick import StickServer  # noqa: E402

from bridge.actions import execute, parse_command  # noqa: E402
from bridge.config.model import POLLED_SENSORS, DeviceConfig  # noqa: E402
from bridge.devices import open_device  # noqa: E402
from bridge.devices.hat import ROTATION_MAPS  # noqa: E402
from bridge.devices.memory import MemoryDevice  # noqa: E402
from tests.harness.emulation import in_another_process, joystick_up_pressed, leds_seen_by_another_process  # noqa: E402

WAIT = 10.0  # only bounds a broken test


@pytest.fixture
def emulated(emulator_exclusive):
    device = open_device(DeviceConfig(id="emu", driver="sense-emu"))
    try:
        yield device
    finally:
        device.close()


def run(device, action, payload=b""):
    return execute(device, parse_command(action, payload, {}))


def test_headless_host_takes_the_lock_and_gives_it_back(emulator_exclusive):
    device = open_device(DeviceConfig(id="emu", driver="sense-emu"))
    try:
        assert EmulatorLock("sense_emu").mine
        assert device.driver == "sense-emu"
    finally:
        device.close()
    assert not os.path.exists(lock_filename())
    assert not os.path.exists(f"/dev/shm/rpi-sense-emu-client-{os.getpid()}")


def test_two_devices_in_one_process_share_the_host_until_the_last_closes(emulator_exclusive):
    first = open_device(DeviceConfig(id="emu", driver="sense-emu"))
    second = open_device(DeviceConfig(id="emu", driver="sense-emu"))
    first.close()
    first.close()  # closing twice must not count twice
    assert EmulatorLock("sense_emu").mine
    second.read("humidity")
    second.close()
    assert not os.path.exists(lock_filename())


@pytest.mark.parametrize("part", ["sense_emu.screen.init_screen", "sense_emu.imu.IMUServer"])
def test_a_host_that_fails_to_start_leaves_nothing_held(emulator_exclusive, monkeypatch, part):
    def fail():
        raise OSError("no space left in /dev/shm")

    monkeypatch.setattr(part, fail)
    with pytest.raises(OSError, match="no space left"):
        open_device(DeviceConfig(id="emu", driver="sense-emu"))
    assert not os.path.exists(lock_filename())
    monkeypatch.undo()
    # The failed open must not count as an open device, or this close would keep the host forever.
    open_device(DeviceConfig(id="emu", driver="sense-emu")).close()
    assert not os.path.exists(lock_filename())


def test_leds_are_visible_from_another_process(emulated):
    run(emulated, "clear", b'{"color": [0, 0, 0]}')
    run(emulated, "set_pixel", b'{"x": 2, "y": 1, "color": [255, 255, 255]}')
    run(emulated, "set_pixel", b'{"x": 7, "y": 7, "color": "#102030"}')
    seen = leds_seen_by_another_process()
    assert seen[1 * 8 + 2] == [248, 252, 248]  # RGB565 keeps 5/6/5 bits
    assert seen[63] == [16, 32, 48]
    assert sum(1 for p in seen if p != [0, 0, 0]) == 2
    assert run(emulated, "get_pixels") == seen


def test_rotation_maps_like_the_library_and_survives_show_message(emulated):
    run(emulated, "clear")
    run(emulated, "set_rotation", b"90")
    run(emulated, "show_message", b'{"text": "i", "scroll_speed": 0.001}')
    run(emulated, "clear")
    run(emulated, "set_pixel", b'{"x": 0, "y": 0, "color": [248, 0, 0]}')
    physical = leds_seen_by_another_process()  # rotation 0 there
    # numpy.rot90 of the 8x8 index grid puts logical (0, 0) on framebuffer index 7
    assert ROTATION_MAPS[90][0] == 7
    assert physical[7] == [248, 0, 0]
    assert emulated.get_pixels()[0] == [248, 0, 0]
    assert emulated.snapshot()[0] == (248, 0, 0)


def test_rotation_maps_match_numpy_rot90():
    numpy = pytest.importorskip("numpy", reason="numpy comes with sense-emu")
    grid = numpy.arange(64).reshape(8, 8)
    for rotation in (0, 90, 180, 270):
        assert ROTATION_MAPS[rotation] == tuple(numpy.rot90(grid, rotation // 90).flatten())


def test_same_commands_give_the_same_picture_as_the_memory_driver(emulated):
    # Colours chosen exact in RGB565 so both drivers must agree to the bit.
    script = [
        ("clear", b'{"color": [8, 4, 8]}'),
        ("set_pixel", b'{"x": 1, "y": 0, "color": [248, 0, 0]}'),
        ("set_pixel", b'{"x": 6, "y": 3, "color": [0, 252, 0]}'),
        ("set_rotation", b"180"),
        ("set_pixel", b'{"x": 0, "y": 7, "color": [0, 0, 248]}'),
        ("flip_h", b""),
        ("set_rotation", b"270"),
        ("flip_v", b""),
        ("set_pixel", b'{"x": 3, "y": 3, "color": "#f8fcf8"}'),
        ("set_rotation", b"0"),
    ]
    memory = MemoryDevice()
    for action, payload in script:
        run(memory, action, payload)
        run(emulated, action, payload)
        assert run(emulated, "get_pixels") == run(memory, "get_pixels"), action


def test_a_scroll_ends_on_the_back_colour(emulated):
    run(emulated, "show_message", b'{"text": "ab", "back_colour": [0, 0, 248], "scroll_speed": 0.001}')
    assert emulated.snapshot() == ((0, 0, 248),) * 64


def test_low_light_is_visible_from_another_process(emulated):
    run(emulated, "low_light", b"true")
    assert in_another_process("print(json.dumps(sense.low_light))") is True
    run(emulated, "low_light", b"false")
    assert in_another_process("print(json.dumps(sense.low_light))") is False


def test_sensors_give_plausible_values_with_units(emulated):
    readings = run(emulated, "read_sensors")
    assert sorted(readings) == sorted(POLLED_SENSORS)
    assert 10 < readings["temperature"] < 30
    assert 30 < readings["humidity"] < 60
    assert 990 < readings["pressure"] < 1040
    assert set(readings["orientation"]) == {"pitch", "roll", "yaw"}
    for sensor in ("accelerometer", "gyroscope", "compass"):
        assert set(readings[sensor]) == {"x", "y", "z"}
    assert emulated.read("pressure")[1] == "hPa"


def test_imu_readings_leave_orientation_fusion_alone(emulated):
    for sensor in ("compass", "gyroscope", "accelerometer"):
        emulated.read(sensor)
    hat = emulated._hat
    # get_compass() & co would have switched fusion to a single sensor for good
    assert (hat._compass_enabled, hat._gyro_enabled, hat._accel_enabled) == (True, True, True)


def test_joystick_events_from_the_emulator_stick(emulated):
    server = StickServer()
    try:
        # The client registers with the server about once a second; events sent before are lost,
        # so keep pressing until one arrives.
        events = []
        deadline = time.monotonic() + WAIT
        while not events and time.monotonic() < deadline:
            server.send(joystick_up_pressed())
            time.sleep(0.1)
            events = emulated.poll_joystick()
        assert events and set(events) == {("up", "pressed")}
    finally:
        server.close()


@pytest.mark.parametrize("rotation", [0, 90, 180, 270])
def test_show_message_draws_the_librarys_own_frames(emulated, rotation):
    """Our frame-by-frame scroll against the library's show_message: the same framebuffer after every frame."""
    import sense_emu.sense_hat as library

    hat = emulated._hat
    emulated.set_rotation(rotation)

    def framebuffers(scroll) -> list[bytes]:
        seen = []
        original = hat.set_pixels

        def recording(pixels):
            original(pixels)
            with open(hat._fb_device, "rb") as framebuffer:
                seen.append(framebuffer.read(128))

        hat.set_pixels = recording
        try:
            scroll()
        finally:
            del hat.set_pixels
        return seen

    for text, colour, back in [("Hi, 2!", (255, 0, 0), (0, 0, 8)), (" .|W", (8, 252, 0), (16, 16, 16))]:
        ours = framebuffers(lambda: emulated.show_message(text, colour, back, 0.0))
        sleep = library.time.sleep
        library.time.sleep = lambda seconds: None
        try:
            theirs = framebuffers(lambda: hat.show_message(text, 0.0, list(colour), list(back)))
        finally:
            library.time.sleep = sleep
        assert len(ours) == len(theirs) == 8 + sum(len(hat._trim_whitespace(hat._get_char_pixels(c))) // 8 + 1 for c in text)
        assert ours == theirs
    assert hat.rotation == rotation


def framebuffer_after(hat, draw) -> list[bytes]:
    """The framebuffer after each set_pixels that `draw` makes."""
    seen = []

    def recording(pixels):
        type(hat).set_pixels(hat, pixels)
        with open(hat._fb_device, "rb") as framebuffer:
            seen.append(framebuffer.read(128))

    hat.set_pixels = recording
    try:
        draw()
    finally:
        del hat.set_pixels
    return seen


@pytest.mark.parametrize("rotation", [0, 90, 180, 270])
def test_show_letter_draws_the_librarys_own_picture_for_each_of_its_characters(emulated, rotation):
    hat = emulated._hat
    emulated.set_rotation(rotation)
    colour, back = (248, 0, 0), (0, 0, 8)
    for char in hat._text_dict:
        ours = framebuffer_after(hat, lambda: emulated.show_letter(char, colour, back))
        theirs = framebuffer_after(hat, lambda: hat.show_letter(char, list(colour), list(back)))
        assert ours == theirs, char


def test_a_character_outside_the_librarys_font_scrolls_as_itself_not_as_a_question_mark(emulated):
    hat = emulated._hat
    white, black = (248, 252, 248), (0, 0, 0)
    degrees = framebuffer_after(hat, lambda: emulated.show_message("21°C", white, black, 0.0))
    question = framebuffer_after(hat, lambda: emulated.show_message("21?C", white, black, 0.0))
    library = framebuffer_after(hat, lambda: hat.show_message("21°C", 0.0, list(white), list(black)))
    assert degrees != question
    assert library == question  # what the library itself would have drawn
    # The third glyph starts at column 8 + (5 + 1) + (3 + 1) = 18, which frame 11 is the first to show.
    assert degrees[:11] == question[:11]


def test_show_letter_of_a_character_outside_the_librarys_font_draws_our_glyph(emulated):
    hat = emulated._hat
    memory = MemoryDevice()
    memory.show_letter("é", (248, 0, 0), (0, 0, 0))
    ours = framebuffer_after(hat, lambda: emulated.show_letter("é", (248, 0, 0), (0, 0, 0)))
    assert emulated.snapshot() == memory.snapshot()
    theirs = framebuffer_after(hat, lambda: hat.show_letter("é", [248, 0, 0], [0, 0, 0]))
    assert ours != theirs  # the library draws "?"


def test_show_message_stops_at_the_next_frame_once_interrupted(emulated):
    import threading

    interrupt = threading.Event()
    hat = emulated._hat
    drawn = []

    def draw_and_interrupt_during_the_third(picture):
        type(hat).set_pixels(hat, picture)
        drawn.append(picture)
        if len(drawn) == 3:
            interrupt.set()

    hat.set_pixels = draw_and_interrupt_during_the_third
    try:
        emulated.show_message("xx", (255, 255, 255), (0, 0, 0), 0.01, interrupt=interrupt)  # ~20 frames uninterrupted
    finally:
        del hat.set_pixels
    assert len(drawn) == 3
