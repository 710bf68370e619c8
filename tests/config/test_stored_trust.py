"""A stored config is data shared by the fleet: it reads nothing of the Pi but what the Pi's bootstrap
exports (`fleet: vars:`), never publishes a secret of the Pi, and no input makes loading it (or a
file) end in anything but a ConfigError."""

from __future__ import annotations

import os

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

import bridge.config.substitute
from bridge.config import ConfigError, load_config, load_stored, stored_text
from bridge.config.convert import to_yaml
from bridge.config.limits import MAX_CONFIG_BYTES
from bridge.config.loader import load
from bridge.config.model import BridgeConfig, DeviceConfig, FleetConfig, NatsConfig
from bridge.config.redact import MASK, mask_all, mask_secrets

SOURCE = "kv:bridge_config/pis@4"
SECRET = "s3cret-Xy9q"  # in a file
ENV_SECRET = "envsecret-77"  # in the environment

BOOTSTRAP = """\
version: 1
fleet:
  key: pis
  vars:
    room: lab
    floor: 3
    password: ${file:pass}
    zone: zone-${env:BRIDGE_TEST_ZONE}
    site: ${env:BRIDGE_TEST_SITE}
    where: ${device.id}-${HOSTNAME}
  public: [site]
device:
  id: pi7
  driver: memory
nats:
  servers: [nats://127.0.0.1:4222]
"""


@pytest.fixture(autouse=True)
def machine(monkeypatch):
    """The machine running the tests is not the Pi: its host name and environment must not leak in."""
    monkeypatch.setattr(bridge.config.substitute, "machine_hostname", lambda: "laptop")
    monkeypatch.setenv("BRIDGE_TEST_ZONE", ENV_SECRET)
    monkeypatch.setenv("BRIDGE_TEST_SITE", "north")


@pytest.fixture
def bootstrap(tmp_path) -> BridgeConfig:
    (tmp_path / "pass").write_text(SECRET + "\n")
    path = tmp_path / "bridge.yml"
    path.write_text(BOOTSTRAP)
    return load_config(path)


def stored(*subjects: str, own_vars: str = "") -> str:
    text = "version: 1\n" + (f"vars: {own_vars}\n" if own_vars else "") + "subscriptions:\n"
    return text + "".join(f"  - {{subject: '{subject}', action: clear}}\n" for subject in subjects)


def subjects(text: str, bootstrap: BridgeConfig) -> list[str]:
    return [entry.subject for entry in load_stored(text, bootstrap, SOURCE).subscriptions]


def errors(text: str, bootstrap: BridgeConfig) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_stored(text, bootstrap, SOURCE)
    return [str(issue) for issue in caught.value.errors]


# -- the bootstrap's fleet.vars ---------------------------------------------------------------------

def test_the_bootstrap_exports_its_vars_resolved_on_the_pi_and_knows_which_are_secret(bootstrap):
    assert bootstrap.fleet.vars == {"room": "lab", "floor": "3", "password": SECRET, "zone": f"zone-{ENV_SECRET}",
                                    "site": "north", "where": "pi7-laptop"}
    assert bootstrap.fleet.public == ("site",)
    assert bootstrap.fleet.secret_vars == {"password", "zone"}
    assert bootstrap.hostname == "laptop"
    assert {SECRET, ENV_SECRET, f"zone-{ENV_SECRET}"} <= bootstrap.secrets
    assert "north" not in bootstrap.secrets  # public
    assert "pi7" not in bootstrap.secrets


def test_print_masks_the_secret_exported_vars(tmp_path, bootstrap):
    printed = to_yaml(load(tmp_path / "bridge.yml").config, load(tmp_path / "bridge.yml").secret_paths)
    assert SECRET not in printed and ENV_SECRET not in printed
    assert "site: north" in printed and "room: lab" in printed


def test_a_bootstrap_without_exports_prints_as_it_did_and_has_no_secrets(tmp_path):
    path = tmp_path / "bridge.yml"
    path.write_text(BOOTSTRAP.replace(BOOTSTRAP[BOOTSTRAP.index("  vars:"):BOOTSTRAP.index("device:")], ""))
    loaded = load(path)
    assert loaded.config.fleet == FleetConfig(key="pis") and loaded.config.secrets == frozenset()
    assert yaml.safe_load(to_yaml(loaded.config, loaded.secret_paths))["fleet"] == {"key": "pis", "bucket": "bridge_config"}


# -- what a stored config may use -----------------------------------------------------------------

