"""The config file's `web:` block reaches the running web view: `bridge run` as a subprocess, asked
over raw HTTP from outside the process."""

from __future__ import annotations

import socket
import time

from bridge.testing.bridgeproc import BridgeProcess
from bridge.testing.nats_server import NatsServer, free_port


def http_status(port: int, host: str) -> int:
    request = f"GET /state HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request)
        head = sock.recv(64)
    return int(head.split(b" ", 2)[1])


def wait_for_view(port: int, process: BridgeProcess, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.process.poll() is not None:
            raise AssertionError(f"bridge exited with {process.process.returncode}:\n{process.logs()}")
        try:
            http_status(port, f"localhost:{port}")
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"web view not serving on {port} within {timeout}s:\n{process.logs()}")


def test_names_listed_in_web_hosts_are_answered_and_others_refused(tmp_path):
    port = free_port()
    with NatsServer() as server:
        config = f"""\
version: 1
device: {{id: webcfg, driver: memory}}
nats: {{servers: ["{server.url}"]}}
web: {{listen: "127.0.0.1:{port}", hosts: [pi-kitchen.local], max_clients: 2, stall_timeout: 5s}}
"""
        process = BridgeProcess(config, tmp_path, "webcfg").start()
        try:
            wait_for_view(port, process)
            assert http_status(port, f"pi-kitchen.local:{port}") == 200
            assert http_status(port, f"pi-hall.local:{port}") == 421
        finally:
            assert process.stop() == 0, process.logs()
