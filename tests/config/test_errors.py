"""Bad configs, one mistake each: `bridge validate` must name the line, the path and the problem."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import NamedTuple

import pytest

from bridge.cli.main import main

REPO = Path(__file__).resolve().parents[2]


class Case(NamedTuple):
    name: str
    text: str
    line: int
    path: str
    fragment: str
    overrides: tuple[str, ...] = ()


def case(name, text, line, path, fragment, *overrides):
    return Case(name, textwrap.dedent(text), line, path, fragment, overrides)


CASES = [
    case("typo in a top-level key", """\
        version: 1
        nats: {servers: [nats://127.0.0.1:4222]}
        subscription:
          - {subject: a.b, action: clear}
        """, 3, "subscription", "unknown key 'subscription'; did you mean 'subscriptions'?"),
    case("typo in a nats key", """\
        version: 1
        nats:
          servers: [nats://127.0.0.1:4222]
          ping_intervall: 5s
        """, 4, "nats.ping_intervall", "did you mean 'ping_interval'?"),
    case("typo in a subscription key", """\
        version: 1
        nats: {servers: [nats://127.0.0.1:4222]}
        subscriptions:
          - subject: a.b
            actoin: clear
        """, 5, "subscriptions[0].actoin", "did you mean 'action'?"),
    case("typo in an action", """\
        version: 1
        nats: {servers: [nats://127.0.0.1:4222]}
        subscriptions:
          - subject: a.b
            action: clear
          - subject: a.c
            action: show_mesage
        """, 7, "subscriptions[1].action", "'show_mesage' is not an action; did you mean 'show_message'?"),
    case("typo in a driver", """\
        version: 1
        device:
          driver: sense_hat
        nats: {servers: [nats://127.0.0.1:4222]}
        """, 3, "device.driver", "'sense_hat' is not a driver; did you mean 'sense-hat'?"),
    case("typo in a sensor", """\
        version: 1
        nats: {servers: [nats://127.0.0.1:4222]}
        publications:
          - {subject: s.t, sensor: temprature, interval: 1s}
        """, 4, "publications[0].sensor", "did you mean 'temperature'?"),
    case("unknown overflow policy", """\
        version: 1
        nats: {servers: [nats://127.0.0.1:4222]}
        subscriptions:
          - {subject: a.b, action: clear, overflow: newest}
        """, 4, "subscriptions[0].overflow", "'newest' is not an overflow policy; expected one of: 'queue', 'latest'"),
    case("rotation not a right angle", """\
        version: 1
        device: {rotation: 45}
        nats: {servers: [nats://127.0.0.1:4222]}
        """, 2, "device.rotation", "45 is not a rotation; expected one of: 0, 90, 180, 270"),
    case("servers given as one string", """\
        version: 1
        nats:
          servers: nats://127.0.0.1:4222
        """, 3, "nats.servers", "expected a list of at least one server URL"),
    case("boolean given as text", """\
        version: 1
        nats:
          servers: [nats://127.0.0.1:4222]
          randomize: sometimes
        """, 4, "nats.randomize", "expected true or false, got a string 'sometimes'"),
    case("integer given as text", """\
        version: 1
        nats: {servers: [nats://127.0.0.1:4222]}
        subscriptions:
          - subject: a.b
            action: clear
            pending_limit: lots
        """, 6, "subscriptions[0].pending_limit", "expected an integer"),
    case("pending limit zero", """\
        version: 1
        nats: {servers: [nats://127.0.0.1:4222]}
        subscriptions:
          - {subject: a.b, action: clear, pending_limit: 0}
        """, 4, "subscriptions[0].pending_limit", "must be at least 1, got 0"),
    case("duration in words", """\
        version: 1
        nats: {servers: [nats://127.0.0.1:4222]}
        publications:
          - subject: s.t
            sensor: temperature
            interval: 10 seconds
        """, 6, "publications[0].interval", "expected a duration like 250ms, 10s, 5m, 1h"),
    case("negative duration", """\
        version: 1
        nats:
          servers: [nats://127.0.0.1:4222]
          reconnect:
            max_delay: -5
        """, 5, "nats.reconnect.max_delay", "expected a duration"),
    case("bad size unit", """\
        version: 1
        nats:
          servers: [nats://127.0.0.1:4222]
          buffer_size: 8 megs
        """, 4, "nats.buffer_size", "expected a size like 512KiB, 8MiB"),
    case("colour component out of range", """\
        version: 1
        nats: {servers: [nats://127.0.0.1:4222]}
        subscriptions:
          - subject: a.b
            action: show_message
            args:
              text_colour: [300, 0, 0]
        """, 7, "subscriptions[0].args.text_colour", "0..255"),
    case("colour hex too short", """\
        version: 1
        nats: {servers: [nats://127.0.0.1:4222]}
        subscriptions:
          - subject: a.b
            action: clear
            args: {color: "#ff00"}
        """, 6, "subscriptions[0].args.color", "#rrggbb"),
    case("arg the action does not take", """\
        version: 1
        nats: {servers: [nats://127.0.0.1:4222]}
        subscriptions:
          - subject: a.b
            action: clear
            args:
              colour: [1, 2, 3]
        """, 7, "subscriptions[0].args.colour", "did you mean 'color'?"),
    case("wildcard in a publish subject", """\
        version: 1
        nats: {servers: [nats://127.0.0.1:4222]}
        publications:
          - {subject: sensors.*.temperature, sensor: temperature, interval: 1s}
        """, 4, "publications[0].subject", "publish subjects must be literal"),
    case("full wildcard not last", """\
        version: 1
        nats: {servers: [nats://127.0.0.1:4222]}
        subscriptions:
          - subject: pi.>.show
            action: show_message
        """, 4, "subscriptions[0].subject", "'>' must be the last token"),
    case("empty subject token", """\
        version: 1
        nats: {servers: [nats://127.0.0.1:4222]}
        subscriptions:
          - {subject: pi..show, action: show_message}
        """, 4, "subscriptions[0].subject", "empty token"),
    case("same subject and action twice", """\
        version: 1
        nats: {servers: [nats://127.0.0.1:4222]}
        subscriptions:
          - {subject: a.b, action: clear}
          - {subject: a.c, action: clear}
          - {subject: a.b, action: clear}
        """, 6, "subscriptions[2].subject", "same subject and action as subscriptions[0] (line 4)"),
    case("missing servers", """\
        version: 1
        nats:
          name: lonely
        """, 2, "nats.servers", "missing required key 'servers'"),
    case("empty server list", """\
        version: 1
        nats:
          servers: []
        """, 3, "nats.servers", "at least one server URL"),
    case("http URL for a server", """\
        version: 1
        nats:
          servers:
            - nats://127.0.0.1:4222
            - http://127.0.0.1:8222
        """, 5, "nats.servers[1]", "a server URL looks like nats://HOST:PORT"),
    case("two kinds of authentication", """\
        version: 1
        nats:
          servers: [nats://127.0.0.1:4222]
          token: abc
          creds_file: bridge.yml
        """, 5, "nats.creds_file", "use one kind of authentication"),
    case("user without password", """\
        version: 1
        nats:
          servers: [nats://127.0.0.1:4222]
          user: pi
        """, 4, "nats.user", "'user' needs 'password' as well"),
    case("undefined substitution", """\
        version: 1
        vars: {room: lab}
        nats: {servers: [nats://127.0.0.1:4222]}
        subscriptions:
          - subject: pi.${rom}.show
            action: show_message
        """, 5, "subscriptions[0].subject", "undefined substitution '${rom}'; did you mean 'room'?"),
    case("unset environment variable", """\
        version: 1
        nats:
          servers: ["${env:BRIDGE_TEST_DEFINITELY_UNSET}"]
        """, 3, "nats.servers[0]", "environment variable BRIDGE_TEST_DEFINITELY_UNSET is not set"),
    case("missing secret file", """\
        version: 1
        nats:
          servers: [nats://127.0.0.1:4222]
          token: ${file:no-such-token}
        """, 4, "nats.token", "no such file"),
    case("unterminated substitution", """\
        version: 1
        nats:
          servers: [nats://127.0.0.1:4222]
          name: bridge-${device.id
        """, 4, "nats.name", "unterminated '${'"),
    case("duplicate key", """\
        version: 1
        nats:
          servers: [nats://127.0.0.1:4222]
          servers: [nats://127.0.0.1:4223]
        """, 4, "nats.servers", "duplicate key 'servers' (first defined on line 3)"),
    case("tab indentation", "version: 1\nnats:\n\tservers: [nats://127.0.0.1:4222]\n",
         3, "<yaml>", "tab character: YAML indentation must use spaces"),
    case("empty file", "", 1, "<root>", "the file is empty"),
    case("comments only", "# nothing here yet\n", 1, "<root>", "the file is empty"),
    case("list at the top level", """\
        - version: 1
        - nats: {}
        """, 1, "<root>", "the top level must be a mapping"),
    case("unclosed flow list", """\
        version: 1
        nats:
          servers: [nats://127.0.0.1:4222
        subscriptions: []
        """, 4, "<yaml>", "YAML syntax"),
    case("unquoted substitution in a flow mapping", """\
        version: 1
        nats: {servers: [nats://127.0.0.1:4222]}
        device: {id: ${HOSTNAME}}
        """, 3, "<yaml>", "write substitutions in quotes"),
    case("a line indented deeper than its sibling", """\
        version: 1
        device:
          id: kitchen
           driver: memory
        """, 4, "<yaml>", "this line is indented deeper than the line above (3 spaces, not 2)"),
    case("an unquoted value holding ': '", """\
        version: 1
        nats:
          servers: [nats://127.0.0.1:4222]
          name: kitchen: left
        """, 4, "<yaml>", "a value that holds ': ' must be quoted"),
    case("an unquoted ':' inside a flow mapping", """\
        version: 1
        nats: {servers: [nats://127.0.0.1:4222], name: a: b}
        """, 2, "<yaml>", "quote a value that holds ':'"),
    case("a quote never closed", """\
        version: 1
        nats:
          name: "kitchen
        """, 4, "<yaml>", "a quote opened there is never closed"),
    case("a key without its colon", """\
        version: 1
        nats
          servers: [nats://127.0.0.1:4222]
        """, 3, "<yaml>", "each line of a mapping is 'key: value'"),
    case("python object tag", """\
        version: 1
        nats: !!python/object/apply:os.system [echo owned]
        """, 2, "nats", "unsupported tag '!!python/object/apply:os.system'"),
    case("second document", """\
        version: 1
        nats: {servers: [nats://127.0.0.1:4222]}
        ---
        version: 1
        """, 3, "<yaml>", "one YAML document"),
    case("missing version", """\
        nats: {servers: [nats://127.0.0.1:4222]}
        """, 1, "version", "missing required key 'version'"),
    case("future version", """\
        version: 2
        nats: {servers: [nats://127.0.0.1:4222]}
        """, 1, "version", "unsupported version"),
    case("device id with a space", """\
        version: 1
        device:
          id: kitchen pi
        nats: {servers: [nats://127.0.0.1:4222]}
        """, 3, "device.id", "a device id uses only letters, digits"),
    case("device given as a driver name", """\
        version: 1
        device: memory
        nats: {servers: [nats://127.0.0.1:4222]}
        subscriptions:
          - {subject: "pi.${device.id}.clear", action: clear}
        """, 2, "device", "expected a mapping, got a string 'memory'"),
    case("polled sensor without interval", """\
        version: 1
        nats: {servers: [nats://127.0.0.1:4222]}
        publications:
          - subject: s.h
            sensor: humidity
        """, 4, "publications[0].interval", "missing required key 'interval'"),
    case("joystick with interval", """\
        version: 1
        nats: {servers: [nats://127.0.0.1:4222]}
        publications:
          - subject: s.j
            sensor: joystick
            interval: 1s
        """, 6, "publications[0].interval", "the joystick is event driven"),
    case("heartbeat without change", """\
        version: 1
        nats: {servers: [nats://127.0.0.1:4222]}
        publications:
          - subject: s.t
            sensor: temperature
            interval: 10s
            heartbeat: 5m
        """, 7, "publications[0].heartbeat", "heartbeat only matters with 'change'"),
    case("zero interval", """\
        version: 1
        nats: {servers: [nats://127.0.0.1:4222]}
        publications:
          - {subject: s.t, sensor: temperature, interval: 0s}
        """, 4, "publications[0].interval", "interval must be more than 0"),
    case("missing TLS file", """\
        version: 1
        nats:
          servers: [tls://127.0.0.1:4443]
          tls:
            ca_file: certs/missing-ca.pem
        """, 5, "nats.tls.ca_file", "no such file"),
    case("certificate without key", """\
        version: 1
        nats:
          servers: [tls://127.0.0.1:4443]
          tls:
            cert_file: bridge.yml
        """, 5, "nats.tls.cert_file", "'cert_file' needs 'key_file' as well"),
    case("jitter above one", """\
        version: 1
        nats:
          servers: [nats://127.0.0.1:4222]
          reconnect: {jitter: 1.5}
        """, 4, "nats.reconnect.jitter", "must be at most 1, got 1.5"),
    case("substitution cycle", """\
        version: 1
        vars:
          a: ${b}
          b: ${a}
        nats: {servers: [nats://127.0.0.1:4222]}
        """, 3, "vars.a", "substitution cycle: a -> b -> a"),
    case("bad variable name", """\
        version: 1
        vars:
          my-room: lab
        nats: {servers: [nats://127.0.0.1:4222]}
        """, 3, "vars.my-room", "variable names use letters, digits and '_'"),
    case("web listen without port", """\
        version: 1
        nats: {servers: [nats://127.0.0.1:4222]}
        web:
          listen: localhost
        """, 4, "web.listen", "expected HOST:PORT"),
    case("queue group with a space", """\
        version: 1
        nats: {servers: [nats://127.0.0.1:4222]}
        subscriptions:
          - {subject: a.b, action: clear, queue: "two words"}
        """, 4, "subscriptions[0].queue", "a queue group name has no whitespace"),
    case("args for an action as a list", """\
        version: 1
        nats: {servers: [nats://127.0.0.1:4222]}
        subscriptions:
          - subject: a.b
            action: clear
            args: [1, 2, 3]
        """, 6, "subscriptions[0].args", "expected a mapping, got a list"),
]


DOUBLING = "".join(f'          w{n}: "${{w{n - 1}}}${{w{n - 1}}}"\n' for n in range(1, 28))  # 2**27 characters if unchecked
CHAIN = "".join(f"          v{n}: ${{v{n - 1}}}\n" for n in range(39, 0, -1)) + "          v0: x\n"  # v39 first

CASES += [
    case("variables that double 27 times", """\
        version: 1
        nats: {servers: [nats://127.0.0.1:4222]}
        device: {id: "${w27}"}
        vars:
          w0: x
        """.rstrip(" ") + DOUBLING, 22, "vars.w17", "expands to more than 65536 characters"),
    case("variables nested past the limit", """\
        version: 1
        nats: {servers: [nats://127.0.0.1:4222]}
        vars:
        """.rstrip(" ") + CHAIN, 36, "vars.v7", "substitutions nest more than 32 levels deep"),
    case("undefined name in an env default", """\
        version: 1
        vars: {fallback: lab}
        nats:
          servers: [nats://127.0.0.1:4222]
          name: "${env:BRIDGE_TEST_DEFINITELY_UNSET:-${falback}}"
        """, 5, "nats.name", "undefined substitution '${falback}'; did you mean 'fallback'?"),
    case("a name inside a name", """\
        version: 1
        vars: {room: lab, lab: x}
        nats:
          servers: [nats://127.0.0.1:4222]
          name: "${${room}}"
        """, 5, "nats.name", "a substitution may appear only in an ${env:NAME:-default} default"),
    case("subject longer than a protocol line allows", f"""\
        version: 1
        nats: {{servers: [nats://127.0.0.1:4222]}}
        subscriptions:
          - action: clear
            subject: {"a" * 3073}
        """, 5, "subscriptions[0].subject", "the subject is 3073 bytes, longer than the 3072"),
    case("subject that substitution makes too long", """\
        version: 1
        nats: {servers: [nats://127.0.0.1:4222]}
        vars: {a: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa}
        publications:
          - {subject: "${a}${a}${a}${a}${a}${a}${a}${a}${a}${a}${a}${a}${a}${a}${a}${a}${a}${a}${a}${a}${a}${a}${a}${a}${a}${a}${a}${a}${a}${a}${a}", sensor: joystick}
        """, 5, "publications[0].subject", "longer than the 3072 a subject may be here"),
]


def run_validate(tmp_path: Path, capsys, text: str, *extra: str) -> tuple[int, Path, list[str]]:
    path = tmp_path / "bridge.yml"
    path.write_text(text)
    status = main(["validate", str(path), *extra])
    captured = capsys.readouterr()
    return status, path, captured.err.splitlines()


def test_there_are_at_least_thirty_distinct_mistakes():
    assert len({case.name for case in CASES}) == len(CASES) >= 30


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_config_names_line_path_and_problem(case, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("BRIDGE_TEST_DEFINITELY_UNSET", raising=False)
    overrides = [argument for override in case.overrides for argument in ("--set", override)]
    status, path, lines = run_validate(tmp_path, capsys, case.text, *overrides)
    assert status == 1
    prefix = f"{path}:{case.line}:"
    matching = [line for line in lines if line.startswith(prefix) and f": error: {case.path}: " in line]
    assert matching, f"no error at line {case.line} for {case.path}; got:\n" + "\n".join(lines)
    assert any(case.fragment in line for line in matching), "\n".join(lines)


@pytest.mark.parametrize("override, position, path, fragment", [
    ("device.driver=sense_emu", "--set:1:15", "device.driver", "did you mean 'sense-emu'?"),
    ("nats.servers=http://x:1", "--set:1:14", "nats.servers[0]", "a server URL looks like"),
    ("subscriptions[4].action=clear", "--set:1:1", "subscriptions[4].action", "has 0 entries, no [4]"),
    ("device.low_light=yes", "--set:1:18", "device.low_light", "expected true or false, got a string 'yes'"),
    ("nats.reconnect.max_attempts=1_000", "--set:1:29", "nats.reconnect.max_attempts", "expected an integer"),
    ("device.rotation=0x5A", "--set:1:17", "device.rotation", "'0x5A' is not a rotation"),
    ("subscriptions=a.b", "--set:1:15", "subscriptions", "expected a list"),
])
def test_bad_override_points_at_the_set_argument(override, position, path, fragment, tmp_path, capsys):
    text = "version: 1\nnats: {servers: [nats://127.0.0.1:4222]}\nsubscriptions: []\n"
    status, _, lines = run_validate(tmp_path, capsys, text, "--set", override)
    assert status == 1
    assert any(line.startswith(f"{position}: error: {path}: ") and fragment in line for line in lines), lines


def test_every_error_is_reported_at_once_sorted_by_position(tmp_path, capsys):
    text = textwrap.dedent("""\
        version: 1
        device: {driver: memroy}
        nats:
          servers: [nats://127.0.0.1:4222]
          randomise: true
        subscriptions:
          - {subject: a.>.b, action: clear}
        publications:
          - {subject: s.*, sensor: joystick}
        """)
    status, path, lines = run_validate(tmp_path, capsys, text)
    assert status == 1
    assert [line.split(": error: ")[0] for line in lines] == [f"{path}:{n}" for n in ("2:18", "5:3", "7:15", "9:15")]
    assert "did you mean 'memory'?" in lines[0] and "did you mean 'randomize'?" in lines[1]


def test_json_format_lists_the_same_errors(tmp_path, capsys):
    text = "version: 1\nnats: {servers: [nats://127.0.0.1:4222]}\nsubscriptions:\n  - {subject: a, action: clera}\n"
    path = tmp_path / "bridge.yml"
    path.write_text(text)
    assert main(["validate", "--format", "json", str(path)]) == 1
    captured = capsys.readouterr()
    assert captured.err == ""
    errors = json.loads(captured.out)["files"][0]["errors"]
    assert [(error["line"], error["path"]) for error in errors] == [(4, "subscriptions[0].action")]
    assert "did you mean 'clear'?" in errors[0]["message"]


def test_invalid_utf8_names_its_line(tmp_path, capsys):
    path = tmp_path / "bridge.yml"
    path.write_bytes(b"version: 1\nnats: {servers: [nats://127.0.0.1:4222]}\nvars: {room: \xff}\n")
    assert main(["validate", str(path)]) == 1
    assert capsys.readouterr().err.startswith(f"{path}:3:14: error: <file>: not UTF-8 text")


def test_real_subprocess_exit_codes_and_messages(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("version: 1\nnats:\n  servers: [nats://127.0.0.1:4222]\nsubscriptions:\n  - {subject: a.b, action: show_mesage}\n")
    command = [sys.executable, "-m", "bridge", "validate"]
    result = subprocess.run([*command, str(bad)], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 1
    assert result.stderr == (f"{bad}:5:28: error: subscriptions[0].action: "
                             "'show_mesage' is not an action; did you mean 'show_message'?\n")

    good = REPO / "configs" / "minimal.yml"
    result = subprocess.run([*command, "configs/minimal.yml", "--set", "device.id=pi1"],
                            capture_output=True, text=True, cwd=REPO)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.startswith("configs/minimal.yml: ok: device pi1 (sense-hat), 1 subscription")
    assert good.exists()

    result = subprocess.run([*command, str(tmp_path / "absent.yml")], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 2


@pytest.mark.parametrize("device", ["memory", "{id: 'kitchen pi'}"])
def test_a_bad_device_does_not_also_fail_every_subject_using_its_id(device, tmp_path, capsys):
    text = (f"version: 1\ndevice: {device}\nnats: {{servers: [nats://127.0.0.1:4222]}}\nsubscriptions:\n"
            "  - {subject: 'pi.${device.id}.clear', action: clear}\n"
            "  - {subject: 'pi.${device.id}.show', action: show_message}\n")
    status, path, lines = run_validate(tmp_path, capsys, text)
    assert status == 1
    assert len(lines) == 1 and lines[0].startswith(f"{path}:2:"), lines


def test_a_server_port_out_of_range_is_caught_by_validate(tmp_path, capsys):
    from bridge.cli.main import main

    path = tmp_path / "bridge.yml"
    path.write_text("version: 1\ndevice: {id: a, driver: memory}\nnats:\n  servers: [nats://h:99999]\n")
    assert main(["validate", str(path)]) == 1
    err = capsys.readouterr().err
    assert ":4:" in err and "nats.servers[0]" in err and "port 1..65535" in err
