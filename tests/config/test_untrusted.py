"""The config file as untrusted input: bounded reads, bounded expansion, text kept as written, secrets masked whole."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

import bridge.config.substitute
from bridge.config import ConfigError, ConfigFileError, load_config
from bridge.config.limits import MAX_CONFIG_BYTES, MAX_FILE_BYTES
from bridge.config.redact import mask_value

BASE = "version: 1\nnats:\n  servers: [nats://127.0.0.1:4222]\n"


@pytest.fixture(autouse=True)
def fixed_hostname(monkeypatch):
    monkeypatch.setattr(bridge.config.substitute, "machine_hostname", lambda: "pi7")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bridge.yml"
    path.write_text(text)
    return path


def errors(path: Path, overrides=()) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(path, overrides)
    return [str(issue) for issue in caught.value.errors]


def finishes(function, seconds: float = 10.0):
    """Run `function` on a thread; fail (instead of hanging the suite) if it blocks."""
    outcome: dict = {}

    def call():
        try:
            outcome["value"] = function()
        except BaseException as error:  # noqa: BLE001 - handed to the test
            outcome["error"] = error

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "blocked: reading did not finish"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


# -- limits on what is read -------------------------------------------------------------------------

def test_a_config_file_over_one_mib_is_refused_unread(tmp_path):
    path = write(tmp_path, BASE + "# " + "x" * MAX_CONFIG_BYTES + "\n")
    assert errors(path) == [f"{path}: error: <file>: larger than 1 MiB, the most a config file may be; "
                            "a config this size is a mistake (or an attack): check what wrote it"]


def test_a_config_fifo_is_refused_without_waiting_for_a_writer(tmp_path):
    fifo = tmp_path / "bridge.yml"
    os.mkfifo(fifo)
    with pytest.raises(ConfigFileError) as caught:
        finishes(lambda: load_config(fifo))
    assert str(caught.value) == f"{fifo}: error: <file>: cannot read: a FIFO, not a regular file; save the config as a file"


def test_file_substitution_of_a_fifo_is_an_error_not_a_hang(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    path = write(tmp_path, BASE + "  token: ${file:pipe}\n")
    lines = finishes(lambda: errors(path))
    assert lines == [f"{path}:4:10: error: nats.token: ${{file:pipe}}: {tmp_path / 'pipe'} is a FIFO; "
                     "${file:...} reads regular files only (write the value to a file)"]


def test_file_substitution_of_a_device_is_an_error_not_endless_reading(tmp_path):
    path = write(tmp_path, BASE + "  token: ${file:/dev/zero}\n")
    assert finishes(lambda: errors(path)) == [
        f"{path}:4:10: error: nats.token: ${{file:/dev/zero}}: /dev/zero is a character device; "
        "${file:...} reads regular files only (write the value to a file)"]


def test_file_substitution_reads_at_most_64_kib(tmp_path):
    (tmp_path / "fits").write_text("f" * MAX_FILE_BYTES)
    (tmp_path / "big").write_text("b" * (MAX_FILE_BYTES + 1))
    assert load_config(write(tmp_path, BASE + "  name: ${file:fits}\n")).nats.name == "f" * MAX_FILE_BYTES
    path = write(tmp_path, BASE + "  name: ${file:big}\n")
    assert errors(path) == [f"{path}:4:9: error: nats.name: ${{file:big}}: {tmp_path / 'big'} is larger than 64 KiB, "
                            "the most ${file:...} reads (it is meant for secrets and short values)"]


def test_a_fifo_or_device_is_never_opened(tmp_path, monkeypatch):
    os.mkfifo(tmp_path / "pipe")
    opened = []
    real_open = os.open
    monkeypatch.setattr(os, "open", lambda name, *args: opened.append(str(name)) or real_open(name, *args))
    path = write(tmp_path, BASE + "  token: ${file:pipe}\n  name: ${file:/dev/zero}\n")
    assert len(finishes(lambda: errors(path))) == 2
    assert opened == [str(path)]  # the config itself, nothing else


def test_only_the_limit_is_read_of_a_huge_file(tmp_path):
    import tracemalloc

    huge = tmp_path / "huge"
    with open(huge, "wb") as stream:
        stream.truncate(64 * 1024 * 1024)  # sparse: costs no disk
    path = write(tmp_path, BASE + "  token: ${file:huge}\n")
    tracemalloc.start()
    try:
        assert "is larger than 64 KiB" in errors(path)[0]
        with pytest.raises(ConfigError, match="larger than 1 MiB"):
            load_config(huge)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * 1024 * 1024


def test_a_value_may_expand_to_64_ki_characters_and_no_more(tmp_path):
    def config(references: int) -> Path:
        return write(tmp_path, BASE + "  name: '" + "${k}" * references + "'\nvars: {k: '" + "k" * 1024 + "'}\n")

    assert load_config(config(64)).nats.name == "k" * 65536
    path = config(65)
    assert errors(path) == [f"{path}:4:10: error: nats.name: the value expands to more than 65536 characters (the most "
                            "one value may hold after substitution); check for variables that repeat each other"]


# -- nested defaults --------------------------------------------------------------------------------

def test_an_env_default_may_hold_references_expanded_like_any_value(tmp_path, monkeypatch):
    monkeypatch.delenv("BRIDGE_TEST_UNSET", raising=False)
    monkeypatch.delenv("BRIDGE_TEST_UNSET2", raising=False)
    monkeypatch.setenv("BRIDGE_TEST_SET", "given")
    path = write(tmp_path, BASE + "  name: '${env:BRIDGE_TEST_UNSET:-${fallback}}'\n"
                 "  user: '${env:BRIDGE_TEST_UNSET:-a-${env:BRIDGE_TEST_UNSET2:-b}-c}}'\n"
                 "  password: '${env:BRIDGE_TEST_SET:-${not_defined_but_not_used}}'\n"
                 "vars: {fallback: 'lab-$${x}'}\n")
    config = load_config(path)
    assert (config.nats.name, config.nats.user, config.nats.password) == ("lab-${x}", "a-b-c}", "given")


def test_an_error_inside_a_default_points_at_its_column(tmp_path, monkeypatch):
    monkeypatch.delenv("BRIDGE_TEST_UNSET", raising=False)
    path = write(tmp_path, BASE + "  name: a${env:BRIDGE_TEST_UNSET:-x${env:BRIDGE_TEST_UNSET}}\n")
    assert errors(path) == [f"{path}:4:36: error: nats.name: environment variable BRIDGE_TEST_UNSET is not set "
                            "(give a default with ${env:BRIDGE_TEST_UNSET:-default})"]


# -- vars are text as written -----------------------------------------------------------------------

def test_vars_keep_the_text_as_written(tmp_path):
    path = write(tmp_path, BASE + "  name: '${site}.${room}.${price}.${answer}'\n"
                 "vars: {site: NO, room: 010, price: 1.50, answer: yes, rot: 180}\ndevice: {rotation: '${rot}'}\n")
    config = load_config(path)
    assert config.nats.name == "NO.010.1.50.yes"
    assert config.device.rotation == 180  # read as a number where a number is wanted
    assert load_config(path, ["vars.room=007"]).nats.name == "NO.007.1.50.yes"


def test_vars_still_refuse_binary_and_empty_values(tmp_path):
    path = write(tmp_path, BASE + "vars:\n  blob: !!binary aGk=\n  empty:\n")
    assert errors(path) == [
        f"{path}:5:9: error: vars.blob: a variable is a string, number or true/false, got b'hi'",
        f"{path}:6:9: error: vars.empty: a variable is a string, number or true/false, got null",
    ]


# -- --set follows the schema -----------------------------------------------------------------------

def test_set_reads_each_value_as_the_schema_type_of_its_key(tmp_path):
    path = write(tmp_path, BASE + "subscriptions:\n  - {subject: a.b, action: show_message, args: {text_colour: [1, 2, 3]}}\n")
    config = load_config(path, [
        "subscriptions[0].args.text_colour=#ff0000",  # a list before: replaced, not wrapped as ['#ff0000']
        "subscriptions[0].args.text=NO",  # the action takes text: not false
        "nats.name=010",  # a text key: not 8
        "nats.password=NO",
        "nats.user=on",
        "nats.servers=nats://10.0.0.1:4222,nats://10.0.0.2:4222",
        "nats.reconnect.jitter=0.5",
        "device.low_light=true",
    ])
    assert config.subscriptions[0].args == {"text_colour": (255, 0, 0), "text": "NO"}
    assert (config.nats.name, config.nats.user, config.nats.password) == ("010", "on", "NO")
    assert config.nats.servers == ("nats://10.0.0.1:4222", "nats://10.0.0.2:4222")
    assert (config.nats.reconnect.jitter, config.device.low_light) == (0.5, True)


def test_set_of_a_list_key_with_one_item_of_another_kind_is_an_error(tmp_path):
    path = write(tmp_path, BASE + "subscriptions:\n  - {subject: a.b, action: clear}\n")
    assert errors(path, ["subscriptions=a.b"]) == [
        "--set:1:15: error: subscriptions: expected a list, got a string 'a.b'"]


# -- secrets are masked as whole values -------------------------------------------------------------

def test_a_one_letter_password_does_not_mangle_other_messages(tmp_path):
    path = write(tmp_path, BASE + "  user: a\n  password: a\n  randomise: true\n")
    assert errors(path) == [f"{path}:6:3: error: nats.randomise: unknown key 'randomise'; did you mean 'randomize'?"]


def test_a_secret_value_is_masked_where_a_message_quotes_it(tmp_path):
    (tmp_path / "subject").write_text("top..secret\n")
    (tmp_path / "colour").write_text("#" + "c0ffee" * 20 + "\n")  # quoted cut short by the action's message
    path = write(tmp_path, BASE + "subscriptions:\n  - {subject: '${file:subject}', action: show_message, "
                 "args: {text_colour: '${file:colour}'}}\n")
    lines = errors(path)
    assert len(lines) == 2 and "top" not in "".join(lines) and "c0ffee" not in "".join(lines), lines
    assert "subject '********' has an empty token" in lines[0]


def test_a_url_password_in_a_duplicate_server_is_masked(tmp_path):
    path = write(tmp_path, "version: 1\nnats:\n  servers: [nats://pi:s3cret@h:4222, nats://pi:s3cret@h:4222]\n")
    assert errors(path) == [f"{path}:3:38: error: nats.servers[1]: duplicate of entry 0 ('nats://pi:********@h:4222')"]


@pytest.mark.parametrize("message, secret, shown", [
    ("got 'a' in 'a.b', a", "a", "got '********' in 'a.b', a"),
    ('got "s3cret"', "s3cret", "got '********'"),
    ("got 'abcdefghij...' here", "abcdefghijklmnopqrstuvwxyz", "got '********' here"),
    ("got 'abcdefghij...", "abcdefghijklmnopqrstuvwxyz", "got '********'"),
    ("got 'abc...' here", "abcdefghijklmnopqrstuvwxyz", "got 'abc...' here"),  # too short to be a cut value
])
def test_mask_value_masks_only_whole_quoted_values(message, secret, shown):
    assert mask_value(message, secret) == shown
