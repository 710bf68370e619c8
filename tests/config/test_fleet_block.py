"""The fleet bootstrap file (`fleet:`) and the stored config (`load_stored`): checked like a file,
errors located at `kv:BUCKET/KEY@REV:LINE:COL`."""

from __future__ import annotations

import pytest

from bridge.config import ConfigError, load_config, load_stored
from bridge.config.model import FleetConfig

BOOTSTRAP = """\
version: 1
fleet:
  key: pis
device:
  id: pi7
  driver: memory
nats:
  servers: [nats://127.0.0.1:4222]
"""

STORED = """\
version: 1
vars: {room: lab}
subscriptions:
  - subject: cmd.${device.id}.${room}
    action: show_message
    args: {text: hi}
publications:
  - subject: sensors.${device.id}.temperature
    sensor: temperature
    interval: 5s
"""

SOURCE = "kv:bridge_config/pis@4"


@pytest.fixture
def bootstrap(tmp_path):
    path = tmp_path / "bridge.yml"
    path.write_text(BOOTSTRAP)
    return load_config(path)


def errors(text: str, bootstrap) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_stored(text, bootstrap, SOURCE)
    return [str(issue) for issue in caught.value.errors]


def test_a_bootstrap_file_names_its_key_and_defaults_the_bucket(bootstrap):
    assert bootstrap.fleet == FleetConfig(key="pis", bucket="bridge_config")
    assert bootstrap.subscriptions == () and bootstrap.publications == ()


def test_a_plain_file_has_no_fleet(tmp_path):
    path = tmp_path / "plain.yml"
    path.write_text(BOOTSTRAP.replace("fleet:\n  key: pis\n", ""))
    assert load_config(path).fleet is None


