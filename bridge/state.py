"""Where a bridge keeps what must survive a restart, and how it writes it so a power cut cannot
leave a half-written file: the fleet's config cache, the display's apps, the telemetry spool."""

from __future__ import annotations

import os
from pathlib import Path


def state_directory(environ=os.environ) -> Path:
    """systemd's StateDirectory= (the first one), else ~/.local/state/bridge."""
    given = environ.get("STATE_DIRECTORY", "").split(":")[0]
    return Path(given) if given else Path.home() / ".local" / "state" / "bridge"


def fsync_directory(directory: Path) -> None:
    """Make a rename or a new file in `directory` survive a power cut."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_private_file(path: Path, data: bytes) -> None:
    """Write a temporary file (mode 0600), fsync it, rename it over `path`, fsync the directory:
    after a power cut `path` holds the old content or the new, never a mix or nothing.

    Raises OSError; the caller decides what a failed write means.
    """
    path = Path(path)
    temporary = path.with_name(path.name + ".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)
    fsync_directory(path.parent)
