"""Shared use of the sense-emu emulator in tests.

Its state is machine-global (fixed files under /dev/shm), so every test that drives it holds one
exclusive file lock while it runs, and removes the state files it created.
"""

from __future__ import annotations

import fcntl
import os

import pytest

EMULATOR_TEST_LOCK = "/tmp/nats-sense-bridge-sense-emu-tests.lock"
STATE_FILES = [f"/dev/shm/rpi-sense-emu-{name}" for name in ("screen", "humidity", "pressure", "imu")]


@pytest.fixture
def emulator_exclusive():
    """Serialise emulator use across test processes; remove state files this test created."""
    pytest.importorskip("sense_emu", reason="sense-emu is not installed (pip install '.[emu]')")
    from sense_emu.lock import EmulatorLock

    with open(EMULATOR_TEST_LOCK, "w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        if EmulatorLock("sense_emu")._is_held() and not EmulatorLock("sense_emu")._is_stale():
            pytest.skip("an emulator GUI or another bridge is driving sense-emu on this machine right now")
        existed = {path for path in STATE_FILES if os.path.exists(path)}
        try:
            yield
        finally:
            for path in STATE_FILES:
                if path not in existed and os.path.exists(path):
                    os.unlink(path)