@pytest.mark.parametrize("section", ["vars: {a: 1}", "subscriptions: []", "publications: []"])
def test_a_bootstrap_file_may_not_hold_what_the_stored_config_holds(tmp_path, section):
    path = tmp_path / "bridge.yml"
    path.write_text(BOOTSTRAP + section + "\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    name = section.split(":")[0]
    assert [str(issue) for issue in caught.value.errors] == [
        f"{path}:9:{len(name) + 3}: error: {name}: a bootstrap file (with 'fleet:') takes {name} from the stored "
        f"config; move {'it' if name == 'vars' else 'them'} there, got {'a mapping' if name == 'vars' else 'a list'}"]


def test_fleet_needs_a_key(tmp_path):
    path = tmp_path / "bridge.yml"
    path.write_text(BOOTSTRAP.replace("  key: pis\n", "  bucket: b\n"))
    with pytest.raises(ConfigError, match="fleet.key: missing required key 'key'"):
        load_config(path)


def test_the_stored_config_is_merged_into_the_bootstrap_with_its_device(bootstrap):
    config = load_stored(STORED, bootstrap, SOURCE)
    assert [s.subject for s in config.subscriptions] == ["cmd.pi7.lab"]
    assert [p.subject for p in config.publications] == ["sensors.pi7.temperature"]
    assert config.publications[0].interval == 5.0
    assert config.source == SOURCE
    assert (config.device, config.nats, config.fleet) == (bootstrap.device, bootstrap.nats, bootstrap.fleet)


def test_stored_errors_point_into_the_entry(bootstrap):
    assert errors(STORED.replace("show_message", "show_mesage"), bootstrap) == [
        f"{SOURCE}:5:13: error: subscriptions[0].action: 'show_mesage' is not an action; did you mean 'show_message'?"]


def test_stored_semantic_checks_run_too(bootstrap):
    text = STORED.replace("interval: 5s", "interval: 5s\n  - subject: sensors.${device.id}.temperature\n"
                                          "    sensor: temperature\n    interval: 1s")
    assert errors(text, bootstrap) == [f"{SOURCE}:11:14: error: publications[1].subject: same subject and sensor "
                                       "as publications[0] (line 8)"]


@pytest.mark.parametrize("key", ["nats", "device", "fleet", "web"])
def test_a_stored_config_may_not_set_the_bootstrap_sections(bootstrap, key):
    assert errors(STORED + f"{key}: {{}}\n", bootstrap) == [
        f"{SOURCE}:11:1: error: {key}: {key!r} does not belong in a stored config: it holds only version, vars, "
        "subscriptions, publications, homeassistant, telemetry, display; device, nats and web come from each Pi's bootstrap file"]


def test_stored_yaml_errors_and_a_missing_version(bootstrap):
    assert errors("version: [\n", bootstrap)[0].startswith(f"{SOURCE}:2:1: error: <yaml>: YAML syntax")
    assert errors("subscriptions: []\n", bootstrap) == [f"{SOURCE}:1:1: error: version: missing required key 'version'"]
    assert errors("- 1\n", bootstrap)[0].startswith(f"{SOURCE}:1:1: error: <root>: a stored config is a mapping")


@pytest.mark.parametrize("block, message", [
    ("  public: [site, zonee]\n", "3:18: error: fleet.public[1]: public names 'zonee', which is not one of "
                                  "fleet.vars; did you mean 'zone'?"),
    ("  public: [x]\n", "3:12: error: fleet.public[0]: public names 'x', which is not one of fleet.vars "
                        "(fleet.vars: zone, site)"),
    ("  vars: {HOSTNAME: x}\n", "3:10: error: fleet.vars.HOSTNAME: HOSTNAME is built in (the machine's host name); "
                                "pick another name"),
    ("  vars: {1a: x}\n", "3:10: error: fleet.vars.1a: variable names use letters, digits and '_' and do not start "
                          "with a digit, got '1a'"),
    ("  vars: {a: [1]}\n", "3:13: error: fleet.vars.a: a variable is a string, number or true/false, got a list"),
    ("  vars: {}\n  public: [y]\n", "4:12: error: fleet.public[0]: public names 'y', which is not one of fleet.vars "
                                   "(fleet.vars: none defined)"),
])
def test_fleet_vars_and_public_are_checked(tmp_path, block, message):
    path = tmp_path / "bridge.yml"
    exports = "" if "vars" in block else "  vars: {zone: z, site: s}\n"
    path.write_text(f"version: 1\nfleet:\n{block}{exports}  key: pis\ndevice: {{id: pi7}}\n"
                    "nats: {servers: [nats://127.0.0.1:4222]}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert [str(issue) for issue in caught.value.errors] == [f"{path}:{message}"]


@pytest.mark.parametrize("exported, shown", [("[zone]", "a list"), ("5", "5")])
def test_public_names_of_fleet_vars_that_are_no_mapping_are_all_unknown(tmp_path, exported, shown):
    path = tmp_path / "bridge.yml"
    path.write_text(f"version: 1\nfleet:\n  vars: {exported}\n  public: [zone]\n  key: pis\ndevice: {{id: pi7}}\n"
                    "nats: {servers: [nats://127.0.0.1:4222]}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert [str(issue) for issue in caught.value.errors] == [
        f"{path}:3:9: error: fleet.vars: expected a mapping, got {shown}",
        f"{path}:4:12: error: fleet.public[0]: public names 'zone', which is not one of fleet.vars (fleet.vars: none "
        "defined)"]


# --- the stored form's own schema, for editors -----------------------------------------------------


def test_the_shipped_stored_schema_is_the_one_made_from_the_main_schema():
    from bridge.config.schema import STORED_SCHEMA_FILE, stored_schema_text

    assert STORED_SCHEMA_FILE.read_text(encoding="utf-8") == stored_schema_text(), (
        "regenerate it: bridge schema --stored > bridge/config/bridge-stored.schema.json")


def test_the_stored_schema_takes_a_stored_config_and_refuses_what_belongs_in_the_bootstrap_file():
    import yaml
    from jsonschema import Draft202012Validator

    from bridge.config.schema import stored_schema

    validator = Draft202012Validator(stored_schema())
    stored = yaml.safe_load(STORED)
    assert list(validator.iter_errors(stored)) == []
    for key, value in (("nats", {"servers": ["nats://h:4222"]}), ("device", {"id": "pi"}), ("fleet", {"key": "k"})):
        assert list(validator.iter_errors({**stored, key: value})), key
    assert list(validator.iter_errors({"subscriptions": []}))  # version is required


def test_bridge_schema_stored_prints_it(capsys):
    from bridge.cli.main import main
    from bridge.config.schema import stored_schema_text

    assert main(["schema", "--stored"]) == 0
    assert capsys.readouterr().out == stored_schema_text()


def test_the_shipped_stored_example_is_valid_for_a_pi_and_points_editors_at_its_schema(monkeypatch):
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    stored = repo / "configs" / "stored" / "pis.yml"
    monkeypatch.setenv("SITE", "attic")
    bootstrap = load_config(repo / "configs" / "fleet-pi.yml")
    assert (bootstrap.fleet.key, bootstrap.fleet.bucket) == ("pis", "bridge_config")
    assert bootstrap.fleet.vars == {"site": "attic"} and bootstrap.fleet.public == ("site",)
    config = load_stored(stored.read_text(), bootstrap, "kv:bridge_config/pis@1")
    pi = bootstrap.device.id  # this machine's host name
    assert [s.subject for s in config.subscriptions] == [f"attic.{pi}.led.show", f"attic.{pi}.led.clear"]
    assert config.homeassistant.name == f"Sense HAT {pi}"
    assert stored.read_text().splitlines()[0] == "# yaml-language-server: $schema=../../schemas/bridge-stored.schema.json"