def test_a_stored_config_uses_exported_vars_device_id_and_the_bootstraps_host_name(bootstrap):
    assert subjects(stored("a.${room}.${floor}.${site}.${where}.${device.id}.${HOSTNAME}"), bootstrap) == [
        "a.lab.3.north.pi7-laptop.pi7.laptop"]


def test_exported_vars_override_the_stored_configs_own(bootstrap):
    assert subjects(stored("a.${room}.${mine}", own_vars="{room: kitchen, mine: x}"), bootstrap) == ["a.lab.x"]


def test_host_name_comes_from_the_bootstrap_never_from_the_machine_checking(bootstrap, monkeypatch):
    def no_machine():
        raise AssertionError("a stored config must not ask this machine for its host name")

    monkeypatch.setattr(bridge.config.substitute, "machine_hostname", no_machine)
    text = stored("a.${HOSTNAME}")
    assert subjects(text, bootstrap) == ["a.laptop"]
    for_x = BridgeConfig(device=DeviceConfig(id="x"), nats=NatsConfig(servers=("nats://h:4222",)), fleet=FleetConfig("k"))
    assert subjects(text, for_x) == ["a.x"]  # no host name known: the device id stands for it
    assert subjects(text, BridgeConfig(**{**vars(for_x), "hostname": "pi-x"})) == ["a.pi-x"]


def test_undefined_vars_are_errors_where_used(bootstrap):
    assert errors(stored("a.${rooom}", own_vars="{mine: x}"), bootstrap) == [
        f"{SOURCE}:4:18: error: subscriptions[0].subject: undefined substitution '${{rooom}}'; did you mean 'room'?"]
    assert errors(stored("a.${zz}", own_vars="{mine: x}"), bootstrap) == [
        f"{SOURCE}:4:18: error: subscriptions[0].subject: undefined substitution '${{zz}}' (vars: mine, room, floor, "
        "password, zone, site, where; built in: HOSTNAME, device.id)"]


@pytest.mark.parametrize("reference, kind", [
    ("${env:BRIDGE_TEST_ZONE}", "environment"),
    ("${env:BRIDGE_TEST_UNSET_X:-fallback}", "environment"),
    ("${env:BRIDGE_TEST_UNSET_X:-${file:pass}}", "environment"),
    ("${file:pass}", "files"),
    ("${file:/etc/hostname}", "files"),
])
def test_a_stored_config_may_not_read_the_pis_files_or_environment(bootstrap, reference, kind):
    shown = reference.split(":-")[0] + ("}" if ":-" in reference else "")
    expected = (f"'{shown}': a stored config is data shared by the fleet and may not read a Pi's {kind}; export what "
                "each Pi contributes from its bootstrap file (fleet: vars: {NAME: ...}) and use it here as ${NAME}")
    assert errors(stored(f"a.{reference}"), bootstrap) == [f"{SOURCE}:3:18: error: subscriptions[0].subject: {expected}"]
    assert errors(stored("a.b", own_vars=f"{{x: 'p-{reference}'}}"), bootstrap) == [
        f"{SOURCE}:2:14: error: vars.x: {expected}"]


def test_a_stored_config_that_uses_a_secret_of_the_pi_is_refused_naming_the_var(bootstrap):
    text = "version: 1\nsubscriptions:\n  - subject: a.${zone}\n    action: show_message\n" \
           "    args: {text: 'pw ${password}'}\n"
    assert errors(text, bootstrap) == [
        f"{SOURCE}:3:16: error: subscriptions[0].subject: '${{zone}}' would publish a secret of this Pi: its "
        "bootstrap's fleet.vars.zone comes from ${file:...} or ${env:...}; export a plain value, or list zone in "
        "the bootstrap's fleet.public if anyone may see it",
        f"{SOURCE}:5:22: error: subscriptions[0].args.text: '${{password}}' would publish a secret of this Pi: its "
        "bootstrap's fleet.vars.password comes from ${file:...} or ${env:...}; export a plain value, or list "
        "password in the bootstrap's fleet.public if anyone may see it",
    ]
    # even through the stored config's own var
    assert len(errors(stored("a.b", own_vars="{x: '${password}'}"), bootstrap)) == 1


def test_a_stored_config_does_not_depend_on_the_environment_it_is_checked_in(bootstrap, monkeypatch):
    text = stored("a.${room}.${HOSTNAME}")
    first = subjects(text, bootstrap)
    monkeypatch.setattr(os, "environ", {})
    assert subjects(text, bootstrap) == first


# -- every message masks every secret -------------------------------------------------------------

