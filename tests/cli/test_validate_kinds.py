"""`bridge validate` says what kind of file it checked: a file a bridge runs, a fleet bootstrap
(which follows a key), or a stored fleet config (checked as a Pi checks it, not as a broken file)."""

from __future__ import annotations

import json
from pathlib import Path

from bridge.cli.exit import ExitStatus
from bridge.cli.main import main

REPO = Path(__file__).resolve().parents[2]
STORED = str(REPO / "configs" / "stored" / "pis.yml")
BOOTSTRAP = str(REPO / "configs" / "fleet-pi.yml")
PLAIN = str(REPO / "configs" / "minimal.yml")


def test_a_stored_config_is_checked_as_a_pi_checks_it(capsys):
    assert main(["validate", STORED]) == ExitStatus.OK
    out = capsys.readouterr().out
    assert out.startswith(f"{STORED}: ok: a stored fleet config")
    assert f"bridge deploy {STORED} --key KEY" in out
    assert "nats" not in out.split("(")[0]


def test_an_invalid_stored_config_names_the_position_and_how_it_was_checked(tmp_path, capsys):
    stored = tmp_path / "stored.yml"
    stored.write_text("version: 1\nsubscriptions:\n  - subject: pi.${device.id}.x\n    action: show_mesage\n")
    assert main(["validate", str(stored)]) == ExitStatus.FAILED
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(f"{stored}:4:13: error: subscriptions[0].action: 'show_mesage' is not an action")
    assert "missing required key" not in "\n".join(err)
    assert err[-1].startswith(f"{stored}: note: checked as a stored fleet config")


def test_a_stored_config_reads_no_file_of_the_machine_checking_it(tmp_path, capsys):
    secret = tmp_path / "secret"
    secret.write_text("hunter2")
    stored = tmp_path / "stored.yml"
    stored.write_text(f"version: 1\nvars: {{x: '${{file:{secret}}}'}}\n")
    assert main(["validate", str(stored)]) == ExitStatus.FAILED
    assert "hunter2" not in capsys.readouterr().err


def test_a_bootstrap_names_the_key_it_follows(capsys):
    assert main(["validate", BOOTSTRAP]) == ExitStatus.OK
    out = capsys.readouterr().out
    assert out.startswith(f"{BOOTSTRAP}: ok: a fleet bootstrap: device ")
    assert "come from key 'pis' of bucket 'bridge_config'" in out
    assert "0 subscriptions" not in out


def test_the_json_report_carries_the_kind(capsys):
    assert main(["validate", "--format", "json", STORED, BOOTSTRAP, PLAIN]) == ExitStatus.OK
    report = json.loads(capsys.readouterr().out)
    assert [(f["kind"], f["valid"]) for f in report["files"]] == [("stored", True), ("bootstrap", True), ("file", True)]
    assert report["files"][1]["summary"]["follows"] == {"bucket": "bridge_config", "key": "pis"}


def test_set_on_a_stored_config_is_bad_usage(capsys):
    assert main(["validate", "--set", "vars.x=1", STORED]) == ExitStatus.USAGE
    assert "stored config" in capsys.readouterr().err
