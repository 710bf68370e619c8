"""The exit statuses of every `bridge` command: one table, shown in `bridge --help` and the README."""

from __future__ import annotations

import enum


class ExitStatus(enum.IntEnum):
    OK = 0
    FAILED = 1
    USAGE = 2
    UNREACHABLE = 3


MEANING = {
    ExitStatus.OK: "done: valid, sent (reply ok), stored, listed, or stopped gracefully",
    ExitStatus.FAILED: "the command ran and did not succeed: an invalid config, a device that cannot start, "
                       "an error reply, a timeout or no responders, nothing to roll back to",
    ExitStatus.USAGE: "bad usage or an unreadable file: nothing was tried",
    ExitStatus.UNREACHABLE: "no NATS server could be reached (bridge run: nats.reconnect.max_attempts used up)",
}


def exit_status_help() -> str:
    """The table as `bridge --help` prints it below the commands."""
    return "exit status:\n" + "\n".join(f"  {status.value}  {MEANING[status]}" for status in ExitStatus)
