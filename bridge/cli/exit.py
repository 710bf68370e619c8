"""The exit statuses of every `bridge` command: one table, shown in `bridge --help` and the docs'
command reference."""

from __future__ import annotations

import enum
import textwrap
from typing import Mapping


class ExitStatus(enum.IntEnum):
    OK = 0
    FAILED = 1
    USAGE = 2
    UNREACHABLE = 3
    REFUSED = 4
    NOT_ANSWERED = 5
    CONFLICT = 6


MEANING = {
    ExitStatus.OK: "done: valid, sent (reply ok), stored, listed, or stopped gracefully",
    ExitStatus.FAILED: "the command ran and did not succeed: an invalid config, a device that cannot start, "
                       "an error reply, a timeout or no responders, nothing to roll back to",
    ExitStatus.USAGE: "bad usage or an unreadable file: nothing was tried (also: NATS refused permission)",
    ExitStatus.UNREACHABLE: "no NATS server could be reached (bridge run: nats.reconnect.max_attempts used up)",
    ExitStatus.REFUSED: "bridge deploy --wait: stored, and some Pi refused the revision",
    ExitStatus.NOT_ANSWERED: "bridge deploy --wait: stored, and some Pi did not apply or refuse it in time",
    ExitStatus.CONFLICT: "bridge deploy: someone else deployed meanwhile (or not the --expect-revision): "
                         "nothing stored",
}


def table_row(status: ExitStatus, width: int = 100) -> str:
    """One status as `bridge --help` shows it, its meaning wrapped under itself."""
    head = f"  {status.value}  {status.name:<11}  "
    return textwrap.fill(MEANING[status], width, initial_indent=head, subsequent_indent=" " * len(head))


def exit_status_help() -> str:
    """The table as `bridge --help` prints it below the commands."""
    return "exit status:\n" + "\n".join(table_row(status) for status in ExitStatus)


def statuses_used(uses: Mapping[ExitStatus, str]) -> str:
    """A command's description of the statuses it uses, each named as in the table."""
    return "Exit status: " + "; ".join(f"{status.value} {status.name}: {what}" for status, what in uses.items()) + "."
