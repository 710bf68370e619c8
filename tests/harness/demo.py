"""`bridge demo` as a subprocess: what it prints, read line by line, and the commands it prints run
as a user would."""

from __future__ import annotations

import os
import queue
import re
import shlex
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
WAIT = 60.0  # only bounds a broken test


class DemoProcess:
    """`bridge demo ARGS` running; its stdout read on a thread so a test can wait for a line."""

    def __init__(self, args: list[str], log_path: Path):
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bridge", "demo", *args],
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
            text=True,
        )
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.printed: list[str] = []

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait_for_line(self, pattern: str) -> re.Match:
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                continue
            if line is None:
                break
            self.printed.append(line)
            found = re.search(pattern, line)
            if found:
                return found
        raise AssertionError(f"the demo never printed {pattern!r}; printed {self.printed}\n{self.logs()}")

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._log.close()


def process_exists(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def run_printed(command: str, exported: dict[str, str]) -> subprocess.CompletedProcess:
    """Run a command the banner printed, in a shell that did the banner's `export`s."""
    environment = {key: value for key, value in os.environ.items() if key != "NATS_URL"} | exported
    return subprocess.run(shlex.split(command), cwd=REPO, capture_output=True, text=True, timeout=WAIT,
                          env=environment)
