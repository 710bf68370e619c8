"""End to end: `bridge deploy` stores a config in a JetStream key-value bucket and real
`bridge run` processes with a `fleet:` bootstrap file follow it (apply, refuse, roll back, cache)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from bridge.testing.bridgeproc import BridgeProcess, memory_config
from bridge.testing.nats_server import NatsServer
from bridge.testing.outside import OutsideClient
from tests.harness.fleet import BUCKET, KEY, deploy, deployed
from tests.harness.polling import wait_for

def bootstrap(url: str, device_id: str, key: str = KEY, bucket: str = BUCKET) -> str:
    return memory_config(url, device_id, fleet=f"{{key: {key}, bucket: {bucket}}}")


def stored(color: list[int]) -> str:
    return f"""\
version: 1
vars: {{color: "{color}"}}
subscriptions:
  - subject: fleet.${{device.id}}.clear
    action: clear
    args: {{color: "${{color}}"}}
  - subject: fleet.${{device.id}}.pixels
    action: get_pixels
"""


def config_of(bridge: BridgeProcess, nats_py) -> dict:
    return bridge.info(nats_py)["config"]


def first_pixel(nats_py, device_id: str, color_request: bool = True) -> list[int]:
    if color_request:
        assert json.loads(nats_py.request(f"fleet.{device_id}.clear", b"", timeout=5).data)["ok"] is True
    pixels = json.loads(nats_py.request(f"fleet.{device_id}.pixels", b"", timeout=5).data)
    return pixels[0]


def srv_metadata(nats_py, device_id: str) -> dict:
    subject = nats_py.nc.new_inbox()
    inbox = nats_py.subscribe(subject)
    nats_py.publish("$SRV.INFO.bridge", b"", reply=subject)
    nats_py.flush()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        answer = inbox.next_json(timeout=5)
        if answer["metadata"].get("device") == device_id:
            return answer["metadata"]
    raise AssertionError(f"no $SRV.INFO answer from {device_id}")


def kv_history(nats_py, key: str = KEY) -> list[int]:
    async def revisions():
        kv = await nats_py.nc.jetstream().key_value(BUCKET)
        try:
            return [entry.revision for entry in await kv.history(key)]
        except Exception:  # noqa: BLE001 - nats-py: no history at all
            return []

    return nats_py._run(revisions())


@pytest.fixture(scope="module")
def module_nats_server():
    running = NatsServer(jetstream=True)
    try:
        yield running.start()
    finally:
        running.cleanup()


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("fleet")


@pytest.fixture(scope="module")
def bridges(module_nats_server, nats_py, folder):
    """Two Pis following `pis`, each with its own state directory; the first revision deployed before."""
    deployed(module_nats_server.url, stored([1, 1, 1]), folder)
    import os

    processes = []
    try:
        for device_id in ("pi1", "pi2"):
            process = BridgeProcess(bootstrap(module_nats_server.url, device_id), folder, device_id)
            os.environ["STATE_DIRECTORY"] = str(folder / f"state-{device_id}")
            try:
                process.start()
            finally:
                del os.environ["STATE_DIRECTORY"]
            processes.append(process)
        for process in processes:
            process.wait_ready(nats_py)
        yield processes
    finally:
        for process in processes:
            process.stop()


def wait_applied(bridges, nats_py, revision: int, timeout: float = 15.0) -> None:
    for bridge in bridges:
        wait_for(lambda: config_of(bridge, nats_py)["revision"] == revision, timeout,
                 f"{bridge.device_id} to apply revision {revision}:\n{bridge.logs()}")


def test_a_deploy_is_applied_by_every_bridge_and_so_is_a_change(module_nats_server, nats_py, folder, bridges):
    first = deployed(module_nats_server.url, stored([10, 0, 0]), folder)
    wait_applied(bridges, nats_py, first)
    for bridge in bridges:
        assert first_pixel(nats_py, bridge.device_id) == [10, 0, 0]
        assert srv_metadata(nats_py, bridge.device_id)["config"] == f"kv:{BUCKET}/{KEY}@{first}"

    second = deployed(module_nats_server.url, stored([0, 20, 0]), folder)
    wait_applied(bridges, nats_py, second)
    for bridge in bridges:
        assert first_pixel(nats_py, bridge.device_id) == [0, 20, 0]
        assert config_of(bridge, nats_py) == {"key": KEY, "bucket": BUCKET, "revision": second, "error": None,
                                              "refused_revision": None, "stale": False}


def test_an_invalid_file_is_refused_and_nothing_is_stored(module_nats_server, nats_py, folder, bridges):
    deployed(module_nats_server.url, stored([1, 2, 3]), folder)
    before = kv_history(nats_py)
    assert before, "the history read nothing: this test would prove nothing"
    result = deploy(module_nats_server.url, text=stored([1, 2, 3]).replace("get_pixels", "get_pixel"), folder=folder)
    assert result.returncode == 1
    assert ".yml:8:13: error: subscriptions[1].action: 'get_pixel' is not an action" in result.stderr
    assert kv_history(nats_py) == before


def test_an_invalid_entry_is_refused_on_every_bridge_which_keeps_the_previous_revision(module_nats_server, nats_py,
                                                                                       folder, bridges):
    good = deployed(module_nats_server.url, stored([0, 0, 30]), folder)
    wait_applied(bridges, nats_py, good)

    async def put_bad():
        kv = await nats_py.nc.jetstream().key_value(BUCKET)
        return await kv.put(KEY, stored([0, 0, 40]).replace("action: clear", "action: clean").encode())

    bad = nats_py._run(put_bad())
    where = f"kv:{BUCKET}/{KEY}@{bad}:5:13: error: subscriptions[0].action: 'clean' is not an action"
    for bridge in bridges:
        config = wait_for(lambda: (c := config_of(bridge, nats_py))["error"] and c, what="the refusal")
        assert config["revision"] == good and config["error"].startswith(where)
        metadata = srv_metadata(nats_py, bridge.device_id)
        assert metadata["config"] == f"kv:{BUCKET}/{KEY}@{good}"
        assert metadata["config_error"].startswith(where)
        assert first_pixel(nats_py, bridge.device_id) == [0, 0, 30]  # still the good revision's args
        refusals = [r for r in bridge.log_records() if f"refused kv:{BUCKET}/{KEY}@{bad}" in r.get("message", r.get("text", json.dumps(r)))]
        assert len(refusals) == 1, bridge.logs()
    listing = subprocess.run([sys.executable, "-m", "bridge", "fleet", "--server", module_nats_server.url, "--json"],
                             capture_output=True, text=True, timeout=60)
    listed = {entry["device"]: entry["config"] for entry in json.loads(listing.stdout)}
    for bridge in bridges:
        assert listed[bridge.device_id]["revision"] == good
        assert listed[bridge.device_id]["error"].startswith(where)

    fixed = deployed(module_nats_server.url, stored([0, 0, 50]), folder)
    wait_applied(bridges, nats_py, fixed)
    assert config_of(bridges[0], nats_py)["error"] is None
    assert "config_error" not in srv_metadata(nats_py, bridges[0].device_id)


def test_rollback_stores_the_previous_content_as_a_new_revision_and_history_lists_them(module_nats_server, nats_py,
                                                                                       folder, bridges):
    older = deployed(module_nats_server.url, stored([5, 5, 5]), folder)
    newer = deployed(module_nats_server.url, stored([6, 6, 6]), folder)
    result = deploy(module_nats_server.url, "--rollback")
    assert result.returncode == 0, result.stderr
    rolled = int(result.stdout.split()[-1])
    assert rolled > newer
    wait_applied(bridges, nats_py, rolled)
    assert first_pixel(nats_py, "pi1") == [5, 5, 5]

    listing = deploy(module_nats_server.url, "--history")
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.splitlines()
    revisions = [int(line.split()[0]) for line in lines]
    assert revisions[-3:] == [older, newer, rolled]
    assert lines[-1].endswith("(current)")
    assert all(line.split()[1].endswith("Z") and line.split()[1][:2] == "20" for line in lines)


def test_a_bridge_restarted_without_a_server_starts_from_its_cache(tmp_path, monkeypatch):
    server = NatsServer(jetstream=True).start()
    try:
        rev = deployed(server.url, stored([7, 0, 7]), tmp_path, key="lab")
        monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path / "state"))
        bridge = BridgeProcess(bootstrap(server.url, "pi3", key="lab"), tmp_path, "pi3")
        with OutsideClient(server.url) as near:
            bridge.start()
            bridge.wait_ready(near)
            wait_applied([bridge], near, rev)
        assert bridge.stop() == 0
        server.stop()

        bridge.log_path.write_text("")
        bridge.start()  # no server: only the cache can give it its subscriptions
        wait_for(lambda: "starting from the cached" in bridge.logs(), what=f"the cache to be read:\n{bridge.logs()}")
        server.start()
        with OutsideClient(server.url) as near:
            bridge.wait_ready(near)
            assert config_of(bridge, near)["revision"] == rev
            assert first_pixel(near, "pi3") == [7, 0, 7]
        running = [r for r in bridge.log_records() if "running:" in json.dumps(r)]
        assert running and "1 subscriptions" not in json.dumps(running[0]) and "2 subscriptions" in json.dumps(running[0])
        assert f"applied kv:{BUCKET}/lab@{rev}" not in bridge.logs()  # the cache already ran that revision
        bridge.stop()
    finally:
        server.cleanup()


def test_a_bridge_waits_for_an_absent_bucket_and_key_logging_once_then_applies_it(module_nats_server, nats_py, folder,
                                                                                  monkeypatch):
    monkeypatch.setenv("STATE_DIRECTORY", str(folder / "state-pi4"))
    bridge = BridgeProcess(bootstrap(module_nats_server.url, "pi4", key="later", bucket="later_configs"), folder,
                           "pi4").start()
    try:
        bridge.wait_ready(nats_py)
        wait_for(lambda: "waiting for later_configs/later" in bridge.logs(), what=f"the wait to be logged:\n{bridge.logs()}")
        assert config_of(bridge, nats_py)["revision"] is None
        time.sleep(4.5)  # two more looks for the bucket (every 2 s)
        rev = deployed(module_nats_server.url, stored([9, 9, 9]), folder, "later", "--bucket", "later_configs")
        for device in [bridge]:
            wait_for(lambda: config_of(device, nats_py) == {"key": "later", "bucket": "later_configs", "revision": rev,
                                                             "error": None, "refused_revision": None, "stale": False},
                     what=f"the apply:\n{bridge.logs()}")
        assert first_pixel(nats_py, "pi4") == [9, 9, 9]
        assert bridge.logs().count("waiting for later_configs/later") == 1
    finally:
        bridge.stop()


def test_sighup_does_not_end_a_fleet_bridge(module_nats_server, nats_py, folder, bridges):
    import signal

    bridges[0].signal(signal.SIGHUP)
    wait_for(lambda: "SIGHUP ignored" in bridges[0].logs(), what=f"the SIGHUP log:\n{bridges[0].logs()}")
    assert bridges[0].info(nats_py)["state"] == "running"


def test_a_deploy_sets_up_the_status_stream_bridge_fleet_reads_last_seen_from(module_nats_server, nats_py, folder, bridges):
    deployed(module_nats_server.url, stored([1, 2, 3]), folder)

    async def stream_subjects():
        info = await nats_py.nc.jetstream().stream_info("BRIDGE_STATUS")
        return info.config.subjects

    assert nats_py._run(stream_subjects()) == ["bridge.*.status"]
