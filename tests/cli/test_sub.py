"""`bridge sub`: a subprocess watching a real server prints one readable line per message."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

from bridge.cli.exit import ExitStatus
from bridge.cli.main import main
from bridge.cli.sub import summary
from bridge.testing.nats_server import NatsServer
from bridge.testing.outside import OutsideClient

READING = {"device": "kitchen", "sensor": "temperature", "value": 21.5, "unit": "°C", "time": "2026-12-03T10:00:00.000Z"}


def start_sub(url: str, *args: str) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-m", "bridge", "sub", "--server", url, *args],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ready = process.stderr.readline()
    assert ready.startswith("listening on "), ready + process.stderr.read()
    return process


def test_readings_replies_and_text_print_one_line_each_then_count_stops_it():
    with NatsServer() as server, OutsideClient(server.url) as outside:
        process = start_sub(server.url, "--count", "3", "sensors.>")
        try:
            outside.publish("sensors.kitchen.temperature", json.dumps(READING))
            outside.publish("sensors.kitchen.note", "line one\x1b[2Jcleared?")
            outside.publish("sensors.kitchen.orientation", json.dumps({**READING, "sensor": "orientation",
                                                                       "value": {"pitch": 1.5, "roll": 0.0}, "unit": "°"}))
            outside.publish("elsewhere.ignored", "not mine")
            outside.flush()
            out, _ = process.communicate(timeout=30)
        finally:
            process.kill()
    assert process.returncode == 0
    lines = [line.split(" ", 1)[1] for line in out.splitlines()]  # without the time
    assert lines == [
        "sensors.kitchen.temperature  temperature 21.5 °C",
        "sensors.kitchen.note  line one\\x1b[2Jcleared?",
        'sensors.kitchen.orientation  orientation {"pitch": 1.5, "roll": 0.0} °',
    ]


def test_json_prints_the_subject_and_the_decoded_payload_per_line():
    with NatsServer() as server, OutsideClient(server.url) as outside:
        process = start_sub(server.url, "--json", "--count", "2", "replies.*")
        try:
            outside.publish("replies.a", b'{"ok": false, "error": "bad"}', reply="_INBOX.x")
            outside.publish("replies.b", b"\xff plain")
            outside.flush()
            out, _ = process.communicate(timeout=30)
        finally:
            process.kill()
    assert [json.loads(line) for line in out.splitlines()] == [
        {"subject": "replies.a", "data": {"ok": False, "error": "bad"}, "reply": "_INBOX.x"},
        {"subject": "replies.b", "data": "\ufffd plain"},
    ]


def test_ctrl_c_ends_it_with_status_ok():
    with NatsServer() as server:
        process = start_sub(server.url, "a.b")
        try:
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=30) == ExitStatus.OK, process.stderr.read()
        finally:
            process.kill()


def test_a_lost_server_ends_it_unreachable_with_one_sentence():
    server = NatsServer().start()
    try:
        process = start_sub(server.url, "a.b")
        server.stop()
        assert process.wait(timeout=60) == ExitStatus.UNREACHABLE
        assert process.stderr.read().splitlines()[-1] == "bridge sub: the connection to the server was lost"
    finally:
        process.kill()
        server.cleanup()


def test_bad_subject_and_count_are_bad_usage(capsys):
    assert main(["sub", "a..b"]) == ExitStatus.USAGE
    assert main(["sub", "--count", "0", "a.b"]) == ExitStatus.USAGE
    assert "--count must be at least 1" in capsys.readouterr().err


def test_a_reading_without_unit_and_plain_json_summaries():
    assert summary(b'{"sensor": "joystick", "value": {"direction": "up"}}') == 'joystick {"direction": "up"}'
    assert summary(b"[1, 2]") == "[1,2]"
    assert summary("héllo".encode()) == "héllo"
