"""`bridge send`: server order, usage errors and messages (the end-to-end sends are in e2e/test_run.py)."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest

from bridge.cli.exit import ExitStatus
from bridge.cli.main import main
from bridge.cli.send import build_payload, failure_message
from bridge.nats import NatsTimeoutError, NoRespondersError
from bridge.testing.nats_server import NatsServer
from bridge.testing.outside import OutsideClient


def bridge_send(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bridge", "send", *args], capture_output=True, timeout=60)


def closed_url(userinfo: str = "") -> str:
    """The URL of a server that was just stopped: nothing listens there."""
    with NatsServer() as stopped:
        url = stopped.url
    return url.replace("://", f"://{userinfo}@", 1) if userinfo else url


def test_a_dead_first_server_is_skipped_for_a_live_second_one():
    dead = closed_url()
    with NatsServer() as live, OutsideClient(live.url) as outside:
        inbox = outside.subscribe("send.failover")
        done = bridge_send("--server", dead, "--server", live.url, "send.failover", "still", "here")
        assert done.returncode == 0, done.stderr
        assert inbox.next().data == b"still here"
        assert done.stderr.decode() == "published 10 bytes to send.failover\n"


def test_check_fails_when_nothing_subscribes_and_says_so():
    with NatsServer() as server:
        done = bridge_send("--server", server.url, "--check", "pi.kitchn.led.show", "hello")
    assert done.returncode == ExitStatus.FAILED
    assert done.stderr.decode() == "bridge send: nothing subscribes to pi.kitchn.led.show: the message reached no one\n"


def test_check_publishes_once_to_a_subscriber_and_says_it_arrived():
    with NatsServer() as server, OutsideClient(server.url) as outside:
        inbox = outside.subscribe("pi.kitchen.led.show")
        outside.flush()
        done = bridge_send("--server", server.url, "--check", "pi.kitchen.led.show", "hello")
        assert done.returncode == 0, done.stderr
        assert done.stderr.decode() == "published 5 bytes to pi.kitchen.led.show (it reached a subscriber)\n"
        assert inbox.next().data == b"hello"
        assert inbox.drain() == []  # one message, not a probe and then the message


def test_cannot_connect_names_every_server_with_passwords_masked():
    first, second = closed_url("pi:s3cret"), closed_url()
    done = bridge_send("--server", first, "--server", second, "some.subject", "hi")
    assert done.returncode == ExitStatus.UNREACHABLE
    assert b"s3cret" not in done.stderr
    assert f"cannot connect to {first.replace('s3cret', '********')}, {second}".encode() in done.stderr


@pytest.mark.parametrize("args", [["--json", "a.b"], ["--json", "a.b", " "]])
def test_json_without_a_payload_is_bad_usage(args, capsys):
    assert main(["send", *args]) == ExitStatus.USAGE
    assert "--json: no payload given" in capsys.readouterr().err


def test_json_from_empty_stdin_is_bad_usage():
    with pytest.raises(ValueError, match="no payload given"):
        build_payload(["-"], as_json=True, stdin=io.BytesIO(b"\n"))


def test_text_may_be_empty_without_json():
    assert build_payload([], as_json=False) == b""


def test_a_bad_server_url_is_bad_usage(capsys):
    assert main(["send", "--server", "http://127.0.0.1:4222", "a.b", "hi"]) == ExitStatus.USAGE
    assert "scheme must be nats:// or tls://" in capsys.readouterr().err


def test_a_publish_timeout_is_not_reported_as_a_missing_reply():
    timeout = NatsTimeoutError("flush timed out")
    assert failure_message(timeout, "a.b", request=False, timeout=5) == (
        "the server did not confirm the publish on a.b within 5s")
    assert failure_message(timeout, "a.b", request=True, timeout=2.5).startswith(
        "no reply on a.b within 2.5s (a bridge replies once the action is done: a long scroll takes longer, so raise "
        "--timeout")
    assert failure_message(NoRespondersError("none"), "a.b", request=True, timeout=5) == "no responders on a.b"
