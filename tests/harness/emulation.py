"""Shared use of the sense-emu emulator in tests.

Its state is machine-global (fixed files under /dev/shm), so every test that drives it holds one
exclusive file lock while it runs, and removes the state files it created. Also here: looking at
the emulated HAT from another process, and pressing its joystick.
"""

from __future__ import annotations

import importlib.util
import json
import os
import struct
import subprocess
import sys
import time

import pytest

from bridge.testing.emulator import emulator_lock

STATE_FILES = [f"/dev/shm/rpi-sense-emu-{name}" for name in ("screen", "humidity", "pressure", "imu")]


@pytest.fixture
def emulator_exclusive():
    """Serialise emulator use across test processes; remove state files this test created."""
    pytest.importorskip("sense_emu", reason="sense-emu is not installed (pip install '.[emu]')")
    from sense_emu.lock import EmulatorLock

    with emulator_lock():
        if EmulatorLock("sense_emu")._is_held() and not EmulatorLock("sense_emu")._is_stale():
            pytest.skip("an emulator GUI or another bridge is driving sense-emu on this machine right now")
        existed = {path for path in STATE_FILES if os.path.exists(path)}
        try:
            yield
        finally:
            for path in STATE_FILES:
                if path not in existed and os.path.exists(path):
                    os.unlink(path)


@pytest.fixture
def emulator_if_installed(request):
    """The demo drives sense-emu when it is installed: then share the emulator lock with its tests."""
    if importlib.util.find_spec("sense_emu") is not None:
        request.getfixturevalue("emulator_exclusive")


def in_another_process(code: str):
    """Run `code` in a fresh Python with sense = sense_emu.SenseHat(); it prints JSON we return."""
    script = (
        "import json, os, warnings\n"
        "warnings.simplefilter('ignore')\n"
        "import sense_emu\n"
        "sense = sense_emu.SenseHat()\n"
        f"{code}\n"
        # the library never removes the joystick client socket it binds per process
        "os.unlink(f'/dev/shm/rpi-sense-emu-client-{os.getpid()}')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def leds_seen_by_another_process() -> list:
    return in_another_process("print(json.dumps(sense.get_pixels()))")


def joystick_up_pressed() -> bytes:
    """The evdev event sense_emu.stick.StickServer sends when the stick is pushed up."""
    return struct.pack("llHHI", int(time.time()), 0, 0x01, 103, 1)  # EV_KEY, KEY_UP, pressed
