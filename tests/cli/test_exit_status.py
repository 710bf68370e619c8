"""Every command's exit status, from the one table in bridge/cli/exit.py.

In process where the command ends before it connects; a subprocess where it runs the reactor
(task.react stops the reactor for good, so one test process can run it only once).
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from bridge.cli.exit import MEANING, ExitStatus, table_row
from bridge.cli.main import main
from bridge.testing.nats_server import NatsServer
from tests.docs.examples import load_docs_hooks

REPO = Path(__file__).resolve().parents[2]
VALID = str(REPO / "configs" / "sense-hat.yml")
STORED = str(REPO / "configs" / "stored" / "pis.yml")


def bridge(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bridge", *args], capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def closed_url() -> str:
    """A loopback port that was bound and released: nothing listens there."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"nats://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def server():
    with NatsServer(jetstream=True) as running:
        yield running


@pytest.fixture
def invalid(tmp_path) -> str:
    path = tmp_path / "invalid.yml"
    path.write_text("version: 1\ndevice: {id: pi, driver: memory}\nnats: {servers: [nats://127.0.0.1:4222]}\n"
                    "subscriptions:\n  - {subject: a.b, action: no_such_action}\n")
    return str(path)


@pytest.fixture
def missing(tmp_path) -> str:
    return str(tmp_path / "missing.yml")


def test_the_table_numbers_are_the_documented_ones():
    assert [(status.name, int(status)) for status in ExitStatus] == [
        ("OK", 0), ("FAILED", 1), ("USAGE", 2), ("UNREACHABLE", 3), ("REFUSED", 4), ("NOT_ANSWERED", 5),
        ("CONFLICT", 6)]
    assert set(MEANING) == set(ExitStatus)


def test_help_shows_every_row_of_the_table(capsys):
    assert main(["--help"]) == ExitStatus.OK
    shown = capsys.readouterr().out
    for status in ExitStatus:
        assert table_row(status) in shown


@pytest.mark.parametrize("command", ["validate", "run", "send", "fleet", "deploy", "schema", "demo"])
def test_each_command_names_the_statuses_it_uses(command, capsys):
    assert main([command, "--help"]) == ExitStatus.OK
    description = " ".join(capsys.readouterr().out.split())
    assert "Exit status: 0 OK:" in description
    assert "2 USAGE:" in description


@pytest.mark.parametrize("argv", [[], ["frobnicate"], ["validate"], ["run"], ["send"], ["deploy", "x.yml"],
                                  ["schema", "--bogus"], ["demo", "--bogus"], ["fleet", "--timeout", "soon"]])
def test_argparse_usage_errors_are_usage(argv):
    assert main(argv) == ExitStatus.USAGE


# -- validate, schema, run, demo: no server involved ------------------------------------------------

def test_validate(invalid, missing):
    assert main(["validate", VALID]) == ExitStatus.OK
    assert main(["validate", VALID, invalid]) == ExitStatus.FAILED
    assert main(["validate", invalid, missing]) == ExitStatus.USAGE
    assert main(["validate", "--set", "no-equals-sign", VALID]) == ExitStatus.USAGE


def test_schema():
    assert main(["schema"]) == ExitStatus.OK
    assert main(["schema", "--stored"]) == ExitStatus.OK


def test_run_ends_before_starting_on_a_config_it_cannot_use(invalid, missing, capsys):
    assert main(["run", invalid]) == ExitStatus.FAILED
    assert "no_such_action" in capsys.readouterr().err
    assert main(["run", missing]) == ExitStatus.USAGE
    assert main(["run", "--set", "=x", VALID]) == ExitStatus.USAGE
    assert "--set: expected KEY=VALUE" in capsys.readouterr().err


def test_demo_ends_before_starting_on_a_config_it_cannot_use(invalid, missing):
    assert main(["demo", "--config", invalid, "--web", "127.0.0.1:0"]) == ExitStatus.FAILED
    assert main(["demo", "--config", missing, "--web", "127.0.0.1:0"]) == ExitStatus.USAGE
    assert main(["demo", "--web", "localhost"]) == ExitStatus.USAGE


# -- send ---------------------------------------------------------------------------------------------

def test_send_usage_in_process(capsys):
    assert main(["send", "--json", "a.b", "{not json"]) == ExitStatus.USAGE
    assert main(["send", "a.*", "wildcards are not for publishing"]) == ExitStatus.USAGE
    assert main(["send", "--server", "http://127.0.0.1:4222", "a.b"]) == ExitStatus.USAGE


