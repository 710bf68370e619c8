"""deploy/bridge.service as systemd reads it: `systemd-analyze verify` finds nothing to say, and
`systemd-analyze security` rates its sandbox 3.0 or better.

Both need only the systemd-analyze binary (Debian's `systemd` package; .ci/run installs it), not a
running systemd. `verify` checks the unit against a throwaway root holding the distribution's own
units (the `After=`/`Wants=` targets) and an executable stand-in for every `Exec*=` command, so what
is left to report is the unit's own mistakes. systemd only *warns* about a misspelt key, a bad value
or an unknown syscall group ("…, ignoring") and still exits 0: any output at all fails the test.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[2] / "deploy" / "bridge.service"
MAX_EXPOSURE = 3.0
SYSTEM_UNITS = [Path("/usr/lib/systemd/system"), Path("/lib/systemd/system")]

ANALYZE = shutil.which("systemd-analyze")
pytestmark = pytest.mark.skipif(
    ANALYZE is None, reason="systemd-analyze is not installed (Debian: apt-get install systemd)"
)


def analyze(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([ANALYZE, *args], capture_output=True, text=True, timeout=60)


def exec_paths(unit_text: str) -> list[str]:
    """The absolute programs of the unit's Exec*= lines (`ExecStart=/opt/…/bridge run …`)."""
    paths = []
    for line in unit_text.splitlines():
        match = re.match(r"Exec\w+=[-@:+!]*(/\S+)", line)
        if match:
            paths.append(match.group(1))
    return paths


def fake_root(root: Path, unit_text: str) -> None:
    units = next((path for path in SYSTEM_UNITS if path.is_dir()), None)
    if units is None:
        pytest.skip(f"no distribution units to verify against (looked in {', '.join(map(str, SYSTEM_UNITS))})")
    shutil.copytree(units, root / "usr/lib/systemd/system", symlinks=True)
    for program in exec_paths(unit_text):
        stand_in = root / program.lstrip("/")
        stand_in.parent.mkdir(parents=True, exist_ok=True)
        stand_in.write_text("#!/bin/sh\n")
        stand_in.chmod(0o755)
    (root / "etc/systemd/system").mkdir(parents=True)
    (root / "etc/systemd/system/bridge.service").write_text(unit_text)


def verify(unit_text: str, root: Path) -> subprocess.CompletedProcess:
    fake_root(root, unit_text)
    return analyze("verify", "--man=no", f"--root={root}", "bridge.service")


def exposure(unit_path: Path) -> float:
    result = analyze("security", "--offline=true", "--no-pager", str(unit_path))
    if "--offline" in result.stderr and "unrecognized" in result.stderr:
        pytest.skip("systemd-analyze is older than systemd 250 (no `security --offline`)")
    last = result.stdout.strip().splitlines()[-1]
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", last)
    assert match, f"no exposure on the last line:\n{result.stdout}\n{result.stderr}"
    return float(match.group(1))


def test_exec_paths_reads_every_command():
    text = "ExecStartPre=-/usr/bin/a x\nExecStart=/opt/b run\nExecReload=/bin/kill -HUP $MAINPID\n"
    assert exec_paths(text) == ["/usr/bin/a", "/opt/b", "/bin/kill"]


def test_unit_verifies_without_a_word(tmp_path):
    result = verify(UNIT.read_text(), tmp_path)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


@pytest.mark.parametrize(
    "line, mistake",
    [
        ("DevicePolicy=closed", "DevicePolicy=closd"),
        ("ProtectProc=invisible", "ProtecProc=invisible"),
        ("SystemCallFilter=@system-service", "SystemCallFilter=@system-servic"),
    ],
)
def test_verify_catches_what_systemd_would_ignore(tmp_path, line, mistake):
    # The check above is only worth something if systemd's "…, ignoring" warnings reach it.
    text = UNIT.read_text()
    assert line in text
    result = verify(text.replace(line, mistake), tmp_path)
    assert "ignoring" in result.stdout + result.stderr


def test_sandbox_exposure_is_at_most_3():
    assert exposure(UNIT) <= MAX_EXPOSURE


def test_exposure_parsing_sees_a_weaker_unit(tmp_path):
    # Without its sandbox the unit is back to "EXPOSED": the figure above is the unit's, not a constant.
    text = UNIT.read_text().split("# --- Sandbox")[0] + "\n[Install]\nWantedBy=multi-user.target\n"
    weak = tmp_path / "bridge.service"
    weak.write_text(text)
    assert exposure(weak) > 8.0


def test_unit_is_a_notify_service_with_a_watchdog():
    text = UNIT.read_text()
    assert re.search(r"^Type=notify$", text, re.M)
    assert re.search(r"^WatchdogSec=\d+", text, re.M)
