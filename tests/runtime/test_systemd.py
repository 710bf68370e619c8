"""sd_notify for `Type=notify`: bridge/runtime/systemd.py on its own, then `bridge run` as systemd sees it.

The end-to-end tests bind the datagram socket systemd would (`$NOTIFY_SOCKET`), run the bridge as a
subprocess with `WATCHDOG_USEC=200000` and read what it says: WATCHDOG=1 every 0.1 s from the start,
READY=1 only once a nats-server is up and the bridge answers on bridge.ID.info, STOPPING=1 on SIGTERM.
"""

from __future__ import annotations

import os
import socket
import time

import pytest
from twisted.logger import capturedLogs

from bridge.runtime.systemd import Notifier, socket_address, watchdog_interval
from bridge.testing.bridgeproc import BridgeProcess, memory_config
from bridge.testing.outside import OutsideClient


class Listener:
    """The systemd side: a bound AF_UNIX datagram socket, one message per datagram."""

    def __init__(self, address):
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.socket.bind(address)
        self.received: list[dict[str, str]] = []

    def receive(self, timeout: float) -> dict[str, str] | None:
        self.socket.settimeout(timeout)
        try:
            data = self.socket.recv(4096)
        except socket.timeout:
            return None
        message = dict(line.split("=", 1) for line in data.decode().splitlines())
        self.received.append(message)
        return message

    def wait_for(self, key: str, timeout: float) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            message = self.receive(left)
            if message is not None and key in message:
                return message
        raise AssertionError(f"no {key}= within {timeout}s; got {self.received}")

    def close(self) -> None:
        self.socket.close()


# --- the module on its own --------------------------------------------------------------------


def test_socket_address_forms():
    assert socket_address("/run/systemd/notify") == "/run/systemd/notify"
    assert socket_address("@bridge/notify") == b"\0bridge/notify"
    assert socket_address(None) is None
    assert socket_address("") is None
    assert socket_address("vsock:2:1234") is None


def test_unset_notify_socket_sends_nothing():
    notifier = Notifier.from_environment({})
    assert not notifier.enabled
    notifier.notify(READY="1")  # no socket, no error
    assert notifier._socket is None


def test_abstract_socket_gets_the_datagram():
    name = f"@bridge-test-{os.getpid()}-{time.monotonic_ns()}"
    listener = Listener(b"\0" + name[1:].encode())
    notifier = Notifier.from_environment({"NOTIFY_SOCKET": name})
    try:
        notifier.notify(READY="1", STATUS="running")
        assert listener.receive(2.0) == {"READY": "1", "STATUS": "running"}
    finally:
        notifier.close()
        listener.close()


def test_path_socket_gets_the_datagram(tmp_path):
    path = str(tmp_path / "notify")
    listener = Listener(path)
    notifier = Notifier.from_environment({"NOTIFY_SOCKET": path})
    try:
        notifier.notify(STOPPING="1")
        assert listener.receive(2.0) == {"STOPPING": "1"}
    finally:
        notifier.close()
        listener.close()


def test_nobody_listening_is_logged_once_never_raised(tmp_path):
    notifier = Notifier(str(tmp_path / "gone"))
    with capturedLogs() as events:
        notifier.notify(WATCHDOG="1")  # systemd may restart under us: never an exception
        notifier.notify(WATCHDOG="1")
    notifier.close()
    warnings = [event for event in events if "cannot notify systemd" in event.get("log_format", "")]
    assert len(warnings) == 1, events


@pytest.mark.parametrize(
    "environ, expected",
    [
        ({"WATCHDOG_USEC": "30000000"}, 15.0),
        ({"WATCHDOG_USEC": "200000", "WATCHDOG_PID": "4242"}, 0.1),
        ({"WATCHDOG_USEC": "200000", "WATCHDOG_PID": "4243"}, None),  # another process's watchdog
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
        ({}, None),
    ],
)
def test_watchdog_interval_is_half_of_watchdog_usec_for_this_pid(environ, expected):
    assert watchdog_interval(environ, 4242) == expected


# --- `bridge run` under a notify socket -------------------------------------------------------


def config_text(url: str, device_id: str) -> str:
    return memory_config(url, device_id, f"  - {{subject: t.{device_id}.clear, action: clear}}\n")


@pytest.fixture
def notify_socket(tmp_path, monkeypatch):
    path = tmp_path / "notify"
    listener = Listener(str(path))
    # BridgeProcess hands the bridge this process's environment, as systemd hands it its own.
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    monkeypatch.setenv("WATCHDOG_USEC", "200000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    yield listener
    listener.close()


def test_ready_only_when_connected_then_watchdog_then_stopping(notify_socket, nats_flavour, tmp_path):
    server = nats_flavour.server()  # its port is chosen; it starts later
    bridge = BridgeProcess(config_text(server.url, "notified"), tmp_path, "notified").start()
    try:
        # No server yet: the reactor runs (watchdog pings) but the bridge is not ready.
        first = time.monotonic()
        notify_socket.wait_for("WATCHDOG", timeout=20)
        pings = 0
        while time.monotonic() - first < 3:
            message = notify_socket.receive(0.5)
            assert message is None or "READY" not in message, f"READY=1 before any server was up: {message}"
            pings += message is not None and "WATCHDOG" in message
        assert pings >= 5, f"WATCHDOG=1 every 0.1 s expected, got {pings} in about 2 s: {notify_socket.received}"

        server.start()
        ready = notify_socket.wait_for("READY", timeout=20)
        assert ready["READY"] == "1"
        assert server.url.split("//")[1] in ready.get("STATUS", ""), ready
        with OutsideClient(server.url) as outside:
            # Subscribed by the time READY=1 went out: the info request is answered at once.
            assert bridge.info(outside, timeout=2.0)["device"] == "notified"

        # After READY the watchdog keeps going.
        notify_socket.wait_for("WATCHDOG", timeout=2)
        notify_socket.wait_for("WATCHDOG", timeout=2)

        bridge.signal(15)
        stopping = notify_socket.wait_for("STOPPING", timeout=10)
        assert stopping["STOPPING"] == "1"
        assert bridge.stop() == 0
    finally:
        bridge.kill()
        server.cleanup()


def test_no_notify_socket_runs_as_before(nats_server, tmp_path, monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    monkeypatch.setenv("WATCHDOG_USEC", "200000")
    bridge = BridgeProcess(config_text(nats_server.url, "plain"), tmp_path, "plain").start()
    try:
        with OutsideClient(nats_server.url) as outside:
            bridge.wait_ready(outside)
        assert bridge.stop() == 0
    finally:
        bridge.kill()
