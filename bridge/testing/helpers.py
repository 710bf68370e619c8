"""Helper processes: a long-running side of a test or benchmark (`python -m MODULE ...`) that
prints "ready" once it is set up, and is stopped by PID."""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import sys
from typing import Iterator

READY = "ready"


@contextlib.contextmanager
def helper_process(module: str, *args: object, timeout: float = 30.0, cwd: str | None = None
                   ) -> Iterator[subprocess.Popen]:
    """`python -m module args...`, yielded once it printed "ready"; stopped at exit."""
    command = [sys.executable, "-m", module, *map(str, args)]
    process = subprocess.Popen(command, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
    try:
        line = _readline(process, timeout)
        if line.strip() != READY:
            raise RuntimeError(f"{' '.join(command[2:])} did not get ready (exit {process.poll()}): {line!r}")
        yield process
    finally:
        stop(process)
        process.stdout.close()


def _readline(process: subprocess.Popen, timeout: float) -> str:
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            return ""
    return process.stdout.readline()


def stop(process: subprocess.Popen, timeout: float = 10.0) -> None:
    """SIGTERM by PID, SIGKILL if it does not go."""
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()


def announce_ready() -> None:
    """For helper processes: tell `helper_process()` the side is set up."""
    print(READY, flush=True)
