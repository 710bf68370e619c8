"""`bridge deploy` as a subprocess, for the end-to-end tests of a fleet that follows one stored config."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

BUCKET, KEY = "bridge_config", "pis"


def deploy(url: str, *args: str, text: str | None = None, folder: Path | None = None,
           key: str = KEY) -> subprocess.CompletedProcess:
    """Run `bridge deploy`; with `text`, written to a new file in `folder` and deployed from there."""
    argv = [sys.executable, "-m", "bridge", "deploy", "--key", key, "--server", url, *args]
    if text is not None:
        file = folder / f"deploy-{time.monotonic_ns()}.yml"
        file.write_text(text)
        argv.insert(4, str(file))
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


def deployed(url: str, text: str, folder: Path, key: str = KEY, *args: str) -> int:
    """Deploy `text`, which must succeed; the revision it was stored as."""
    result = deploy(url, *args, text=text, folder=folder, key=key)
    assert result.returncode == 0, result.stderr
    return stored_revision(result.stdout)


def stored_revision(stdout: str) -> int:
    """The revision `bridge deploy` printed as `stored revision N (...)`."""
    found = re.search(r"^stored revision (\d+) ", stdout, re.MULTILINE)
    assert found, f"no stored revision in: {stdout!r}"
    return int(found.group(1))
