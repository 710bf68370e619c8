"""How much a config may ask for: the file treated as untrusted input.

Every limit is far above what a real config needs and far below what hurts a Pi. Files are read
only when they are regular files (a FIFO or a device could block or never end) and never past a limit.
"""

from __future__ import annotations

import os
import stat

MAX_CONFIG_BYTES = 1024 * 1024  # the config file itself
MAX_FILE_BYTES = 64 * 1024  # one ${file:PATH}: a secret or a short value
MAX_EXPANDED_CHARS = 64 * 1024  # one value after substitution
MAX_NESTING = 32  # ${a} -> ${b} -> ... and ${env:X:-${env:Y:-...}}, counted together
# nats-server reads a control line (PUB/SUB/MSG + subject + reply or queue + sizes) of at most 4096 bytes;
# 3 KiB for the subject leaves room for the rest.
MAX_SUBJECT_BYTES = 3 * 1024


def format_limit(size: int) -> str:
    return f"{size // (1024 * 1024)} MiB" if size >= 1024 * 1024 else f"{size // 1024} KiB"


class TooLarge(Exception):
    """The file holds more than the limit allows."""


class NotRegular(Exception):
    """The path names a FIFO, device, socket or directory."""

    def __init__(self, kind: str):
        super().__init__(kind)
        self.kind = kind


def _kind(mode: int) -> str:
    for test, kind in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return kind
    return "not a regular file"


def read_regular_file(path: str | os.PathLike, limit: int) -> bytes:
    """At most `limit` bytes of the regular file `path`; raises OSError, NotRegular or TooLarge.

    Checked before opening (so a FIFO is never opened) and again on the open descriptor (the path
    may have been swapped in between; O_NONBLOCK keeps that open from waiting for a writer).
    """
    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
        raise NotRegular(_kind(mode))
    descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(descriptor, "rb") as stream:
        mode = os.fstat(descriptor).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegular(_kind(mode))
        data = stream.read(limit + 1)
    if len(data) > limit:
        raise TooLarge
    return data