def test_send_sent_failed_and_unreachable(server, closed_url):
    assert bridge("send", "--server", server.url, "a.b", "hi").returncode == ExitStatus.OK
    nobody = bridge("send", "--server", server.url, "--request", "--timeout", "2", "nobody.here")
    assert (nobody.returncode, "no responders" in nobody.stderr) == (ExitStatus.FAILED, True)
    gone = bridge("send", "--server", closed_url, "a.b", "hi")
    assert (gone.returncode, "cannot connect" in gone.stderr) == (ExitStatus.UNREACHABLE, True)


# -- fleet --------------------------------------------------------------------------------------------

def test_fleet_usage_in_process():
    assert main(["fleet", "--timeout", "0"]) == ExitStatus.USAGE
    assert main(["fleet", "--server", "http://nope"]) == ExitStatus.USAGE


def test_fleet_listed_and_unreachable(server, closed_url):
    assert bridge("fleet", "--server", server.url, "--timeout", "0.5").returncode == ExitStatus.OK
    gone = bridge("fleet", "--server", closed_url)
    assert (gone.returncode, "cannot connect" in gone.stderr) == (ExitStatus.UNREACHABLE, True)


# -- deploy -------------------------------------------------------------------------------------------

def test_deploy_checks_the_file_in_process(invalid, missing, tmp_path):
    assert main(["deploy", STORED, "--key", "pis", "--dry-run"]) == ExitStatus.OK
    broken = tmp_path / "broken.yml"
    broken.write_text("version: 1\nsubscriptions:\n  - {subject: a.b, action: no_such_action}\n")
    assert main(["deploy", str(broken), "--key", "pis"]) == ExitStatus.FAILED
    assert main(["deploy", missing, "--key", "pis"]) == ExitStatus.USAGE
    assert main(["deploy", "--key", "pis"]) == ExitStatus.USAGE
    assert main(["deploy", STORED, "--key", "pis", "--history"]) == ExitStatus.USAGE
    assert main(["deploy", STORED, "--key", "no spaces"]) == ExitStatus.USAGE
    assert main(["deploy", "--key", "pis", "--history", "--to", "3"]) == ExitStatus.USAGE
    assert main(["deploy", STORED, "--key", "pis", "--fleet"]) == ExitStatus.USAGE
    assert main(["deploy", STORED, "--key", "pis", "--dry-run", "--wait"]) == ExitStatus.USAGE
    assert main(["deploy", STORED, "--key", "pis", "--wait=0"]) == ExitStatus.USAGE
    assert main(["deploy", STORED, "--key", "pis", "--expect-revision", "-1"]) == ExitStatus.USAGE
    assert main(["deploy", STORED, "--key", "pis", "--wait", "--no-wait"]) == ExitStatus.USAGE


def test_deploy_stored_nothing_to_roll_back_conflict_and_unreachable(server, closed_url):
    key = "exit_status"
    assert bridge("deploy", "--key", key, "--server", server.url, "--history").returncode == ExitStatus.FAILED
    assert bridge("deploy", STORED, "--key", key, "--server", server.url).returncode == ExitStatus.OK
    assert bridge("deploy", "--key", key, "--server", server.url, "--rollback").returncode == ExitStatus.FAILED
    assert bridge("deploy", "--key", key, "--server", server.url, "--show", "99").returncode == ExitStatus.FAILED
    stale = bridge("deploy", STORED, "--key", key, "--server", server.url, "--expect-revision", "0")
    assert (stale.returncode, "not the expected 0" in stale.stderr) == (ExitStatus.CONFLICT, True)
    gone = bridge("deploy", STORED, "--key", key, "--server", closed_url)
    assert (gone.returncode, "cannot connect" in gone.stderr) == (ExitStatus.UNREACHABLE, True)


def test_deploy_to_a_server_without_jetstream_failed():
    with NatsServer() as plain:
        done = bridge("deploy", STORED, "--key", "pis", "--server", plain.url)
    assert done.returncode == ExitStatus.FAILED, done.stderr
    assert "Traceback" not in done.stderr


def test_the_command_reference_shows_the_same_table():
    page = (REPO / "docs" / "reference" / "cli.md").read_text()
    reference = load_docs_hooks().cli_reference().replace("`", "")
    assert "<!-- generated: cli -->" in page.split("## Exit statuses", 1)[1]
    for status in ExitStatus:
        assert f"| {status.value} | {status.name} | {MEANING[status]} |" in reference


@pytest.mark.parametrize("script", ["bridge", "nats-sense-bridge"])
def test_both_installed_scripts_are_the_bridge_command(script):
    """`nats-sense-bridge` is for scripts on systems where `bridge` is iproute2's."""
    done = subprocess.run([str(Path(sys.executable).parent / script), "validate", VALID],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == ExitStatus.OK, done.stderr
    assert done.stdout.startswith(f"{VALID}: ok: ")
