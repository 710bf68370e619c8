"""`bridge demo` (what `make run` runs) as a real subprocess: it starts, serves, obeys the commands
it prints, and Ctrl-C leaves nothing running."""

from __future__ import annotations

import json
import signal
import socket
import time
import urllib.request
from pathlib import Path

import pytest

from bridge.cli.demo import DEFAULT_CONFIG
from bridge.cli.main import main
from tests.harness.demo import WAIT, DemoProcess, process_exists, run_printed


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def pixel_applied(web_url: str) -> bool:
    state = get_json(web_url + "state")
    return any(s["subject"] == "demo.led.pixel" and s["applied"] for s in state["subscriptions"])


def config_comment_commands() -> list[str]:
    """The `bridge send` lines the demo config's comments suggest."""
    text = Path(DEFAULT_CONFIG).read_text(encoding="utf-8")
    commands = [line.lstrip("# ").rstrip() for line in text.splitlines() if line.startswith("#   bridge ")]
    assert commands, "the demo config suggests no commands any more: update this test"
    return commands


def test_demo_serves_obeys_its_printed_commands_and_stops_everything_on_ctrl_c(emulator_if_installed, tmp_path):
    with socket.socket() as taken:  # the requested web port is busy: the demo takes a free one
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy_port = taken.getsockname()[1]
        demo = DemoProcess(["--web", f"127.0.0.1:{busy_port}"], tmp_path / "demo.log")
        try:
            web_url = demo.wait_for_line(r"LED web view:\s+(http://\S+)").group(1)
            server = demo.wait_for_line(r"NATS server:\s+(nats://\S+) \(nats-server pid (\d+)")
            nats_url, nats_pid = server.group(1), int(server.group(2))
            exported = {"NATS_URL": demo.wait_for_line(r"^\s+export NATS_URL=(\S+)$").group(1)}
            show = demo.wait_for_line(r"^\s+(\S*bridge send (?:.* )?demo\.led\.show .*)$").group(1)
            set_pixel = demo.wait_for_line(r"^\s+(\S*bridge send .*--json demo\.led\.pixel .*)$").group(1)
            read_sensors = demo.wait_for_line(r"^\s+(\S*bridge send .*--request demo\.sensors\.read)$").group(1)
            demo.wait_for_line("Ctrl-C stops")

            assert f":{busy_port}/" not in web_url
            assert process_exists(nats_pid)
            state = get_json(web_url + "state")
            assert state["device"] == "demo"
            assert state["connected"] is True and state["server"] == nats_url

            assert exported["NATS_URL"] == nats_url
            assert "--server" not in show + set_pixel + read_sensors
            shown = run_printed(show, exported)
            assert shown.returncode == 0, shown.stderr
            sent = run_printed(set_pixel, exported)
            assert sent.returncode == 0, sent.stderr
            deadline = time.monotonic() + WAIT
            while not pixel_applied(web_url) and time.monotonic() < deadline:
                time.sleep(0.1)
            red = get_json(web_url + "state")["pixels"][4 * 8 + 3]
            assert red[0] >= 248 and red[1:] == [0, 0], red  # 248: the emulated framebuffer is RGB565
            readings = run_printed(read_sensors, exported)
            assert readings.returncode == 0, readings.stderr
            assert "temperature" in json.loads(readings.stdout)
            bridge = show.split(" send ")[0]  # the banner's way to type `bridge` here
            for suggested in config_comment_commands():
                pasted = run_printed(suggested.replace("bridge", bridge, 1), exported)
                assert pasted.returncode == 0, (suggested, pasted.stderr)

            demo.process.send_signal(signal.SIGINT)
            assert demo.process.wait(WAIT) == 0, demo.logs()
            assert not process_exists(nats_pid), "the demo left its nats-server running"
        finally:
            demo.kill()


def test_demo_with_a_missing_config_says_so_and_starts_nothing(tmp_path, capsys):
    assert main(["demo", "--config", str(tmp_path / "missing.yml"), "--web", "127.0.0.1:0"]) == 2
    assert "missing.yml" in capsys.readouterr().err


def test_demo_rejects_a_bad_web_address(capsys):
    assert main(["demo", "--web", "localhost"]) == 2
    assert "--web" in capsys.readouterr().err


@pytest.mark.parametrize("stop_signal", [signal.SIGHUP, signal.SIGTERM])
def test_a_closed_terminal_or_a_kill_stops_the_demos_server_and_removes_its_folder(stop_signal, tmp_path):
    demo = DemoProcess([], tmp_path / "demo.log")
    try:
        nats_pid = int(demo.wait_for_line(r"NATS server:.*\(nats-server pid (\d+)").group(1))
        store = Path(demo.wait_for_line(r"JetStream:\s+on, stored in (\S+) ").group(1))
        demo.wait_for_line("Ctrl-C stops")
        assert process_exists(nats_pid) and store.exists()

        demo.process.send_signal(stop_signal)
        assert demo.process.wait(WAIT) == 0, demo.logs()
        assert not process_exists(nats_pid), "the demo left its nats-server running"
        assert not store.exists(), "the demo left its JetStream folder behind"
    finally:
        demo.kill()
