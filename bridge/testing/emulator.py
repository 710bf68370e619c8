"""Shared use of the sense-emu emulator: its state is machine-global (fixed files under /dev/shm),
so every test or benchmark that drives it holds one exclusive file lock while it runs."""

from __future__ import annotations

import contextlib
import fcntl
from typing import Iterator

EMULATOR_LOCK_FILE = "/tmp/nats-sense-bridge-sense-emu-tests.lock"


@contextlib.contextmanager
def emulator_lock() -> Iterator[None]:
    """Wait for, then hold, the emulator until the block ends."""
    with open(EMULATOR_LOCK_FILE, "w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        yield
