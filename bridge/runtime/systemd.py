"""Tell systemd how the bridge is doing: sd_notify(3) without libsystemd.

A `Type=notify` unit gives the process `$NOTIFY_SOCKET`, a Unix datagram socket (a path, or with a
leading `@` a name in the abstract namespace); each message is one datagram of `KEY=value` lines:
`READY=1`, `STOPPING=1`, `STATUS=...`, `WATCHDOG=1`. With `WatchdogSec=` systemd also sets
`WATCHDOG_USEC` (and `WATCHDOG_PID`, the process it means) and restarts the service when no
`WATCHDOG=1` arrives within that time. Without `$NOTIFY_SOCKET` every call does nothing.
"""

from __future__ import annotations

import os
import socket
from typing import Mapping

from twisted.internet import task
from twisted.logger import Logger

log = Logger(namespace="bridge")


def socket_address(value: str | None) -> str | bytes | None:
    """`$NOTIFY_SOCKET` as an AF_UNIX address; None when unset or not a Unix socket."""
    if not value:
        return None
    if value.startswith("@"):
        return b"\0" + value[1:].encode()  # the abstract namespace: no file, a leading NUL byte
    if value.startswith("/"):
        return value
    return None  # e.g. systemd's vsock: addresses, which a bridge on a Pi never gets


def watchdog_interval(environ: Mapping[str, str], pid: int) -> float | None:
    """Seconds between two WATCHDOG=1 (half of `$WATCHDOG_USEC`, as sd_watchdog_enabled(3) advises);
    None when there is no watchdog, or it is meant for another process (`$WATCHDOG_PID`)."""
    try:
        usec = int(environ.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    if usec <= 0:
        return None
    watched = environ.get("WATCHDOG_PID")
    if watched:
        try:
            if int(watched) != pid:
                return None
        except ValueError:
            return None
    return usec / 2 / 1_000_000


class Notifier:
    """One datagram socket to systemd; `notify(READY="1")` sends `READY=1`."""

    def __init__(self, address: str | bytes | None):
        self.address = address
        self._socket: socket.socket | None = None
        self._failed = False

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> "Notifier":
        return cls(socket_address(environ.get("NOTIFY_SOCKET")))

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def notify(self, **fields: str) -> None:
        if self.address is None:
            return
        message = "\n".join(f"{key}={value}" for key, value in fields.items()).encode()
        try:
            if self._socket is None:
                self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._socket.setblocking(False)  # on the reactor thread: never wait for systemd
            self._socket.sendto(message, self.address)
        except OSError as error:
            if not self._failed:  # said once: a watchdog every few seconds must not flood the log
                log.warn("cannot notify systemd on {address!r}: {error}", address=self.address, error=str(error))
                self._failed = True
            return
        self._failed = False

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


def start_watchdog(notifier: Notifier, reactor, environ: Mapping[str, str] = os.environ):
    """Send WATCHDOG=1 from the reactor thread every `$WATCHDOG_USEC`/2: a reactor that hangs stops
    the pings and systemd restarts the service. The running LoopingCall, or None."""
    interval = watchdog_interval(environ, os.getpid())
    if not notifier.enabled or interval is None:
        return None
    loop = task.LoopingCall(notifier.notify, WATCHDOG="1")
    loop.clock = reactor
    loop.start(interval, now=True)
    return loop
