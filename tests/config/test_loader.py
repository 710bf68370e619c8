"""The config loader: positions, substitutions, --set, conversion to the typed model, shipped files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

import bridge.config.substitute
from bridge.cli.main import main
from bridge.config import ConfigError, ConfigFileError, load_config, schema_text
from bridge.config.convert import to_yaml
from bridge.config.document import parse_document
from bridge.config.loader import load
from bridge.config.model import ACTIONS, DRIVERS, OVERFLOW_POLICIES, SENSORS
from bridge.config.redact import redact_url
from bridge.config.units import (
    DURATION_PATTERN,
    SIZE_PATTERN,
    format_duration,
    format_size,
    parse_duration,
    parse_listen,
    parse_size,
)

REPO = Path(__file__).resolve().parents[2]
CONFIGS = sorted((REPO / "configs").glob("*.yml"))
BASE = """\
version: 1
nats:
  servers: [nats://127.0.0.1:4222]
"""


@pytest.fixture(autouse=True)
def fixed_hostname(monkeypatch):
    monkeypatch.setattr(bridge.config.substitute, "machine_hostname", lambda: "pi7")


def write(tmp_path: Path, text: str, name: str = "bridge.yml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def messages(error: ConfigError) -> list[str]:
    return [str(issue) for issue in error.errors]


def refusal(tmp_path: Path, text: str) -> tuple[Path, list[str]]:
    """The file written for `text`, and the messages loading it is refused with."""
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return path, messages(caught.value)


# -- shipped files and schema ------------------------------------------------------------------------

def test_configs_folder_has_the_four_documented_files():
    assert {path.name for path in CONFIGS} >= {"sense-hat.yml", "minimal.yml", "fleet.yml", "demo.yml"}


@pytest.mark.parametrize("path", CONFIGS, ids=[path.name for path in CONFIGS])
def test_every_shipped_config_validates_and_points_editors_at_the_schema(path):
    config = load_config(path)
    assert config.nats.servers
    assert path.read_text().splitlines()[0] == "# yaml-language-server: $schema=../schemas/bridge.schema.json"
    assert main(["validate", str(path)]) == 0


def test_demo_config_runs_locally_with_the_web_view():
    config = load_config(REPO / "configs" / "demo.yml")
    assert config.device.driver == "sense-emu"
    assert config.nats.servers == ("nats://127.0.0.1:4222",)
    assert (config.web.host, config.web.port) == ("127.0.0.1", 8080)
    assert set(ACTIONS) <= {subscription.action for subscription in config.subscriptions}
    assert "joystick" in {publication.sensor for publication in config.publications}


def test_schema_folder_holds_a_symlink_to_the_packaged_schema():
    link = REPO / "schemas" / "bridge.schema.json"
    assert link.is_symlink()
    assert link.resolve() == (REPO / "bridge" / "config" / "bridge.schema.json").resolve()
    assert link.read_text() == schema_text()


def test_schema_is_valid_2020_12_and_its_enums_match_the_model():
    from jsonschema import Draft202012Validator

    schema = json.loads(schema_text())
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert tuple(schema["$defs"]["subscription"]["properties"]["action"]["enum"]) == ACTIONS
    assert tuple(schema["$defs"]["publication"]["properties"]["sensor"]["enum"]) == SENSORS
    assert tuple(schema["properties"]["device"]["properties"]["driver"]["enum"]) == DRIVERS
    assert tuple(schema["$defs"]["subscription"]["properties"]["overflow"]["enum"]) == OVERFLOW_POLICIES


def test_schema_units_accept_exactly_what_the_loader_parses():
    schema = json.loads(schema_text())
    assert schema["$defs"]["duration"]["anyOf"][0]["pattern"] == DURATION_PATTERN
    assert schema["$defs"]["size"]["anyOf"][0]["pattern"] == SIZE_PATTERN


def test_schema_closes_every_mapping_except_the_free_form_ones():
    def objects(node, path=""):
        if isinstance(node, dict):
            if node.get("type") == "object":
                yield path, node
            for key, value in node.items():
                yield from objects(value, f"{path}/{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                yield from objects(value, f"{path}/{index}")

    open_objects = {
        path for path, node in objects(json.loads(schema_text())) if node.get("additionalProperties") is not False
    }
    # vars and display icons: names are the user's (values are typed); args: checked per action by bridge.actions.
    assert open_objects == {"/properties/vars", "/properties/fleet/properties/vars", "/$defs/subscription/properties/args",
                            "/properties/display/properties/icons"}


def test_bridge_schema_prints_the_schema(capsys):
    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(schema_text())


# -- YAML with positions -------------------------------------------------------------------------

def test_every_key_and_value_has_its_line_and_column():
    document = parse_document("version: 1\nnats:\n  servers:\n    - nats://a:1\n    - 'tls://b:2'\n", "f.yml")
    assert document.data == {"version": 1, "nats": {"servers": ["nats://a:1", "tls://b:2"]}}
    assert (document.keys[("nats",)].line, document.keys[("nats",)].column) == (2, 1)
    assert (document.keys[("nats", "servers")].line, document.keys[("nats", "servers")].column) == (3, 3)
    assert (document.values[("nats", "servers", 1)].line, document.values[("nats", "servers", 1)].column) == (5, 8)
    assert document.position(("nats", "servers", 7, "nope")).line == 4  # nearest ancestor: the list
    assert document.position(("nats", "servers", 7), key=True).line == 3  # ...or its key


def test_safe_semantics_dates_stay_text_and_merge_keys_work():
    document = parse_document("a: 2024-01-02\nbase: &b {x: 1, y: 2}\nc:\n  <<: *b\n  y: 3\n", "f.yml")
    assert document.data["a"] == "2024-01-02"
    assert document.data["c"] == {"x": 1, "y": 3}
    assert not document.issues


def test_absurd_nesting_is_an_error_not_a_crash(tmp_path):
    path = write(tmp_path, BASE + "vars: {a: " + "[" * 900 + "]" * 900 + "}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert "nested more than 64 levels deep" in str(caught.value)


def test_alias_bombs_are_cut_off():
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 10)}]" for n in range(1, 7)]
    document = parse_document("\n".join(levels) + "\n", "f.yml")
    assert any("more than" in issue.message for _, issue in document.issues)


# -- substitutions ----------------------------------------------------------------------------------

def test_substitutions_vars_device_id_hostname_env_file(tmp_path, monkeypatch):
    monkeypatch.setenv("BRIDGE_TEST_SITE", "lab")
    monkeypatch.delenv("BRIDGE_TEST_UNSET", raising=False)
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "token").write_text("t0ken\n")
    path = write(tmp_path, """\
        version: 1
        vars:
          room: kitchen
          where: ${env:BRIDGE_TEST_SITE}-${room}
        device:
          id: ${HOSTNAME}-x
        nats:
          servers: [nats://127.0.0.1:4222]
          token: ${file:secrets/token}
          name: ${env:BRIDGE_TEST_UNSET:-fallback}.$${literal}
        subscriptions:
          - subject: pi.${device.id}.${where}.show
            action: show_message
    """)
    config = load_config(path)
    assert config.device.id == "pi7-x"
    assert config.nats.token == "t0ken"
    assert config.nats.name == "fallback.${literal}"
    assert config.subscriptions[0].subject == "pi.pi7-x.lab-kitchen.show"


def test_substituted_text_is_read_as_yaml_where_a_number_or_boolean_is_needed(tmp_path, monkeypatch):
    monkeypatch.setenv("BRIDGE_TEST_SPEED", "0.05")
    monkeypatch.setenv("BRIDGE_TEST_PASSWORD", "12345")
    path = write(tmp_path, """\
        version: 1
        nats:
          servers: [nats://127.0.0.1:4222]
          user: pi
          password: ${env:BRIDGE_TEST_PASSWORD}
        vars: {rot: 180, dim: true, attempts: '3'}
        device: {rotation: "${rot}", low_light: '${dim}', id: 'n${rot}'}
        subscriptions:
          - subject: a.b
            action: show_message
            args: {scroll_speed: "${env:BRIDGE_TEST_SPEED}", text_colour: "#0000${attempts}${attempts}"}
    """)
    config = load_config(path, ["nats.reconnect.max_attempts=${attempts}"])
    assert (config.device.rotation, config.device.low_light, config.device.id) == (180, True, "n180")
    assert config.nats.reconnect.max_attempts == 3
    assert config.nats.password == "12345"  # text where text is wanted
    assert config.subscriptions[0].args == {"scroll_speed": 0.05, "text_colour": (0, 0, 0x33)}


def test_substituted_text_that_is_no_number_is_reported_as_written(tmp_path):
    path, refused = refusal(tmp_path, BASE + "vars: {rot: ninety}\ndevice:\n  rotation: ${rot}\n")
    assert refused == [
        f"{path}:6:13: error: device.rotation: 'ninety' is not a rotation; expected one of: 0, 90, 180, 270"]


def test_device_id_defaults_to_the_short_host_name(tmp_path):
    config = load_config(write(tmp_path, BASE))
    assert config.device.id == "pi7"
    assert config.nats.name == "bridge-pi7"


def test_short_host_name_drops_the_domain(monkeypatch):
    monkeypatch.undo()
    monkeypatch.setattr(bridge.config.substitute.socket, "gethostname", lambda: "kitchen.example.org")
    assert bridge.config.substitute.machine_hostname() == "kitchen"


def test_substitution_cycles_are_reported_once(tmp_path):
    path, refused = refusal(tmp_path, BASE + "vars:\n  a: x${b}\n  b: y${a}\n")
    assert refused == [f"{path}:5:6: error: vars.a: substitution cycle: a -> b -> a"]


def test_file_substitution_is_relative_to_the_config_file_not_the_working_directory(tmp_path, monkeypatch):
    (tmp_path / "pw").write_text("hunter2\r\n")
    path = write(tmp_path, BASE + "  user: pi\n  password: ${file:pw}\n")
    monkeypatch.chdir("/")
    assert load_config(path).nats.password == "hunter2"


# -- secrets ----------------------------------------------------------------------------------------

def test_print_masks_passwords_tokens_and_file_contents(tmp_path, capsys):
    (tmp_path / "pw").write_text("hunter2\n")
    (tmp_path / "room").write_text("secret-room\n")
    path = write(tmp_path, BASE + "  user: pi\n  password: ${file:pw}\nvars: {room: '${file:room}'}\n"
                 "subscriptions:\n  - {subject: 'x.${room}', action: clear}\n")
    loaded = load(path)
    text = to_yaml(loaded.config, loaded.secret_paths)
    assert "hunter2" not in text and "secret-room" not in text
    resolved = yaml.safe_load(text)
    assert resolved["nats"]["password"] == "********"
    assert resolved["subscriptions"][0]["subject"] == "********"
    assert resolved["nats"]["user"] == "pi"

    assert main(["validate", "--print", str(path)]) == 0
    assert "hunter2" not in capsys.readouterr().out


@pytest.mark.parametrize("url, shown", [
    ("nats://pi:s3cret@10.0.0.5:4222", "nats://pi:********@10.0.0.5:4222"),
    ("tls://pi:p%40ss@[::1]:4443/", "tls://pi:********@[::1]:4443/"),
    ("nats://t0ken@host", "nats://********@host"),  # userinfo without a colon is a token
    ("pi:s3cret@host:4222", "pi:********@host:4222"),
    ("nats://10.0.0.5:4222", "nats://10.0.0.5:4222"),
    ("host", "host"),
])
def test_redact_url_masks_the_password_or_token_and_keeps_the_rest(url, shown):
    assert redact_url(url) == shown


def test_validate_summary_print_and_json_mask_passwords_in_server_urls(tmp_path, capsys):
    path = write(tmp_path, "version: 1\nnats:\n  servers: [nats://pi:s3cret@127.0.0.1:4222, nats://127.0.0.1:4223]\n")
    assert main(["validate", str(path)]) == 0
    assert capsys.readouterr().out.endswith("servers nats://pi:********@127.0.0.1:4222, nats://127.0.0.1:4223\n")
    assert main(["validate", "--print", str(path)]) == 0
    out = capsys.readouterr().out
    assert "s3cret" not in out
    assert yaml.safe_load(out)["nats"]["servers"] == ["nats://pi:********@127.0.0.1:4222", "nats://127.0.0.1:4223"]
    assert main(["validate", "--print", "--format", "json", str(path)]) == 0
    out = capsys.readouterr().out
    assert "s3cret" not in out
    assert json.loads(out)["files"][0]["summary"]["servers"][0] == "nats://pi:********@127.0.0.1:4222"


def test_passwords_in_server_urls_never_appear_in_error_messages(tmp_path):
    path, refused = refusal(tmp_path, "version: 1\nnats:\n  servers: ['nats://pi:s3cret@host:4222 x', 'nats://t0ken@host x']\n")
    assert refused == [
        f"{path}:3:14: error: nats.servers[0]: a server URL looks like nats://HOST:PORT or tls://HOST:PORT (port 1..65535), "
        "got a string 'nats://pi:********@host:4222 x'",
        f"{path}:3:46: error: nats.servers[1]: a server URL looks like nats://HOST:PORT or tls://HOST:PORT (port 1..65535), "
        "got a string 'nats://********@host x'",
    ]


def test_secrets_never_appear_in_error_messages(tmp_path):
    (tmp_path / "subject").write_text("top secret\n")
    path = write(tmp_path, BASE + "  token: 'sw0rdfish two'\nsubscriptions:\n"
                 "  - {subject: '${file:subject}', action: clear}\npublications:\n"
                 "  - {subject: 'a.sw0rdfish two', sensor: joystick}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    text = str(caught.value)
    assert "subscriptions[0].subject" in text and "publications[0].subject" in text
    assert "top secret" not in text and "sw0rdfish" not in text


# -- --set ------------------------------------------------------------------------------------------

def test_overrides_apply_before_substitution_and_validation(tmp_path):
    path = write(tmp_path, BASE + "vars: {room: hall}\ndevice: {driver: sense-hat}\nsubscriptions:\n"
                 "  - {subject: 'pi.${room}.show', action: show_message}\n")
    config = load_config(path, [
        "vars.room=lab",
        "device.driver=memory",
        "device.rotation=270",
        "nats.servers=nats://10.0.0.1:4222, nats://10.0.0.2:4222",
        "subscriptions[0].queue=displays",
        "subscriptions.0.args.text_colour=[1, 2, 3]",
        "web.listen=[::1]:9000",
    ])
    assert config.subscriptions[0].subject == "pi.lab.show"
    assert (config.device.driver, config.device.rotation) == ("memory", 270)
    assert config.nats.servers == ("nats://10.0.0.1:4222", "nats://10.0.0.2:4222")
    assert config.subscriptions[0].queue == "displays"
    assert config.subscriptions[0].args == {"text_colour": (1, 2, 3)}
    assert (config.web.host, config.web.port) == ("::1", 9000)


def test_override_problems_point_at_the_set_argument(tmp_path):
    path = write(tmp_path, BASE + "subscriptions:\n  - {subject: a.b, action: clear}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, ["vars.ok=1", "nats.sevrers=nats://x:1", "subscriptions.3.queue=q", "device.driver=sense_emu"])
    assert messages(caught.value) == [
        "--set:2:1: error: nats.sevrers: unknown key 'sevrers'; did you mean 'servers'?",
        "--set:3:1: error: subscriptions.3.queue: subscriptions has 1 entry, no [3]",
        "--set:4:15: error: device.driver: 'sense_emu' is not a driver; did you mean 'sense-emu'?",
    ]


# -- conversion -------------------------------------------------------------------------------------

def test_units_colours_files_and_defaults_become_typed_values(tmp_path):
    (tmp_path / "certs").mkdir()
    for name in ("ca.pem", "pi.pem", "pi.key"):
        (tmp_path / "certs" / name).write_text("x")
    path = write(tmp_path, """\
        version: 1
        device: {id: kitchen, driver: memory}
        nats:
          servers: [tls://nats.example.org:4443]
          tls: {ca_file: certs/ca.pem, cert_file: certs/pi.pem, key_file: certs/pi.key}
          reconnect: {initial_delay: 250ms, max_delay: 1m30s}
          ping_interval: 2
          buffer_size: 512KiB
        subscriptions:
          - subject: pi.kitchen.led.show
            action: show_message
            args: {text_colour: "#ff8000", back_colour: [0, 0, 10]}
        publications:
          - {subject: s.kitchen.t, sensor: temperature, interval: 1.5, change: 1, heartbeat: 1h}
          - {subject: s.kitchen.j, sensor: joystick}
    """)
    config = load_config(path)
    assert config.source == str(path)
    assert config.nats.tls.ca_file == str(tmp_path / "certs" / "ca.pem")
    assert config.nats.tls.verify is True
    assert (config.nats.reconnect.initial_delay, config.nats.reconnect.max_delay) == (0.25, 90.0)
    assert config.nats.reconnect.max_attempts == 0
    assert (config.nats.ping_interval, config.nats.buffer_size) == (2.0, 512 * 1024)
    subscription = config.subscriptions[0]
    assert subscription.args == {"text_colour": (255, 128, 0), "back_colour": (0, 0, 10)}
    assert (subscription.pending_limit, subscription.overflow, subscription.queue) == (1000, "queue", None)
    temperature, joystick = config.publications
    assert (temperature.interval, temperature.change, temperature.heartbeat) == (1.5, 1.0, 3600.0)
    assert (joystick.interval, joystick.change, joystick.heartbeat) == (None, None, None)
    assert config.web is None


@pytest.mark.parametrize("text, seconds", [("250ms", 0.25), ("10s", 10), ("5m", 300), ("1h", 3600), ("1m30s", 90),
                                           (0, 0), (2.5, 2.5), ("1.5s", 1.5)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["10", "ten", "-1s", "1d", "", True, -3])
def test_bad_durations(bad):
    with pytest.raises(ValueError):
        parse_duration(bad)


@given(st.integers(min_value=0, max_value=10**9))
def test_durations_print_back_exactly(millis):
    assert parse_duration(format_duration(millis / 1000)) == pytest.approx(millis / 1000)


@pytest.mark.parametrize("text, size", [("512KiB", 524288), ("8MiB", 8388608), ("1GB", 10**9), ("100", 100), (7, 7)])
def test_sizes(text, size):
    assert parse_size(text) == size


@given(st.integers(min_value=0, max_value=2**40))
def test_sizes_print_back_exactly(size):
    assert parse_size(format_size(size)) == size


def test_web_block_defaults_to_loopback(tmp_path):
    web = load_config(write(tmp_path, BASE + "web: {}\n")).web
    assert (web.host, web.port) == ("127.0.0.1", 8080)


@pytest.mark.parametrize("text, expected", [("127.0.0.1:8080", ("127.0.0.1", 8080)), ("[::1]:80", ("::1", 80)),
                                            (":9000", ("127.0.0.1", 9000)), ("0.0.0.0:0", ("0.0.0.0", 0))])
def test_listen_addresses(text, expected):
    assert parse_listen(text) == expected


# -- the validate command ---------------------------------------------------------------------------

def test_validate_prints_one_summary_line_per_file(tmp_path, capsys):
    first = write(tmp_path, BASE + "subscriptions:\n  - {subject: a.b, action: clear}\n", "one.yml")
    second = write(tmp_path, BASE + "publications:\n  - {subject: a.j, sensor: joystick}\n", "two.yml")
    assert main(["validate", str(first), str(second)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        f"{first}: ok: device pi7 (sense-hat), 1 subscription, 0 publications, servers nats://127.0.0.1:4222",
        f"{second}: ok: device pi7 (sense-hat), 0 subscriptions, 1 publication, servers nats://127.0.0.1:4222",
    ]


def test_validate_exit_status_is_the_worst_of_all_files(tmp_path, capsys):
    good = write(tmp_path, BASE, "good.yml")
    bad = write(tmp_path, "version: 1\n", "bad.yml")
    assert main(["validate", str(good), str(bad)]) == 1
    assert main(["validate", str(good), str(bad), str(tmp_path / "missing.yml")]) == 2
    assert main(["validate", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'missing.yml'}: error: <file>: cannot read: No such file or directory" in err


def test_load_config_raises_config_file_error_for_unreadable_files(tmp_path):
    with pytest.raises(ConfigFileError):
        load_config(tmp_path / "missing.yml")


def test_validate_json_format(tmp_path, capsys):
    good = write(tmp_path, BASE, "good.yml")
    bad = write(tmp_path, BASE + "device: {driver: sense-hta}\n", "bad.yml")
    assert main(["validate", "--format", "json", str(good), str(bad)]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["valid"] is False
    assert report["files"][0]["valid"] is True
    assert report["files"][0]["summary"]["servers"] == ["nats://127.0.0.1:4222"]
    assert report["files"][1]["errors"] == [{
        "file": str(bad), "line": 4, "column": 18, "path": "device.driver",
        "message": "'sense-hta' is not a driver; did you mean 'sense-hat'?",
    }]


def test_validate_print_with_set(tmp_path, capsys):
    path = write(tmp_path, BASE + "vars: {room: hall}\nsubscriptions:\n  - {subject: 'r.${room}', action: clear}\n")
    assert main(["validate", "--print", "--set", "vars.room=lab", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"# {path}\n")
    resolved = yaml.safe_load(out)
    assert resolved["subscriptions"][0]["subject"] == "r.lab"
    assert resolved["nats"]["reconnect"] == {"initial_delay": "100ms", "max_delay": "5s", "jitter": 0.2,
                                            "max_attempts": 0}
    assert resolved["nats"]["buffer_size"] == "8MiB"


def test_validate_print_with_json_format_puts_the_resolved_config_in_the_report(tmp_path, capsys):
    (tmp_path / "pw").write_text("hunter2\n")
    good = write(tmp_path, BASE + "  user: pi\n  password: ${file:pw}\n", "good.yml")
    bad = write(tmp_path, "version: 1\n", "bad.yml")
    assert main(["validate", "--print", "--format", "json", str(good), str(bad)]) == 1
    out = capsys.readouterr().out
    assert "hunter2" not in out
    first, second = json.loads(out)["files"]
    loaded = load(good)
    assert first["config"] == yaml.safe_load(to_yaml(loaded.config, loaded.secret_paths))
    assert first["config"]["nats"]["password"] == "********"
    assert second["config"] is None and second["errors"]


def test_bad_usage_exits_2(capsys):
    assert main([]) == 2
    assert main(["validate"]) == 2
    assert main(["validate", "--set", "no-equals-sign", "x.yml"]) == 2
    assert main(["frobnicate"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err


def test_importing_the_cli_and_config_stays_cheap():
    """`bridge validate` must start fast: jsonschema loads only when a file is checked."""
    code = ("import sys, bridge.cli.main, bridge.config; "
            "print(sorted(m for m in ('jsonschema', 'twisted') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO).stdout
    assert out.strip() == "[]"


def test_validating_never_loads_twisted_or_openssl():
    """Subject checks import bridge.nats.subjects; the package must not drag the client in with it."""
    code = ("import sys, bridge.cli.main; code = bridge.cli.main.main(['validate', 'configs/sense-hat.yml']); "
            "print(code, sorted(m for m in ('twisted', 'OpenSSL') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO).stdout
    assert out.strip().splitlines()[-1] == "0 []"


# -- rules the schema cannot express (checks.py), each with its message and where it points ----------

def check_messages(tmp_path: Path, text: str) -> list[str]:
    path = write(tmp_path, BASE + textwrap.dedent(text))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return [message.removeprefix(f"{path}:") for message in messages(caught.value)]


def test_hostname_is_no_variable_name(tmp_path):
    assert check_messages(tmp_path, "vars:\n  HOSTNAME: x\n") == [
        "5:3: error: vars.HOSTNAME: HOSTNAME is built in (the machine's host name); pick another name"]


def test_burst_needs_a_rate(tmp_path):
    assert check_messages(tmp_path, """\
        subscriptions:
          - {subject: a, action: clear, burst: 3}
          - {subject: b, action: clear, burst: 3, rate: 1/s}
        """) == ["5:33: error: subscriptions[0].burst: burst only applies with a rate; set rate (e.g. 20/s) or drop burst"]


def test_locked_names_keys_of_the_action(tmp_path):
    assert check_messages(tmp_path, """\
        subscriptions:
          - {subject: a, action: clear, locked: [color, colour]}
        """) == ["5:49: error: subscriptions[0].locked[1]: locked names no key for clear (did you mean 'color'?); "
                 "allowed: color"]


def test_the_joystick_takes_no_timing(tmp_path):
    assert check_messages(tmp_path, """\
        publications:
          - {subject: j, sensor: joystick, interval: 1s, change: 1, heartbeat: 5s}
        """) == [
        "5:36: error: publications[0].interval: the joystick is event driven: remove 'interval'",
        "5:50: error: publications[0].change: the joystick is event driven: remove 'change'",
        "5:61: error: publications[0].heartbeat: the joystick is event driven: remove 'heartbeat'",
    ]


def test_a_polled_sensor_needs_an_interval_above_zero(tmp_path):
    assert check_messages(tmp_path, """\
        publications:
          - {subject: t, sensor: temperature}
          - {subject: h, sensor: humidity, interval: 0s}
        """) == [
        "5:5: error: publications[0].interval: missing required key 'interval': sensor 'temperature' is polled "
        "(e.g. interval: 10s)",
        "6:46: error: publications[1].interval: interval must be more than 0",
    ]


def test_a_heartbeat_needs_change_and_at_least_the_interval(tmp_path):
    assert check_messages(tmp_path, """\
        publications:
          - {subject: a, sensor: temperature, interval: 10s, heartbeat: 1m}
          - {subject: b, sensor: temperature, interval: 10s, change: 1, heartbeat: 9s}
          - {subject: c, sensor: temperature, interval: 10s, change: 1, heartbeat: 10s}
        """) == [
        "5:54: error: publications[0].heartbeat: heartbeat only matters with 'change' (without it every reading is "
        "published)",
        "6:76: error: publications[1].heartbeat: heartbeat (9s) must be at least the interval (10s)",
    ]


@pytest.mark.parametrize("reconnect, column", [("{max_delay: 50ms}", 26), ("{initial_delay: 6s}", 14)])
def test_max_delay_is_at_least_initial_delay_whichever_is_left_to_its_default(tmp_path, reconnect, column):
    text = BASE.replace("nats:\n", f"nats:\n  reconnect: {reconnect}\n")
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert [message.removeprefix(f"{path}:") for message in messages(caught.value)] == [
        f"3:{column}: error: nats.reconnect.max_delay: max_delay must be at least initial_delay"]


def test_equal_delays_and_a_ping_interval_are_fine(tmp_path):
    text = BASE.replace("nats:\n", "nats:\n  reconnect: {initial_delay: 2s, max_delay: 2s}\n  ping_interval: 1s\n")
    assert load_config(write(tmp_path, text)).nats.servers


def test_the_ping_interval_is_above_zero(tmp_path):
    text = BASE.replace("nats:\n", "nats:\n  ping_interval: 0s\n")
    path, refused = refusal(tmp_path, text)
    assert refused == [f"{path}:3:18: error: nats.ping_interval: ping_interval must be more than 0"]


def test_the_status_interval_is_above_zero(tmp_path):
    text = BASE.replace("nats:\n", "nats:\n  status_interval: 0s\n")
    path, refused = refusal(tmp_path, text)
    assert refused == [f"{path}:3:20: error: nats.status_interval: status_interval must be more than 0"]


def test_a_status_interval_of_one_second_is_fine(tmp_path):
    text = BASE.replace("nats:\n", "nats:\n  status_interval: 1s\n")
    assert load_config(write(tmp_path, text)).nats.status_interval == 1


def test_one_kind_of_authentication(tmp_path):
    text = BASE.replace("nats:\n", "nats:\n  user: u\n  password: p\n  token: t\n")
    path, refused = refusal(tmp_path, text)
    assert refused == [
        f"{path}:5:3: error: nats.token: use one kind of authentication (user/password, token, nkey_seed_file or "
        "creds_file); found user/password and token"]


def test_a_credentials_path_must_be_a_file(tmp_path):
    (tmp_path / "creds").mkdir()
    text = BASE.replace("nats:\n", "nats:\n  creds_file: creds\n")
    path, refused = refusal(tmp_path, text)
    assert refused == [f"{path}:3:15: error: nats.creds_file: not a file: {tmp_path / 'creds'}"]


def test_the_web_listen_address_is_checked(tmp_path):
    path, refused = refusal(tmp_path, BASE + "web:\n  listen: 'nowhere:port'\n")
    assert refused == [
        f"{path}:5:12: error: web.listen: expected HOST:PORT, like 127.0.0.1:8080, got a string 'nowhere:port'"]


def test_a_listen_port_the_schema_lets_through_is_still_checked(tmp_path):
    # The schema's pattern takes any five digits; only the rule knows a port ends at 65535.
    assert check_messages(tmp_path, "web:\n  listen: '127.0.0.1:70000'\n") == [
        "5:12: error: web.listen: expected HOST:PORT with a port 0..65535, got '127.0.0.1:70000'"]


def test_a_subject_may_be_exactly_as_long_as_the_limit_counted_in_bytes(tmp_path):
    longest, one_byte_over = "a" * 3072, "é" * 1536 + "a"
    assert check_messages(tmp_path, f"""\
        subscriptions:
          - {{subject: {longest}, action: clear}}
          - {{subject: {one_byte_over}, action: clear}}
        """) == [
        "6:15: error: subscriptions[1].subject: the subject is 3073 bytes, longer than the 3072 a subject may be "
        "here (nats-server takes a protocol line of at most 4096 bytes, and the subject shares it with a reply "
        "subject or queue group and sizes); shorten it"]


def test_an_entry_whose_subject_is_no_text_gets_the_schemas_error_and_later_duplicates_are_still_found(tmp_path):
    assert check_messages(tmp_path, """\
        subscriptions:
          - {subject: 5, action: clear}
          - {subject: a, action: clear}
          - {subject: a, action: clear}
        """) == [
        "5:15: error: subscriptions[0].subject: expected a string, got 5",
        "7:15: error: subscriptions[2].subject: same subject and action as subscriptions[1] (line 6)",
    ]


def test_an_unknown_args_key_points_at_the_key_a_bad_value_at_the_value(tmp_path):
    assert check_messages(tmp_path, """\
        subscriptions:
          - {subject: a, action: clear, args: {colour: '#000000'}}
          - {subject: b, action: clear, args: {color: '#00000'}}
        """) == [
        "5:40: error: subscriptions[0].args.colour: unknown key for clear (did you mean 'color'?); allowed: color",
        "6:48: error: subscriptions[1].args.color: must be [r, g, b] with each 0..255, or \"#rrggbb\", got '#00000'",
    ]


def test_a_file_key_that_is_no_text_gets_the_schemas_error_only(tmp_path):
    text = BASE.replace("nats:\n", "nats:\n  creds_file: 5\n")
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert messages(caught.value) == [f"{path}:3:15: error: nats.creds_file: expected a string, got 5"]


def test_a_credentials_file_the_bridge_may_not_read_is_reported(tmp_path, monkeypatch):
    # The tests run as root, who may read any file: os.access is told this one is unreadable.
    (tmp_path / "seed.nk").write_text("SU...")
    unreadable = str(tmp_path / "seed.nk")
    readable = os.access
    monkeypatch.setattr(os, "access", lambda path, mode, **options: path != unreadable and readable(path, mode, **options))
    text = BASE.replace("nats:\n", "nats:\n  nkey_seed_file: seed.nk\n")
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert messages(caught.value) == [f"{path}:3:19: error: nats.nkey_seed_file: cannot read {unreadable}: permission denied"]


def test_substituted_args_are_read_as_yaml_in_every_subscription(tmp_path):
    path = write(tmp_path, BASE + textwrap.dedent("""\
        vars: {speed: '0.05'}
        subscriptions:
          - {subject: a, action: clear}
          - {subject: b, action: show_message, args: {scroll_speed: '${speed}'}}
        """))
    assert [entry.args for entry in load_config(path).subscriptions] == [{}, {"scroll_speed": 0.05}]


def test_args_text_is_read_as_yaml_only_where_substituted_and_only_when_that_makes_it_valid(tmp_path):
    assert check_messages(tmp_path, """\
        vars: {speed: '5'}
        subscriptions:
          - {subject: a, action: show_message, args: {scroll_speed: '0.05'}}
          - {subject: b, action: show_message, args: {scroll_speed: '${speed}'}}
        """) == [
        "6:62: error: subscriptions[0].args.scroll_speed: must be seconds per column, more than 0 and at most 1, "
        "got '0.05'",
        "7:62: error: subscriptions[1].args.scroll_speed: must be seconds per column, more than 0 and at most 1, "
        "got '5'",
    ]
