"""Least privilege, as the docs' permissions guide gives it: a nats-server with JetStream and exactly
the permissions of a Pi (follow its key, answer `$SRV`, publish its own status) and of an operator
(deploy). A real `bridge run` as the Pi follows what `bridge deploy` stores as the operator, with
no permission error in its log; `bridge deploy` with the Pi's credentials is refused at once with a
sentence that says "permission" (exit 2), not a timeout."""

from __future__ import annotations

import json

import pytest

from bridge.cli.exit import ExitStatus
from bridge.testing.bridgeproc import BridgeProcess, memory_config
from bridge.testing.nats_server import NatsServer
from bridge.testing.outside import OutsideClient
from tests.harness.fleet import BUCKET, KEY, deploy
from bridge.testing.polling import wait_for

DEVICE = "pi1"

# The recipe of the docs' permissions guide, for bucket bridge_config, key pis and device pi1.
USERS = f"""
authorization {{
  users: [
    {{ user: {DEVICE}, password: pi-secret, permissions: {{
        publish: {{ allow: [
          "$JS.API.STREAM.INFO.KV_{BUCKET}",
          "$JS.API.CONSUMER.CREATE.KV_{BUCKET}.*.$KV.{BUCKET}.{KEY}",
          "$JS.API.CONSUMER.DELETE.KV_{BUCKET}.*",
          "$JS.FC.KV_{BUCKET}.>",
          "$SRV.PING.bridge",
          "bridge.{DEVICE}.status",
          "sensors.{DEVICE}.>"
        ] }}
        subscribe: {{ allow: ["_INBOX.>", "$SRV.>", "bridge.{DEVICE}.info", "fleet.{DEVICE}.>"] }}
        allow_responses: true
    }} }}
    {{ user: operator, password: op-secret, permissions: {{
        publish: {{ allow: ["$JS.API.>", "$KV.{BUCKET}.>", "$SRV.>", "bridge.*.info"] }}
        subscribe: {{ allow: ["_INBOX.>"] }}
    }} }}
    {{ user: admin, password: admin-secret }}
  ]
}}
"""

STORED = """\
version: 1
subscriptions:
  - subject: fleet.${device.id}.pixels
    action: get_pixels
"""


def url_for(server: NatsServer, user: str, password: str) -> str:
    return server.url.replace("nats://", f"nats://{user}:{password}@")


def stored_revision(nats_py) -> int:
    async def revision():
        kv = await nats_py.nc.jetstream().key_value(BUCKET)
        return (await kv.get(KEY)).revision

    return nats_py._run(revision())


def srv_metadata(nats_py) -> dict:
    inbox_subject = nats_py.nc.new_inbox()
    inbox = nats_py.subscribe(inbox_subject)
    nats_py.publish("$SRV.INFO.bridge", b"", reply=inbox_subject)
    nats_py.flush()
    while True:
        answer = inbox.next_json(timeout=5)
        if answer["metadata"].get("device") == DEVICE:
            return answer["metadata"]


@pytest.fixture
def server():
    running = NatsServer(jetstream=True, config=USERS)
    try:
        yield running.start()
    finally:
        running.cleanup()


def test_a_pi_with_least_privilege_follows_deploys_and_answers_srv(server, tmp_path, monkeypatch):
    operator = url_for(server, "operator", "op-secret")
    first = deploy(operator, text=STORED, folder=tmp_path)
    assert first.returncode == 0, first.stderr
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path / "state"))
    pi = BridgeProcess(memory_config(url_for(server, DEVICE, "pi-secret"), DEVICE,
                                     fleet=f"{{key: {KEY}, bucket: {BUCKET}}}"), tmp_path, DEVICE)
    with OutsideClient(url_for(server, "admin", "admin-secret")) as nats_py:
        try:
            pi.start()
            pi.wait_ready(nats_py)
            revision = stored_revision(nats_py)
            wait_for(lambda: pi.info(nats_py)["config"]["revision"] == revision, 15,
                     f"the Pi to apply revision {revision}:\n{pi.logs()}")
            pixels = json.loads(nats_py.request(f"fleet.{DEVICE}.pixels", b"", timeout=5).data)
            assert len(pixels) == 64
            second = deploy(operator, text=STORED + "  - {subject: 'fleet.${device.id}.clear', action: clear}\n",
                            folder=tmp_path)
            assert second.returncode == 0, second.stderr
            revision = stored_revision(nats_py)
            wait_for(lambda: pi.info(nats_py)["config"]["revision"] == revision, 15,
                     f"the Pi to apply revision {revision}:\n{pi.logs()}")
            assert json.loads(nats_py.request(f"fleet.{DEVICE}.clear", b"", timeout=5).data) == {"ok": True}
            assert srv_metadata(nats_py)["config"] == f"kv:{BUCKET}/{KEY}@{revision}"
        finally:
            pi.stop()
    assert "permission" not in pi.logs().lower(), pi.logs()


@pytest.mark.skipif(not hasattr(ExitStatus, "CONFLICT"),
                    reason="bridge deploy maps a permission refusal to exit 2 on the deploy branch (issue #15)")
def test_bridge_deploy_with_the_pis_credentials_is_refused_at_once_for_lack_of_permission(server, tmp_path):
    assert deploy(url_for(server, "operator", "op-secret"), text=STORED, folder=tmp_path).returncode == 0
    refused = deploy(url_for(server, DEVICE, "pi-secret"), text=STORED, folder=tmp_path)
    assert refused.returncode == 2, (refused.stdout, refused.stderr)
    assert "permission" in refused.stderr.lower(), refused.stderr
    assert "Traceback" not in refused.stderr and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
