"""The `homeassistant:` block: checked like every other key, allowed in stored fleet configs."""

from __future__ import annotations

import pytest

from bridge.config import ConfigError, load_config, load_stored
from bridge.config.model import HomeAssistantConfig

BASE = """\
version: 1
device: {id: kitchen, driver: memory}
nats: {servers: [nats://127.0.0.1:4222]}
"""


def load(tmp_path, block: str):
    path = tmp_path / "bridge.yml"
    path.write_text(BASE + block)
    return load_config(path)


def errors(tmp_path, block: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, block)
    return [str(issue).split("/", 1)[-1].split(":", 1)[-1] for issue in caught.value.errors]


def test_without_the_block_nothing_is_announced(tmp_path):
    assert load(tmp_path, "").homeassistant is None


def test_an_empty_block_takes_home_assistants_defaults(tmp_path):
    assert load(tmp_path, "homeassistant: {}\n").homeassistant == HomeAssistantConfig(
        prefix="homeassistant", name=None, expire_after="auto")


def test_every_key_is_read_with_its_unit(tmp_path):
    config = load(tmp_path, "homeassistant: {prefix: ha/discovery, name: Kitchen Sense HAT, expire_after: 5m}\n")
    assert config.homeassistant == HomeAssistantConfig(prefix="ha/discovery", name="Kitchen Sense HAT",
                                                       expire_after=300.0)
    assert load(tmp_path, "homeassistant: {expire_after: off}\n").homeassistant.expire_after == "off"


def test_bad_values_are_reported_at_their_line_and_column(tmp_path):
    found = errors(tmp_path, "homeassistant:\n  prefix: home assistant\n  expire_after: 0\n  name: ''\n  colour: red\n")
    assert found == [
        "5:11: error: homeassistant.prefix: a discovery prefix is MQTT topic levels of letters, digits, '_' and '-', "
        "separated by '/', like homeassistant, got a string 'home assistant'",
        "6:17: error: homeassistant.expire_after: expire_after must be more than 0; 'off' never expires a sensor",
        "7:10: error: homeassistant.name: must not be empty",
        "8:3: error: homeassistant.colour: unknown key 'colour'; expected one of: prefix, name, expire_after",
    ]


def test_an_expiry_that_is_no_duration_says_what_is_expected(tmp_path):
    assert errors(tmp_path, "homeassistant: {expire_after: soon}\n") == [
        "4:31: error: homeassistant.expire_after: expected auto, off or a duration like 90s, got a string 'soon'"]


def test_a_stored_config_may_carry_the_block_and_the_bootstrap_may_not(tmp_path):
    path = tmp_path / "bridge.yml"
    path.write_text("version: 1\nfleet: {key: pis}\ndevice: {id: pi7, driver: memory}\n"
                    "nats: {servers: [nats://127.0.0.1:4222]}\n")
    bootstrap = load_config(path)
    stored = load_stored("version: 1\nhomeassistant:\n  name: Pi ${device.id}\n", bootstrap, "kv:bridge_config/pis@2")
    assert stored.homeassistant == HomeAssistantConfig(name="Pi pi7")
    path.write_text(path.read_text() + "homeassistant: {}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert "takes homeassistant from the stored config" in str(caught.value)
