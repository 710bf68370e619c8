"""End to end: `bridge deploy` stores a config in a JetStream key-value bucket and real
`bridge run` processes with a `fleet:` bootstrap file follow it (apply, refuse, roll back, cache)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from bridge.cli.exit import ExitStatus
from bridge.testing.bridgeproc import BridgeProcess, memory_config
from bridge.testing.nats_server import NatsServer
from bridge.testing.outside import OutsideClient
from tests.harness.fleet import BUCKET, KEY, deploy, deployed, stored_revision
from bridge.testing.polling import wait_for
from tests.harness.srv_responder import FakeBridge

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
    rolled = stored_revision(result.stdout)
    assert rolled > newer
    assert f"from revision {newer} to the content of revision {older}" in result.stdout
    assert sorted(result.stdout.splitlines()[-2:]) == ["pi1  applied", "pi2  applied"]
    wait_applied(bridges, nats_py, rolled)
    assert first_pixel(nats_py, "pi1") == [5, 5, 5]

    listing = deploy(module_nats_server.url, "--history")
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.splitlines()
    revisions = [int(line.split()[0]) for line in lines]
    assert revisions[-3:] == [older, newer, rolled]
    assert lines[-1].endswith(f"bytes  rollback to {older}, current")
    assert all(line.split()[1].endswith("Z") and line.split()[1][:2] == "20" for line in lines)


def revisions_of(url: str, key: str) -> list[tuple[int, str]]:
    """(revision, text) of every kept PUT of `key`, read with `--history` and `--show`."""
    listing = deploy(url, "--history", key=key)
    assert listing.returncode == 0, listing.stderr
    kept = []
    for line in listing.stdout.splitlines():
        revision = int(line.split()[0])
        if "bytes" in line:
            shown = deploy(url, "--show", str(revision), key=key)
            assert shown.returncode == 0, shown.stderr
            kept.append((revision, shown.stdout))
    return kept


def test_two_rollbacks_go_back_twice_then_there_is_nothing_earlier(module_nats_server, folder):
    url, key = module_nats_server.url, "chain"
    first, second, third = (deployed(url, stored([n, n, n]), folder, key) for n in (1, 2, 3))
    back = deploy(url, "--rollback", key=key)
    assert back.returncode == 0, back.stderr
    again = deploy(url, "--rollback", key=key)
    assert again.returncode == 0, again.stderr
    texts = dict(revisions_of(url, key))
    assert texts[stored_revision(back.stdout)] == stored([2, 2, 2])
    assert texts[stored_revision(again.stdout)] == stored([1, 1, 1])  # on back, not forth to x3
    last = deploy(url, "--rollback", key=key)
    assert last.returncode == ExitStatus.FAILED
    assert "has no earlier valid revision to go back to" in last.stderr
    assert [revision for revision, _ in revisions_of(url, key)][-1] == stored_revision(again.stdout)


def test_rollback_walks_over_an_invalid_revision_and_works_after_a_delete(module_nats_server, nats_py, folder):
    url, key = module_nats_server.url, "walk"
    good = deployed(url, stored([1, 1, 1]), folder, key)

    async def put_bad_then_good_then_delete():
        kv = await nats_py.nc.jetstream().key_value(BUCKET)
        await kv.put(key, stored([2, 2, 2]).replace("action: clear", "action: clean").encode())
        await kv.put(key, stored([3, 3, 3]).encode())
        await kv.delete(key)

    nats_py._run(put_bad_then_good_then_delete())
    back = deploy(url, "--rollback", key=key)
    assert back.returncode == 0, back.stderr
    assert "skipping revision" in back.stderr and "'clean' is not an action" in back.stderr
    assert f"to the content of revision {good}" in back.stdout
    assert "(after the DEL marker" in back.stdout
    assert dict(revisions_of(url, key))[stored_revision(back.stdout)] == stored([1, 1, 1])


def test_rollback_to_a_named_revision_and_the_ones_it_refuses(module_nats_server, nats_py, folder):
    url, key = module_nats_server.url, "named"
    first = deployed(url, stored([1, 1, 1]), folder, key)
    deployed(url, stored([2, 2, 2]), folder, key)
    to_first = deploy(url, "--to", str(first), key=key)
    assert to_first.returncode == 0, to_first.stderr
    assert dict(revisions_of(url, key))[stored_revision(to_first.stdout)] == stored([1, 1, 1])
    same = deploy(url, "--rollback", "--to", str(first), key=key)
    assert (same.returncode, "nothing stored" in same.stdout) == (ExitStatus.OK, True)
    missing = deploy(url, "--to", "999", key=key)
    assert (missing.returncode, "is not in the kept history" in missing.stderr) == (ExitStatus.FAILED, True)

    async def delete():
        kv = await nats_py.nc.jetstream().key_value(BUCKET)
        await kv.delete(key)
        return (await kv.history(key))[-1].revision

    deleted = nats_py._run(delete())
    refused = deploy(url, "--to", str(deleted), key=key)
    assert (refused.returncode, "is a DEL marker" in refused.stderr) == (ExitStatus.FAILED, True)
    assert "deleted" in deploy(url, "--history", key=key).stdout.splitlines()[-1]


def test_show_prints_a_revision_exactly(module_nats_server, folder):
    revision = deployed(module_nats_server.url, stored([4, 4, 4]), folder, "shown")
    shown = deploy(module_nats_server.url, "--show", str(revision), key="shown")
    assert (shown.returncode, shown.stdout) == (0, stored([4, 4, 4]))


def test_compare_and_set_new_key_replaced_unchanged_and_expect_revision(module_nats_server, folder):
    url, key = module_nats_server.url, "cas"
    created = deploy(url, text=stored([1, 0, 0]), folder=folder, key=key)
    assert created.returncode == 0, created.stderr
    first = stored_revision(created.stdout)
    assert f"stored revision {first} (new key)" in created.stdout
    replaced = deploy(url, "--expect-revision", str(first), text=stored([2, 0, 0]), folder=folder, key=key)
    second = stored_revision(replaced.stdout)
    assert f"stored revision {second} (replaced {first})" in replaced.stdout
    unchanged = deploy(url, text=stored([2, 0, 0]), folder=folder, key=key)
    assert unchanged.returncode == 0 and "has this content already; nothing stored" in unchanged.stdout
    stale = deploy(url, "--expect-revision", str(first), text=stored([3, 0, 0]), folder=folder, key=key)
    assert stale.returncode == ExitStatus.CONFLICT
    assert stale.stderr == f"bridge deploy: kv:{BUCKET}/{key} is at revision {second}, not the expected {first}; " \
                           "nothing stored\n"
    assert [revision for revision, _ in revisions_of(url, key)] == [first, second]


def applying(nats_py, key: str):
    """A follower's metadata: it runs the key's latest revision."""
    async def metadata():
        entry = await (await nats_py.nc.jetstream().key_value(BUCKET)).get(key)
        return {"config": f"kv:{BUCKET}/{key}@{entry.revision}"}

    return metadata


def refusing(nats_py, key: str, running: int):
    """A follower's metadata: it keeps `running` and refuses every later revision."""
    async def metadata():
        entry = await (await nats_py.nc.jetstream().key_value(BUCKET)).get(key)
        if entry.revision == running:
            return {"config": f"kv:{BUCKET}/{key}@{running}"}
        return {"config": f"kv:{BUCKET}/{key}@{running}", "config_refused": f"kv:{BUCKET}/{key}@{entry.revision}",
                "config_error": f"kv:{BUCKET}/{key}@{entry.revision}:4:13: error: nope"}

    return metadata


