"""`bridge demo` (`make run`) runs its nats-server with JetStream, its store in a temporary folder
that goes with the demo; the banner's `bridge fleet` command lists the demo's bridge, and its
`bridge deploy` commands store the example it wrote and list that revision."""

from __future__ import annotations

import json
import signal
from pathlib import Path

from bridge.testing.outside import OutsideClient
from tests.harness.demo import WAIT, DemoProcess, process_exists, run_printed


def test_demo_server_has_jetstream_and_its_store_is_removed_at_exit(emulator_if_installed, tmp_path):
    demo = DemoProcess(["--web", "127.0.0.1:0"], tmp_path / "demo.log")
    try:
        server = demo.wait_for_line(r"NATS server:\s+(nats://\S+) \(nats-server pid (\d+)")
        nats_url, nats_pid = server.group(1), int(server.group(2))
        store = Path(demo.wait_for_line(r"JetStream:\s+on, stored in (\S+) \(removed with the demo\)").group(1))
        exported = {"NATS_URL": demo.wait_for_line(r"^\s+export NATS_URL=(\S+)$").group(1)}
        fleet = demo.wait_for_line(r"^\s+(\S*bridge fleet)$").group(1)
        deploy = demo.wait_for_line(r"^\s+(\S*bridge deploy (\S+) --key demo)$")
        history = demo.wait_for_line(r"^\s+(\S*bridge deploy --key demo --history)$").group(1)
        demo.wait_for_line("Ctrl-C stops")
        assert exported["NATS_URL"] == nats_url
        with OutsideClient(nats_url) as nats_py:
            info = nats_py.request_json("$JS.API.INFO", timeout=5)
        assert "error" not in info and "limits" in info, info
        assert store.is_dir()
        listed = run_printed(fleet + " --json", exported)
        assert listed.returncode == 0, listed.stderr
        assert [e["device"] for e in json.loads(listed.stdout)] == ["demo"]
        example = Path(deploy.group(2))
        assert example.parent == store.parent
        stored = run_printed(deploy.group(1), exported)
        assert stored.returncode == 0, stored.stderr
        assert stored.stdout.splitlines() == ["stored revision 1 (new key)"]
        revisions = run_printed(history, exported)
        assert revisions.returncode == 0, revisions.stderr
        assert revisions.stdout.split()[0] == "1" and revisions.stdout.rstrip().endswith("current")
        listed = json.loads(run_printed(fleet + " --json", exported).stdout)  # the demo bridge runs from its file
        assert [(e["device"], e["config"]["file"] is not None) for e in listed] == [("demo", True)]
        demo.process.send_signal(signal.SIGINT)
        assert demo.process.wait(WAIT) == 0, demo.logs()
        assert not process_exists(nats_pid)
        assert not store.exists() and not store.parent.exists(), "the demo left its JetStream store behind"
        assert not example.exists()
    finally:
        demo.kill()
