"""Every shell block of the README and the docs marked `<!-- run -->` (the line before its ```sh
fence) runs as written, with `bash -e`, against a setup like `bridge demo`'s: a real nats-server
with JetStream, `$NATS_URL` exported, and a `bridge run` of the demo config (device id `demo`) on
the memory driver.

A block runs in a folder of its own holding a copy of the repository's configs/ and every YAML
example of its page whose first line names a file (`# kitchen.yml`), as the reader wrote it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bridge.testing.bridgeproc import BridgeProcess
from bridge.testing.nats_server import NatsServer
from bridge.testing.outside import OutsideClient

REPO = Path(__file__).resolve().parents[2]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
RUN_BLOCK = re.compile(r"^<!-- run -->\n```sh\n(?P<script>.*?)^```", re.M | re.S)
NAMED_YAML = re.compile(r"^```yaml\n# (?P<name>[\w.-]+\.ya?ml)\n(?P<text>.*?)^```", re.M | re.S)
QUICK_START = ("bridge validate", "bridge send", "bridge sub", "bridge fleet", "bridge deploy")


def blocks() -> list:
    found = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for match in RUN_BLOCK.finditer(text):
            line = text.count("\n", 0, match.start("script")) + 1
            found.append(pytest.param(page, match.group("script"), id=f"{page.relative_to(REPO)}:{line}"))
    return found


def files_named_on(page: Path) -> dict[str, str]:
    return {match.group("name"): f"# {match.group('name')}\n" + match.group("text")
            for match in NAMED_YAML.finditer(page.read_text(encoding="utf-8"))}


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory):
    """A JetStream nats-server with the demo config's bridge on the memory driver."""
    config = yaml.safe_load((REPO / "bridge" / "cli" / "demo.yml").read_text(encoding="utf-8"))
    config["device"]["driver"] = "memory"
    config.pop("web")
    with NatsServer(jetstream=True) as server:
        config["nats"]["servers"] = [server.url]
        bridge = BridgeProcess(yaml.safe_dump(config, sort_keys=False), tmp_path_factory.mktemp("demo"), "demo")
        with OutsideClient(server.url) as outside, bridge.running(outside):
            yield server


def run(script: str, folder: Path, server_url: str) -> subprocess.CompletedProcess:
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return subprocess.run(["bash", "-e", "-c", script], cwd=folder, capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, NATS_URL=server_url, PATH=path))


@pytest.mark.parametrize("page, script", blocks())
def test_every_marked_shell_block_runs(page, script, demo_server, tmp_path):
    shutil.copytree(REPO / "configs", tmp_path / "configs")
    for name, text in files_named_on(page).items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    result = run(script, tmp_path, demo_server.url)
    assert result.returncode == 0, f"exit status {result.returncode}\n{result.stdout}\n{result.stderr}"


def test_the_quick_start_commands_are_run():
    scripts = "\n".join(param.values[1] for param in blocks())
    assert all(command in scripts for command in QUICK_START)


def test_a_failing_line_fails_its_block(demo_server, tmp_path):
    result = run("bridge send --check nothing.subscribes.here hi\necho not reached", tmp_path, demo_server.url)
    assert result.returncode == 1 and "not reached" not in result.stdout