PROVOKING = """\
version: {version}
device:
  id: pi7
  rotation: "{value}"
nats:
  servers: ["{value}", "{value}"]
  name: "{value}"
  creds_file: "{value}"
  reconnect: {{initial_delay: "{value}", max_attempts: "{value}"}}
  buffer_size: "{value}"
web: {{listen: "{value}", hosts: ["{value}"], max_clients: "{value}"}}
subscriptions:
  - {{subject: "a.{value}", action: show_message, queue: "{value}",
      args: {{text_colour: "{value}", scroll_speed: "{value}", text: "{value}"}},
      locked: ["{value}"], rate: "{value}", max_payload: "{value}"}}
  - {{subject: "{value}", action: "{value}"}}
  - {{subject: "b.{value}", action: clear, overflow: "{value}", pending_limit: "{value}"}}
  - {{subject: "b.{value}", action: clear}}
publications:
  - {{subject: "p.{value}", sensor: "{value}"}}
  - {{subject: "q.{value}", sensor: temperature, interval: "{value}", heartbeat: "{value}", change: "{value}"}}
"""


@pytest.mark.parametrize("reference", ["${file:secret}", "${env:BRIDGE_TEST_SECRET}", "x${env:BRIDGE_TEST_SECRET}y",
                                       "${env:BRIDGE_TEST_UNSET_X:-${file:secret}}"])
@pytest.mark.parametrize("secret", ["top..secret value", "#c0ffee-not-a-colour-" + "x" * 60, "123456789", "5s-ish.*>"])
def test_no_message_of_the_config_package_shows_a_secret(tmp_path, monkeypatch, reference, secret):
    (tmp_path / "secret").write_text(secret + "\n")
    monkeypatch.setenv("BRIDGE_TEST_SECRET", secret)
    path = tmp_path / "bridge.yml"
    path.write_text(PROVOKING.format(version=reference, value=reference))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    messages = [str(issue) for issue in caught.value.errors]
    assert len(messages) >= 15, messages
    assert [message for message in messages if secret in message] == []
    assert any(MASK in message for message in messages)


def test_stored_config_messages_mask_the_pis_secrets(bootstrap):
    leaky = BridgeConfig(**{**vars(bootstrap), "fleet": FleetConfig("pis", vars={"pw": SECRET})})
    lines = errors(stored("a.${pw}.>.x", "${pw}.>.y"), leaky)  # a plain export that equals a secret is masked too
    assert len(lines) == 2 and all(SECRET not in line for line in lines), lines


def test_mask_secrets_masks_a_log_line_by_the_config_it_is_about(bootstrap):
    line = f"refused 'a.{SECRET}' from {SECRET} and {ENV_SECRET}; site 'north', room 'lab'"
    assert mask_secrets(line, bootstrap) == f"refused 'a.{MASK}' from {MASK} and {MASK}; site 'north', room 'lab'"


@pytest.mark.parametrize("message, secrets, shown", [
    ("'lab' in lab.x", {"lab"}, f"'{MASK}' in lab.x"),  # short: only quoted whole
    ("path /etc/abcd/x", {"abcd"}, f"path /etc/{MASK}/x"),  # four characters or more: anywhere
    ("'abcdef' and abc", {"abc", "abcdef"}, f"'{MASK}' and abc"),
    ("'' stays", {""}, "'' stays"),
])
def test_mask_all(message, secrets, shown):
    assert mask_all(message, secrets) == shown


# -- no traceback from any input ----------------------------------------------------------------------

@pytest.mark.parametrize("text, where, words", [
    ("version: 1\nvars: {a: 'x\x07y'}\n", "2:13", "U+0007"),
    ("version: 1\n\x00\n", "2:1", "U+0000"),
    ("version: 1\nvars: {a: '\ud800'}\n", "2:12", "U+D800"),
    ("version: 1\nvars: {a: 1}\n\ufeffsubscriptions: []\n", "3:", "YAML syntax"),
    ("version: 1\nvars: {a: \x1b[31m}\n", "2:11", "U+001B"),
])
def test_characters_yaml_refuses_are_errors_at_their_position(bootstrap, tmp_path, text, where, words):
    lines = errors(text, bootstrap)
    assert len(lines) == 1 and lines[0].startswith(f"{SOURCE}:{where}") and words in lines[0], lines
    path = tmp_path / "file.yml"
    path.write_text(text.replace("version: 1\n", "version: 1\nnats: {servers: [nats://h:4222]}\n", 1),
                    encoding="utf-8", errors="surrogatepass")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert ("not UTF-8 text" if "\ud800" in text else words) in str(caught.value)


