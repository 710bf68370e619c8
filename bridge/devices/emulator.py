"""The `sense-emu` driver: the Raspberry Pi Foundation's Sense HAT emulator, GUI or headless.

The emulator's state lives in files under /dev/shm that every process on the machine shares. When
no emulator GUI (or other host) holds the emulator lock, this process becomes the host: it takes
the lock and runs the library's own screen/humidity/pressure/IMU servers, so `SenseHat()` neither
spawns the GTK GUI nor fails on sensors, and other processes see the same LEDs.
"""

from __future__ import annotations

import os
import threading

from bridge.devices.base import DeviceUnavailable
from bridge.devices.hat import SenseHatDevice


class _HeadlessHost:
    """The lock and sensor servers this process runs while no GUI does."""

    def __init__(self, lock, servers):
        self._lock = lock
        self._servers = servers

    def close(self) -> None:
        try:
            for server in self._servers:
                server.close()
        finally:
            self._lock.release()


# One host per process, shared by every emulator device opened here (the emulator is machine-global).
_guard = threading.Lock()
_host: _HeadlessHost | None = None
_open_devices = 0


def _headless_host() -> _HeadlessHost | None:
    """Host the emulator here, or None when a live GUI or another bridge already does."""
    # sense_emu is optional: imported once the sense-emu driver is chosen (open_emulator checks it is there)
    from sense_emu.humidity import HumidityServer
    from sense_emu.imu import IMUServer
    from sense_emu.lock import EmulatorLock
    from sense_emu.pressure import PressureServer
    from sense_emu.screen import init_screen

    lock = EmulatorLock("sense_emu")
    try:
        lock.acquire()  # breaks a stale lock left by a dead process
    except FileExistsError:
        return None
    servers = []
    try:
        init_screen().close()
        for server_class in (HumidityServer, PressureServer, IMUServer):
            servers.append(server_class())
    except BaseException:
        _HeadlessHost(lock, servers).close()
        raise
    return _HeadlessHost(lock, servers)


def _start_host_if_needed() -> None:
    global _host, _open_devices
    with _guard:
        if _host is None:
            _host = _headless_host()
        # Counted only once the host is up: a failed start leaves nothing for _device_closed to undo.
        _open_devices += 1


def _device_closed() -> None:
    global _host, _open_devices
    from sense_emu.stick import stick_address

    with _guard:
        _open_devices -= 1
        if _open_devices:
            return
        host, _host = _host, None
        if host is not None:
            host.close()
        # SenseHat() binds a joystick client socket named after this process and never removes it.
        client_socket = os.path.join(os.path.dirname(stick_address()[2]), f"rpi-sense-emu-client-{os.getpid()}")
        try:
            os.unlink(client_socket)
        except FileNotFoundError:
            pass


def open_emulator() -> SenseHatDevice:
    try:
        import sense_emu  # optional: `pip install 'nats-sense-bridge[emu]'`
    except ImportError:
        raise DeviceUnavailable(
            "driver sense-emu needs the sense_emu library, which is not installed "
            "(pip install 'nats-sense-bridge[emu]'), or use driver: memory instead"
        ) from None
    _start_host_if_needed()
    try:
        device = SenseHatDevice(sense_emu.SenseHat(), "sense-emu", on_close=_device_closed)
    except BaseException:
        _device_closed()
        raise
    return device