def test_deploy_wait_reports_each_pi_and_exits_by_what_the_fleet_did(module_nats_server, nats_py, folder):
    url, key = module_nats_server.url, "waited"
    first = deployed(url, stored([1, 1, 1]), folder, key)
    with FakeBridge(nats_py, "pi-3", applying(nats_py, key), announce=True), \
            FakeBridge(nats_py, "pi-4", applying(nats_py, key), delay=0.5, announce=True), \
            FakeBridge(nats_py, "other", {"config": f"kv:{BUCKET}/another@5"}):
        done = deploy(url, "--wait=10", text=stored([2, 2, 2]), folder=folder, key=key)
        assert done.returncode == ExitStatus.OK, done.stderr
        assert done.stdout.splitlines()[1:] == ["pi-3  applied", "pi-4  applied"]
        with FakeBridge(nats_py, "pi-7", refusing(nats_py, key, first)):
            refused = deploy(url, "--wait=10", text=stored([3, 3, 3]), folder=folder, key=key)
            assert refused.returncode == ExitStatus.REFUSED, refused.stderr
            revision = stored_revision(refused.stdout)
            assert refused.stdout.splitlines()[1:] == [
                "pi-3  applied", "pi-4  applied", f"pi-7  refused: kv:{BUCKET}/{key}@{revision}:4:13: error: nope"]
            history = deploy(url, "--history", key=key)
            assert history.stdout.splitlines()[-1].endswith("current, refused by 1 Pi(s)")
        with FakeBridge(nats_py, "pi-9", {"config": f"kv:{BUCKET}/{key}@{first}"}):
            late = deploy(url, "--wait=1", text=stored([4, 4, 4]), folder=folder, key=key)
            assert late.returncode == ExitStatus.NOT_ANSWERED, late.stderr
            assert late.stdout.splitlines()[-1] == f"pi-9  not applied yet (runs revision {first})"
            summary = deploy(url, text=stored([5, 5, 5]), folder=folder, key=key)
            assert summary.returncode == ExitStatus.OK, summary.stderr  # the summary never sets the status
            assert "1 of 3 Pi(s) had not decided after 2s" in summary.stderr
        quiet = deploy(url, "--no-wait", text=stored([6, 6, 6]), folder=folder, key=key)
        assert quiet.stdout.splitlines() == [f"stored revision {stored_revision(quiet.stdout)} "
                                             f"(replaced {stored_revision(summary.stdout)})"]