def test_a_leading_byte_order_mark_is_dropped(bootstrap):
    assert subjects("\ufeff" + stored("a.b"), bootstrap) == ["a.b"]


@pytest.mark.parametrize("content", ["a\x07b", "x\x00y", "\x1b[2J", "\ufeffz", "a: [", "!!python/object:os.system x"])
def test_a_substituted_value_is_never_parsed_into_a_traceback(tmp_path, content):
    (tmp_path / "value").write_text(content)
    path = tmp_path / "bridge.yml"
    path.write_text("version: 1\nnats: {servers: [nats://h:4222], max_outstanding_pings: '${file:value}'}\n"
                    "device: {rotation: '${file:value}'}\n"
                    "subscriptions:\n  - {subject: 'a.${file:value}', action: show_message, "
                    "args: {scroll_speed: '${file:value}', text: '${file:value}'}}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert all(issue.line for issue in caught.value.errors)


@pytest.mark.parametrize("raw, message", [
    (b"version: 1\nvars: {a: '\xff'}\n", f"{SOURCE}:2:12: error: <file>: not UTF-8 text"),
    (b"\xef\xbb\xbfversion: 1\n\xc3", f"{SOURCE}:2:1: error: <file>: not UTF-8 text"),
    (b"x" * (MAX_CONFIG_BYTES + 1), f"{SOURCE}: error: <file>: larger than 1 MiB"),
])
def test_stored_text_turns_bad_bytes_into_an_error_at_their_position(raw, message):
    with pytest.raises(ConfigError) as caught:
        stored_text(raw, SOURCE)
    assert str(caught.value).startswith(message)


def test_stored_text_drops_a_byte_order_mark():
    assert stored_text(b"\xef\xbb\xbfversion: 1\n", SOURCE) == "version: 1\n"


_BOOTSTRAP_FOR_PROPERTIES = BridgeConfig(device=DeviceConfig(id="pi7"), nats=NatsConfig(servers=("nats://h:4222",)),
                                         source="/etc/bridge/bridge.yml", fleet=FleetConfig("pis", vars={"room": "lab"}))
_YAMLISH = st.lists(st.sampled_from(list("ab:-[]{}'\"!&*#|>%@`,?\n \t\\$.") +
                                    ["${", "}", "version: 1\n", "vars:", "subscriptions:", "\x00", "\x07", "\ud800",
                                     "\ufeff", "\x85", "\u2028", "${env:HOME}", "${file:x}", "${room}", "!!binary",
                                     "&a", "*a", "<<: *a", "---", "...", "  - {subject: a.${room}, action: clear}\n"]),
                    max_size=40).map("".join)


@given(st.one_of(st.text(), _YAMLISH))
def test_any_text_loads_as_a_stored_config_or_raises_config_error(text):
    try:
        load_stored(text, _BOOTSTRAP_FOR_PROPERTIES, SOURCE)
    except ConfigError as error:
        assert error.errors and all(issue.file == SOURCE for issue in error.errors)


@given(st.binary(max_size=200) | _YAMLISH.map(lambda text: text.encode("utf-8", "surrogatepass")))
def test_any_bytes_load_as_a_file_or_a_stored_config_or_raise_config_error(tmp_path_factory, raw):
    path = tmp_path_factory.mktemp("any") / "bridge.yml"
    path.write_bytes(raw)
    for attempt in (lambda: load_config(path), lambda: load_stored(stored_text(raw, SOURCE), _BOOTSTRAP_FOR_PROPERTIES,
                                                                    SOURCE)):
        try:
            attempt()
        except ConfigError as error:
            assert error.errors


def test_bridge_validate_reports_a_control_character_from_a_file_as_one_sentence(tmp_path):
    import subprocess
    import sys

    (tmp_path / "name").write_bytes(b"bell\x07\n")
    path = tmp_path / "bridge.yml"
    path.write_text("version: 1\nnats: {servers: [nats://h:4222], max_outstanding_pings: '${file:name}'}\n"
                    "fleet:\n  key: pis\n  vars:\n    name: ${file:name}\n  public: [nmae]\n")
    done = subprocess.run([sys.executable, "-m", "bridge", "validate", str(path)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"{path}:2:58: error: nats.max_outstanding_pings: expected an integer, got a secret value",
        f"{path}:7:12: error: fleet.public[0]: public names 'nmae', which is not one of fleet.vars; "
        "did you mean 'name'?"], done.stderr
