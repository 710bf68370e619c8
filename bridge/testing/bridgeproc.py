"""`bridge run` as a real subprocess, the way systemd runs it, for end-to-end tests."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nats.errors


class BridgeProcess:
    def __init__(self, config_text: str, folder: Path, device_id: str, extra_args: tuple[str, ...] = ()):
        self.config_path = folder / f"{device_id}.yml"
        self.config_path.write_text(config_text)
        self.log_path = folder / f"{device_id}.log"
        self.device_id = device_id
        self.extra_args = extra_args
        self.process: subprocess.Popen | None = None

    def start(self) -> "BridgeProcess":
        self._log = open(self.log_path, "ab")
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bridge", "run", str(self.config_path), "--log-format", "json", *self.extra_args],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        return self

    @contextlib.contextmanager
    def running(self, outside):
        """Started and answering `bridge.ID.info` inside the block, stopped after it."""
        self.start()
        try:
            self.wait_ready(outside)
            yield self
        finally:
            self.stop()

    def rewrite_config(self, config_text: str) -> None:
        self.config_path.write_text(config_text)

    def signal(self, signum: int) -> None:
        os.kill(self.process.pid, signum)

    def wait_ready(self, outside, timeout: float = 30.0) -> dict:
        """Until the bridge answers on bridge.ID.info (it is connected and subscribed)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"bridge exited with {self.process.returncode}:\n{self.logs()}")
            try:
                return self.info(outside, timeout=1.0)
            except (nats.errors.TimeoutError, nats.errors.NoRespondersError):
                time.sleep(0.1)
        raise AssertionError(f"bridge not ready within {timeout}s:\n{self.logs()}")

    def info(self, outside, timeout: float = 5.0) -> dict:
        return json.loads(outside.request(f"bridge.{self.device_id}.info", b"", timeout=timeout).data)

    def log_records(self) -> list[dict]:
        records = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            try:
                records.append(json.loads(line))
            except ValueError:
                records.append({"message": line})
        return records

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, timeout: float = 20.0) -> int:
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise AssertionError(f"bridge did not stop on SIGTERM within {timeout}s:\n{self.logs()}")
        self._log.close()
        return self.process.returncode

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


FAST_RECONNECT = "{initial_delay: 50ms, max_delay: 500ms}"


def memory_config(servers: str | list[str], device_id: str, subscriptions: str = "", publications: str = "",
                  fleet: str | None = None, reconnect: str | None = FAST_RECONNECT) -> str:
    """A `bridge run` config for the memory driver, servers in a fixed order; `subscriptions` /
    `publications` are YAML list items, `fleet` a flow mapping (a bootstrap file), `reconnect` a
    flow mapping (None: the defaults a user gets)."""
    servers = [servers] if isinstance(servers, str) else servers
    text = "version: 1\n" + (f"fleet: {fleet}\n" if fleet else "") + f"""\
device:
  id: {device_id}
  driver: memory
nats:
  servers: {json.dumps(servers)}
  randomize: false
"""
    if reconnect is not None:
        text += f"  reconnect: {reconnect}\n"
    if subscriptions:
        text += f"subscriptions:\n{subscriptions}"
    if publications:
        text += f"publications:\n{publications}"
    return text