def test_a_pi_that_stops_answering_is_reported_as_not_answering(module_nats_server, nats_py, folder):
    url, key = module_nats_server.url, "silent"
    deployed(url, stored([1, 1, 1]), folder, key)
    gone = FakeBridge(nats_py, "pi-5", {"config": f"kv:{BUCKET}/{key}"}).start()
    stays = FakeBridge(nats_py, "pi-6", applying(nats_py, key)).start()
    try:
        argv = [sys.executable, "-m", "bridge", "deploy", "--key", key, "--server", url, "--wait=3"]
        (folder / "silent.yml").write_text(stored([2, 2, 2]))
        process = subprocess.Popen([*argv, str(folder / "silent.yml")], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        wait_for(lambda: gone.answered > 0, what="the deploy to ask the fleet")
        gone.stop()
        out, err = process.communicate(timeout=60)
    finally:
        stays.stop()
    assert process.returncode == ExitStatus.NOT_ANSWERED, err
    assert out.splitlines()[1:] == ["pi-5  not answering", "pi-6  applied"]


def test_dry_run_checks_each_device_id_and_every_follower(module_nats_server, nats_py, folder):
    path = folder / "per-device.yml"  # valid for every device id but kitchen, which gets the same subscription twice
    path.write_text("version: 1\nsubscriptions:\n  - {subject: 'pi.${device.id}.clear', action: clear}\n"
                    "  - {subject: pi.kitchen.clear, action: clear}\n")
    argv = [sys.executable, "-m", "bridge", "deploy", str(path), "--key", "dry", "--server", module_nats_server.url,
            "--dry-run"]
    hall = subprocess.run([*argv, "--device-id", "hall"], capture_output=True, text=True, timeout=60)
    assert hall.returncode == 0, hall.stderr
    both = subprocess.run([*argv, "--device-id", "hall", "--device-id", "kitchen"], capture_output=True, text=True,
                          timeout=60)
    assert both.returncode == ExitStatus.FAILED
    assert "for device hall; not stored" in both.stdout and "invalid for device kitchen:" in both.stderr
    assert "subscriptions[1].subject: same subject and action as subscriptions[0]" in both.stderr
    nobody = subprocess.run([*argv, "--fleet"], capture_output=True, text=True, timeout=60)
    assert (nobody.returncode, "no bridge following" in nobody.stderr) == (ExitStatus.FAILED, True)
    with FakeBridge(nats_py, "kitchen", {"config": f"kv:{BUCKET}/dry@3"}), \
            FakeBridge(nats_py, "cellar", {"config": f"kv:{BUCKET}/dry"}), \
            FakeBridge(nats_py, "attic", {"config": f"kv:{BUCKET}/another@3"}):
        fleet = subprocess.run([*argv, "--fleet"], capture_output=True, text=True, timeout=60)
    assert fleet.returncode == ExitStatus.FAILED
    assert "for device cellar; not stored" in fleet.stdout and "invalid for device kitchen:" in fleet.stderr
    assert "attic" not in fleet.stdout + fleet.stderr


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


def test_deploy_waits_for_the_pis_whose_last_status_names_the_key_however_late_they_answer(
        module_nats_server, nats_py, folder):
    url, key = module_nats_server.url, "known"
    first = deployed(url, stored([1, 1, 1]), folder, key)  # also creates BRIDGE_STATUS

    async def statuses():
        for device, status, config in (("pi-slow", "online", f"kv:{BUCKET}/{key}@{first}"),
                                       ("pi-gone", "online", f"kv:{BUCKET}/{key}@{first}"),
                                       ("pi-off", "offline", f"kv:{BUCKET}/{key}@{first}"),
                                       ("pi-other", "online", f"kv:{BUCKET}/another@{first}")):
            document = {"device": device, "status": status, "version": "0", "time": "2026-12-03T10:00:00.000Z",
                        "config": config}
            await nats_py.nc.publish(f"bridge.{device}.status", json.dumps(document).encode())
        await nats_py.nc.flush()

    nats_py._run(statuses())
    with FakeBridge(nats_py, "pi-slow", applying(nats_py, key), delay=2.0):
        done = deploy(url, "--wait=8", text=stored([2, 2, 2]), folder=folder, key=key)
    assert done.returncode == ExitStatus.NOT_ANSWERED, done.stderr
    assert done.stdout.splitlines()[1:] == ["pi-gone  not answering", "pi-slow  applied"]


def test_no_revision_reads_out_a_secret_of_the_pi_anywhere_it_reports(module_nats_server, nats_py, folder, monkeypatch):
    """The Pi exports a secret from a file and one from its environment; revisions that try to read
    them (directly, or through the exported vars) are refused, and neither secret appears in its
    log, `bridge.ID.info`, `$SRV.INFO` or `bridge fleet --json`."""
    url, key, device_id = module_nats_server.url, "secrets", "vault"
    token, room = "t0ken-from-a-file", "room-from-the-env"
    (folder / "token").write_text(token)
    fleet = f"{{key: {key}, bucket: {BUCKET}, vars: {{token: '${{file:{folder / 'token'}}}', room: '${{env:PI_ROOM}}', site: lab}}}}"
    monkeypatch.setenv("PI_ROOM", room)
    monkeypatch.setenv("STATE_DIRECTORY", str(folder / "state-vault"))
    bridge = BridgeProcess(memory_config(url, device_id, fleet=fleet), folder, device_id).start()
    try:
        bridge.wait_ready(nats_py)
        plain = deployed(url, stored([1, 1, 1]).replace("fleet.${device.id}.clear", "fleet.${site}.${device.id}.clear")
                         .replace("vars: {", "vars: {site: nowhere, "), folder, key)
        wait_for(lambda: config_of(bridge, nats_py)["revision"] == plain, what=f"revision {plain}:\n{bridge.logs()}")
        cleared = nats_py.request(f"fleet.lab.{device_id}.clear", b"", timeout=5)  # its exported site, not the default
        assert json.loads(cleared.data)["ok"] is True and first_pixel(nats_py, device_id, False) == [1, 1, 1]

        async def put(text):
            kv = await nats_py.nc.jetstream().key_value(BUCKET)
            return await kv.put(key, text.encode())

        attempts = [stored([2, 2, 2]).replace("fleet.${device.id}.clear", reference)
                    for reference in ("fleet.${token}.clear", "fleet.${room}.clear",
                                      f"fleet.${{file:{folder / 'token'}}}.clear", "fleet.${env:PI_ROOM}.clear")]
        for attempt in attempts:
            revision = nats_py._run(put(attempt))
            wait_for(lambda: config_of(bridge, nats_py)["refused_revision"] == revision,
                     what=f"revision {revision} refused:\n{bridge.logs()}")
            assert config_of(bridge, nats_py)["revision"] == plain
            seen = [bridge.logs(), json.dumps(bridge.info(nats_py)), json.dumps(srv_metadata(nats_py, device_id)),
                    subprocess.run([sys.executable, "-m", "bridge", "fleet", "--server", url, "--json"],
                                   capture_output=True, text=True, timeout=60).stdout]
            assert device_id in seen[3]
            for text in seen:
                assert token not in text and room not in text
        checked = deploy(url, "--dry-run", text=attempts[2], folder=folder, key=key)
        assert checked.returncode == ExitStatus.FAILED and ".yml:4:" in checked.stderr and "file:" in checked.stderr
        assert token not in checked.stderr
    finally:
        bridge.stop()
