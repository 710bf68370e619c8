"""A config checked in a child process (bridge/config/isolated.py) comes back as loading it in this
process would give it: the same typed config, the same errors with the same issues."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import pytest_twisted

import bridge.config.isolated

from bridge.config import ConfigError, ConfigFileError, load_config, load_stored
from bridge.config.isolated import (
    BadOverride,
    ConfigCheckFailed,
    check_config_at_start,
    load_config_isolated,
    load_stored_at_start,
    load_stored_isolated,
    outcome,
)

CONFIG = """\
version: 1
vars: {room: lab}
device: {id: "pi-${env:PI_ROOM:-${room}}", driver: memory}
nats:
  servers: [nats://127.0.0.1:4222]
  reconnect: {initial_delay: 50ms}
web: {listen: "127.0.0.1:8080"}
subscriptions:
  - {subject: a.b, action: show_message, args: {scroll_speed: 0.05}}
  - {subject: a.c, action: clear, overflow: latest}
publications:
  - {subject: t, sensor: temperature, interval: 2s}
"""
INVALID = CONFIG.replace("driver: memory", "driver: memry").replace("interval: 2s", "interval: soon")
BOOTSTRAP = "version: 1\nfleet: {key: pis}\ndevice: {id: pi7, driver: memory}\nnats: {servers: [nats://127.0.0.1:4222]}\n"
STORED = "version: 1\nsubscriptions:\n  - {subject: \"cmd.${device.id}\", action: clear}\n"
SOURCE = "kv:bridge_config/pis@4"


def write(tmp_path: Path, text: str, name: str = "pi.yml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def at_start(path: str, overrides=()):
    return check_config_at_start(path, overrides).result()


def in_process_error(load, *arguments) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load(*arguments)
    return caught.value


def test_a_valid_file_comes_back_as_the_config_loading_it_here_gives(tmp_path, monkeypatch):
    monkeypatch.setenv("PI_ROOM", "attic")  # the child sees this process's environment
    path = write(tmp_path, CONFIG)
    config = at_start(path, ["nats.name=kitchen"])
    assert config == load_config(path, ["nats.name=kitchen"])
    assert config.device.id == "pi-attic" and config.nats.name == "kitchen"


@pytest.mark.parametrize("text, overrides, error_class", [
    (INVALID, [], ConfigError),
    (CONFIG, ["device.driver=memry"], ConfigError),
    (None, [], ConfigFileError),
])
def test_an_unusable_file_comes_back_as_the_same_error_with_the_same_issues(tmp_path, text, overrides, error_class):
    path = write(tmp_path, text) if text is not None else str(tmp_path / "missing.yml")
    expected = in_process_error(load_config, path, overrides)
    got = in_process_error(at_start, path, overrides)
    assert type(got) is type(expected) is error_class
    assert got.errors == expected.errors and str(got) == str(expected)


def test_a_set_that_is_not_key_equals_value_is_a_bad_override(tmp_path):
    with pytest.raises(BadOverride, match="expected KEY=VALUE, got 'nats.name'"):
        at_start(write(tmp_path, CONFIG), ["nats.name"])


def test_a_module_in_the_working_directory_does_not_shadow_one_the_child_imports(tmp_path, monkeypatch):
    (tmp_path / "yaml.py").write_text("raise SystemExit('the decoy yaml was imported')\n")
    monkeypatch.chdir(tmp_path)
    assert at_start(write(tmp_path, CONFIG)).device.id == "pi-lab"


def test_a_stored_revision_checked_at_start_is_merged_into_the_bootstrap(tmp_path):
    bootstrap = load_config(write(tmp_path, BOOTSTRAP))
    assert load_stored_at_start(STORED, bootstrap, SOURCE) == load_stored(STORED, bootstrap, SOURCE)


@pytest_twisted.ensureDeferred
async def test_a_file_checked_on_the_reactor_comes_back_as_its_config(tmp_path):
    path = write(tmp_path, CONFIG)
    assert await load_config_isolated(path, ["nats.name=kitchen"]) == load_config(path, ["nats.name=kitchen"])


@pytest_twisted.ensureDeferred
async def test_an_invalid_file_checked_on_the_reactor_fails_with_its_issues(tmp_path):
    path = write(tmp_path, INVALID)
    with pytest.raises(ConfigError) as caught:
        await load_config_isolated(path)
    assert caught.value.errors == in_process_error(load_config, path).errors


@pytest_twisted.ensureDeferred
async def test_a_stored_revision_checked_on_the_reactor_comes_back_merged(tmp_path):
    bootstrap = load_config(write(tmp_path, BOOTSTRAP))
    assert await load_stored_isolated(STORED, bootstrap, SOURCE) == load_stored(STORED, bootstrap, SOURCE)
    invalid = STORED.replace("action: clear", "action: clean")
    with pytest.raises(ConfigError) as caught:
        await load_stored_isolated(invalid, bootstrap, SOURCE)
    assert caught.value.errors == in_process_error(load_stored, invalid, bootstrap, SOURCE).errors


@pytest.mark.parametrize("stderr, status, signum, sentence", [
    (b"Traceback (most recent call last):\n  ...\nMemoryError\n", 1, None,
     "the config checker exited with status 1 without an answer (MemoryError)"),
    (b"", None, 9, "the config checker was killed by SIGKILL without an answer"),
])
def test_a_checker_that_ends_without_an_answer_is_one_sentence(stderr, status, signum, sentence):
    with pytest.raises(ConfigCheckFailed) as caught:
        outcome(b"", stderr, status, signum)
    assert str(caught.value) == sentence


KILLS_ITSELF = [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"]


def test_a_checker_killed_at_start_is_one_sentence(tmp_path, monkeypatch):
    monkeypatch.setattr(bridge.config.isolated, "child_command", lambda: KILLS_ITSELF)
    with pytest.raises(ConfigCheckFailed, match="^the config checker was killed by SIGKILL without an answer$"):
        at_start(write(tmp_path, CONFIG))


@pytest_twisted.ensureDeferred
async def test_a_checker_killed_on_the_reactor_is_one_sentence(tmp_path, monkeypatch):
    monkeypatch.setattr(bridge.config.isolated, "child_command", lambda: KILLS_ITSELF)
    with pytest.raises(ConfigCheckFailed, match="^the config checker was killed by SIGKILL without an answer$"):
        await load_config_isolated(write(tmp_path, CONFIG))
