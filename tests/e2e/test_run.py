"""`bridge run` end to end: a real nats-server, the bridge as a subprocess, nats-py as the outside world."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time

import pytest

from bridge.cli.exit import ExitStatus
from bridge.config.model import ACTIONS
from bridge.testing.bridgeproc import BridgeProcess, memory_config
from bridge.testing.nats_server import NatsServer
from bridge.testing.outside import OutsideClient
from bridge.testing.reloads import DEVICE_ID, reload_config, unanswered_across_reloads


def config_text(url: str, device_id: str, *, subscriptions: str | None = None, publications: str = "") -> str:
    if subscriptions is None:
        subscriptions = "".join(f"  - {{subject: t.{device_id}.{action}, action: {action}}}\n" for action in ACTIONS)
    return memory_config(url, device_id, subscriptions, publications)


@pytest.fixture(scope="module")
def bridge(module_nats_server, nats_py, tmp_path_factory):
    process = BridgeProcess(config_text(module_nats_server.url, "e2e"), tmp_path_factory.mktemp("bridge"), "e2e").start()
    try:
        process.wait_ready(nats_py)
        yield process
    finally:
        process.stop()


def ask(nats_py, action: str, payload=b"", device: str = "e2e"):
    if not isinstance(payload, (bytes, str)):
        payload = json.dumps(payload)
    return nats_py.request_json(f"t.{device}.{action}", payload, timeout=10)


def pixels(nats_py):
    return ask(nats_py, "get_pixels")


def test_set_pixel_then_get_pixels(bridge, nats_py):
    assert ask(nats_py, "clear") == {"ok": True}
    assert ask(nats_py, "set_pixel", {"x": 3, "y": 2, "color": [255, 0, 0]}) == {"ok": True}
    grid = pixels(nats_py)
    assert len(grid) == 64
    assert grid[2 * 8 + 3] == [255, 0, 0]
    assert grid[0] == [0, 0, 0]


def test_set_pixels_and_clear_with_colour(bridge, nats_py):
    colours = [[i * 4, 0, 255 - i * 4] for i in range(64)]
    assert ask(nats_py, "set_pixels", colours) == {"ok": True}
    assert pixels(nats_py) == colours
    assert ask(nats_py, "clear", {"color": "#102030"}) == {"ok": True}
    assert pixels(nats_py) == [[16, 32, 48]] * 64


def test_show_message_plain_text_and_json(bridge, nats_py):
    assert ask(nats_py, "show_message", "hello world") == {"ok": True}
    assert ask(nats_py, "show_message", {"text": "hi", "text_colour": [255, 255, 0], "scroll_speed": 0.01}) == {"ok": True}


def test_show_letter_rotation_flips_low_light(bridge, nats_py):
    assert ask(nats_py, "show_letter", "A") == {"ok": True}
    assert ask(nats_py, "set_rotation", "90") == {"ok": True}
    assert ask(nats_py, "set_rotation", {"rotation": 0}) == {"ok": True}
    assert ask(nats_py, "clear") == {"ok": True}
    assert ask(nats_py, "set_pixel", {"x": 0, "y": 0, "color": [0, 255, 0]}) == {"ok": True}
    assert ask(nats_py, "flip_h") == {"ok": True}
    assert pixels(nats_py)[7] == [0, 255, 0]
    assert ask(nats_py, "flip_v") == {"ok": True}
    assert pixels(nats_py)[63] == [0, 255, 0]
    assert ask(nats_py, "low_light", "true") == {"ok": True}
    assert ask(nats_py, "low_light", "false") == {"ok": True}


def test_read_sensors_reply_has_every_reading(bridge, nats_py):
    readings = ask(nats_py, "read_sensors")
    for name in ("temperature", "humidity", "pressure", "orientation", "accelerometer", "gyroscope", "compass"):
        assert name in readings, readings
    assert set(readings["orientation"]) >= {"pitch", "roll", "yaw"}


@pytest.mark.parametrize(
    "action, payload, fragment",
    [
        ("set_pixel", {"x": 9, "y": 0, "color": [1, 2, 3]}, "0..7, got 9"),
        ("set_pixel", "not json", "set_pixel"),
        ("set_pixel", {"x": 1, "y": 1, "color": [300, 0, 0]}, "set_pixel"),
        ("set_pixels", [[0, 0, 0]] * 63, "64"),
        ("show_message", "x" * 1001, "1000"),
        ("show_letter", "AB", "show_letter"),
        ("clear", {"color": "#zzzzzz"}, "clear"),
        ("set_rotation", "45", "set_rotation"),
        ("low_light", "maybe", "low_light"),
    ],
)
def test_bad_payload_gets_error_reply_and_next_message_works(bridge, nats_py, action, payload, fragment):
    before = {s["action"]: s for s in bridge.info(nats_py)["subscriptions"]}[action]
    reply = ask(nats_py, action, payload)
    assert reply["ok"] is False
    assert fragment in reply["error"]
    after = {s["action"]: s for s in bridge.info(nats_py)["subscriptions"]}[action]
    assert after["errors"] == before["errors"] + 1
    assert after["last_error"] == reply["error"]  # the reason behind the count, for info readers
    assert ask(nats_py, "clear") == {"ok": True}


def test_info_counts_messages(bridge, nats_py):
    before = {s["action"]: s for s in bridge.info(nats_py)["subscriptions"]}["set_pixel"]
    for x in range(5):
        nats_py.publish("t.e2e.set_pixel", json.dumps({"x": x, "y": 0, "color": [0, 0, 9]}))
    ask(nats_py, "get_pixels")  # served after the five by the serial worker
    info = bridge.info(nats_py)
    after = {s["action"]: s for s in info["subscriptions"]}["set_pixel"]
    assert after["received"] == before["received"] + 5
    assert after["applied"] == before["applied"] + 5
    assert info["device"] == "e2e" and info["driver"] == "memory"
    assert info["server"].endswith(str(bridge_server_port(nats_py)))


def bridge_server_port(nats_py) -> int:
    return nats_py.nc.connected_url.port


def test_status_online_on_connect_and_offline_on_graceful_stop(module_nats_server, nats_py, tmp_path):
    status = nats_py.subscribe("bridge.lifecycle.status")
    process = BridgeProcess(config_text(module_nats_server.url, "lifecycle"), tmp_path, "lifecycle").start()
    try:
        process.wait_ready(nats_py)
        online = status.next_json()
        assert online["status"] == "online" and online["device"] == "lifecycle"
        assert "version" in online and online["time"].endswith("Z")
    finally:
        code = process.stop()
    assert code == 0, process.logs()
    assert status.next_json()["status"] == "offline"


def test_polled_sensor_publications_arrive(module_nats_server, nats_py, tmp_path):
    publications = "  - {subject: s.pub.temperature, sensor: temperature, interval: 100ms}\n"
    inbox = nats_py.subscribe("s.pub.temperature")
    process = BridgeProcess(config_text(module_nats_server.url, "pub", publications=publications), tmp_path, "pub").start()
    try:
        process.wait_ready(nats_py)
        first, second = inbox.next_json(), inbox.next_json()
    finally:
        process.stop()
    for reading in (first, second):
        assert reading["device"] == "pub" and reading["sensor"] == "temperature"
        assert isinstance(reading["value"], (int, float)) and reading["unit"]
        assert reading["time"].endswith("Z")


def test_sighup_reload_applies_good_config_and_keeps_old_on_bad(module_nats_server, nats_py, tmp_path):
    device = "reload"
    process = BridgeProcess(config_text(module_nats_server.url, device), tmp_path, device).start()
    try:
        process.wait_ready(nats_py)
        added = "  - {subject: t.reload.added, action: clear}\n  - {subject: t.reload.get_pixels, action: get_pixels}\n"
        process.rewrite_config(config_text(module_nats_server.url, device, subscriptions=added))
        process.signal(signal.SIGHUP)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            subjects = {s["subject"] for s in process.info(nats_py)["subscriptions"]}
            if subjects == {"t.reload.added", "t.reload.get_pixels"}:
                break
            time.sleep(0.1)
        else:
            raise AssertionError(f"reload not applied: {subjects}\n{process.logs()}")
        assert nats_py.request_json("t.reload.added", b"") == {"ok": True}

        process.rewrite_config("version: 1\ndevice: {driver: nope}\n")
        process.signal(signal.SIGHUP)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not any(
            "reload rejected" in str(r.get("message")) for r in process.log_records()
        ):
            time.sleep(0.1)
        assert any("reload rejected" in str(r.get("message")) for r in process.log_records()), process.logs()
        assert nats_py.request_json("t.reload.added", b"") == {"ok": True}
    finally:
        assert process.stop() == 0


def test_bridge_survives_server_restart_and_keeps_applying(tmp_path):
    with NatsServer() as server:
        with OutsideClient(server.url) as nats_py:
            process = BridgeProcess(config_text(server.url, "phoenix"), tmp_path, "phoenix").start()
            try:
                process.wait_ready(nats_py)
                assert ask(nats_py, "set_pixel", {"x": 1, "y": 1, "color": [1, 2, 3]}, device="phoenix") == {"ok": True}
                server.kill()
                server.start()
                process.wait_ready(nats_py)
                assert ask(nats_py, "set_pixel", {"x": 2, "y": 2, "color": [4, 5, 6]}, device="phoenix") == {"ok": True}
                grid = ask(nats_py, "get_pixels", device="phoenix")
                assert grid[9] == [1, 2, 3] and grid[18] == [4, 5, 6]
            finally:
                assert process.stop() == 0


def bridge_send(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bridge", "send", *args], input=stdin, capture_output=True, timeout=60
    )


def test_send_publishes_text_and_request_prints_the_reply(module_nats_server, bridge, nats_py):
    done = bridge_send("--server", module_nats_server.url, "t.e2e.show_message", "hello", "world")
    assert done.returncode == 0, done.stderr
    done = bridge_send("--server", module_nats_server.url, "--request", "--json", "t.e2e.set_pixel",
                       '{"x": 5, "y": 5, "color": [9, 9, 9]}')
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"ok": True}
    assert pixels(nats_py)[5 * 8 + 5] == [9, 9, 9]


def test_send_reads_stdin_and_fails_on_an_error_reply(module_nats_server, bridge):
    done = bridge_send("--server", module_nats_server.url, "--request", "t.e2e.set_pixel", "-",
                       stdin=b'{"x": 8, "y": 0, "color": [0, 0, 0]}')
    assert done.returncode == 1
    assert json.loads(done.stdout)["ok"] is False


def test_send_exit_codes_for_no_responders_no_server_and_bad_json(module_nats_server):
    done = bridge_send("--server", module_nats_server.url, "--request", "--timeout", "2", "nobody.listens.here")
    assert done.returncode == 1 and b"no responders" in done.stderr
    with NatsServer() as stopped:
        dead_url = stopped.url
    done = bridge_send("--server", dead_url, "some.subject", "hi")
    assert done.returncode == ExitStatus.UNREACHABLE and b"cannot connect" in done.stderr
    done = bridge_send("--server", module_nats_server.url, "--json", "some.subject", "{not json")
    assert done.returncode == 2 and b"not valid JSON" in done.stderr


def test_run_exits_1_when_the_web_port_is_taken(module_nats_server, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = BridgeProcess(config_text(module_nats_server.url, "webtaken"), tmp_path, "webtaken",
                                extra_args=("--web", f"127.0.0.1:{port}")).start()
        try:
            assert process.process.wait(30) == 1
        finally:
            process.kill()
    assert any("cannot serve the web view" in str(r.get("message")) for r in process.log_records()), process.logs()


def tls_config_text(url: str, device_id: str, tls_block: str) -> str:
    return f"""\
version: 1
device: {{id: {device_id}, driver: memory}}
nats:
  servers: ["{url}"]
{tls_block}subscriptions:
  - {{subject: t.{device_id}.get_pixels, action: get_pixels}}
"""


def test_bridge_with_tls_config_talks_to_a_tls_server(tls_server, tmp_path):
    tls = (f"  tls: {{ca_file: {tls_server.ca_path}, cert_file: {tls_server.client_cert_path}, "
           f"key_file: {tls_server.client_key_path}}}\n")
    process = BridgeProcess(tls_config_text(tls_server.url, "secure", tls), tmp_path, "secure").start()
    try:
        with OutsideClient(tls_server.url, tls=tls_context(tls_server)) as nats_py:
            process.wait_ready(nats_py)
            assert len(nats_py.request_json("t.secure.get_pixels", b"")) == 64
    finally:
        assert process.stop() == 0


def test_plain_config_against_a_server_demanding_tls_says_so(tls_server_no_client_cert, tmp_path):
    plain_url = tls_server_no_client_cert.url.replace("tls://", "nats://")
    process = BridgeProcess(tls_config_text(plain_url, "plain", ""), tmp_path, "plain").start()
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and "requires TLS" not in process.logs():
            time.sleep(0.1)
        assert "requires TLS, but TLS support is not loaded" in process.logs(), process.logs()
    finally:
        assert process.stop() == 0


def tls_context(server):
    import ssl

    context = ssl.create_default_context(cafile=str(server.ca_path))
    context.load_cert_chain(str(server.client_cert_path), str(server.client_key_path))
    return context


def test_readings_taken_while_disconnected_arrive_after_the_reconnect(tmp_path):
    from datetime import datetime

    publications = "  - {subject: s.buffered.temperature, sensor: temperature, interval: 100ms}\n"
    with NatsServer() as server:
        # The bridge retries once a second; the test's subscriber is back on the restarted server
        # well before that, so what the bridge flushes on reconnecting has someone to reach.
        text = config_text(server.url, "buffered", publications=publications).replace(
            "reconnect: {initial_delay: 50ms, max_delay: 500ms}", "reconnect: {initial_delay: 1s, max_delay: 1s, jitter: 0}"
        )
        with OutsideClient(server.url) as nats_py:
            process = BridgeProcess(text, tmp_path, "buffered").start()
            try:
                process.wait_ready(nats_py)
                readings = nats_py.subscribe("s.buffered.temperature")
                readings.next_json()
                server.kill()
                down_from = datetime.now().astimezone()
                time.sleep(1.5)
                down_until = datetime.now().astimezone()
                server.start()
                process.wait_ready(nats_py)
                times = [datetime.fromisoformat(readings.next_json()["time"].replace("Z", "+00:00")) for _ in range(30)]
            finally:
                assert process.stop() == 0
    during_outage = [t for t in times if down_from < t < down_until]
    assert len(during_outage) >= 5, (down_from, down_until, times)


def wait_for_log(process: BridgeProcess, fragment: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(fragment in str(record.get("message")) for record in process.log_records()):
            return
        time.sleep(0.1)
    raise AssertionError(f"no log line with {fragment!r}:\n{process.logs()}")


def test_sighup_adds_and_removes_publications(module_nats_server, nats_py, tmp_path):
    device = "republish"
    subscriptions = "  - {subject: t.republish.clear, action: clear}\n"
    process = BridgeProcess(config_text(module_nats_server.url, device, subscriptions=subscriptions), tmp_path,
                            device).start()
    try:
        process.wait_ready(nats_py)
        assert process.info(nats_py)["publications"] == []
        readings = nats_py.subscribe("s.republish.humidity")
        publications = "  - {subject: s.republish.humidity, sensor: humidity, interval: 100ms}\n"
        process.rewrite_config(config_text(module_nats_server.url, device, subscriptions=subscriptions,
                                           publications=publications))
        process.signal(signal.SIGHUP)
        assert readings.next_json()["sensor"] == "humidity"
        process.rewrite_config(config_text(module_nats_server.url, device, subscriptions=subscriptions))
        process.signal(signal.SIGHUP)
        wait_for_log(process, "reloaded")
        deadline = time.monotonic() + 15
        while process.info(nats_py)["publications"] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert process.info(nats_py)["publications"] == []
    finally:
        assert process.stop() == 0


def test_sighup_while_still_connecting_is_ignored_and_stop_still_works(tmp_path):
    with NatsServer() as never_started:
        pass  # a loopback port nobody listens on
    process = BridgeProcess(config_text(never_started.url, "early"), tmp_path, "early").start()
    try:
        wait_for_log(process, "connecting to")
        process.signal(signal.SIGHUP)
        wait_for_log(process, "reload ignored: the bridge is still starting")
        assert process.process.poll() is None
    finally:
        assert process.stop() == 0, process.logs()


def test_bridge_exits_unreachable_when_it_gives_up_reconnecting(tmp_path):
    with NatsServer() as server:
        text = config_text(server.url, "finite", subscriptions="  - {subject: t.finite.clear, action: clear}\n").replace(
            "reconnect: {initial_delay: 50ms, max_delay: 500ms}",
            "reconnect: {initial_delay: 50ms, max_delay: 100ms, max_attempts: 3}",
        )
        with OutsideClient(server.url) as nats_py:
            process = BridgeProcess(text, tmp_path, "finite").start()
            process.wait_ready(nats_py)
            server.kill()
            try:
                assert process.process.wait(30) == ExitStatus.UNREACHABLE
            finally:
                process.kill()
    assert any("gave up reconnecting" in str(r.get("message")) for r in process.log_records()), process.logs()


def test_bridge_that_never_reaches_a_server_exits_unreachable_in_one_sentence(tmp_path):
    with NatsServer() as never_started:
        pass  # a loopback port nobody listens on
    text = config_text(never_started.url, "nowhere", subscriptions="").replace(
        "reconnect: {initial_delay: 50ms, max_delay: 500ms}",
        "reconnect: {initial_delay: 50ms, max_delay: 100ms, max_attempts: 2}",
    )
    process = BridgeProcess(text, tmp_path, "nowhere").start()
    try:
        assert process.process.wait(30) == ExitStatus.UNREACHABLE, process.logs()
    finally:
        process.kill()
    errors = [str(r.get("message")) for r in process.log_records() if r.get("level") in ("error", "critical")]
    assert errors[0].startswith("giving up after 2 failed connection attempts: "), process.logs()
    assert errors[1:] == ["no NATS server took the connection (nats.reconnect.max_attempts used up); stopping"]
    assert "Traceback" not in process.logs()


def test_sighup_that_changes_only_args_leaves_no_request_unanswered(module_nats_server, nats_py, tmp_path):
    colours = ("#000001", "#000002")
    process = BridgeProcess(reload_config(module_nats_server.url, colours[0]), tmp_path, DEVICE_ID).start()
    try:
        process.wait_ready(nats_py)
        result = unanswered_across_reloads(process, nats_py, module_nats_server.url, colours, rate=2000, seconds=6.0)
        info = process.info(nats_py)
    finally:
        assert process.stop() == 0
    assert result["reloads"] >= 2, result
    assert result["unanswered"] == 0, result
    # The subscription kept its NATS subscription and its counts across the reloads.
    (subscription,) = info["subscriptions"]
    assert subscription["received"] >= result["sent"], (subscription, result)


def test_info_request_with_a_wildcard_reply_subject_is_counted_not_a_crash(bridge, nats_py):
    before = bridge.info(nats_py)["bad_requests"]
    nats_py.publish("bridge.e2e.info", b"", reply="not.a.*.inbox")
    nats_py.flush()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and bridge.info(nats_py)["bad_requests"] == before:
        time.sleep(0.05)
    assert bridge.info(nats_py)["bad_requests"] == before + 1
    assert not any(r.get("level") == "critical" or "Traceback" in str(r) for r in bridge.log_records()), bridge.logs()


def test_info_says_running_and_healthy(bridge, nats_py):
    info = bridge.info(nats_py)
    assert info["state"] == "running" and info["health"] == "ok" and info["hung"] == []
    assert info["removed_subscriptions"] == {"received": 0, "applied": 0, "errors": 0, "dropped": 0, "pending": 0}
