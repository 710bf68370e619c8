"""`durable:` in a config: per publication, a default for all (`telemetry.durable`), `false` to opt
one out, and the errors a wrong one gets, with file:line:col."""

from __future__ import annotations

import pytest

from bridge.config import ConfigError, load_config, load_stored
from bridge.config.convert import to_plain
from bridge.config.durable import DurableConfig

HEAD = """\
version: 1
device: {id: pi1, driver: memory}
nats: {servers: ["nats://127.0.0.1:4222"]}
"""


def publication(sensor: str, durable: str | None = None) -> str:
    text = f"  - subject: sensors.pi1.{sensor}\n    sensor: {sensor}\n    interval: 1s\n"
    return text + (f"    durable: {durable}\n" if durable is not None else "")


def load(tmp_path, text: str):
    path = tmp_path / "bridge.yml"
    path.write_text(HEAD + text)
    return load_config(path)


def errors(tmp_path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text)
    return [str(issue).split(": error: ", 1)[1] + f" @{issue.line}:{issue.column}" for issue in caught.value.errors]


def test_a_publication_is_durable_with_its_own_block_and_the_defaults_fill_in(tmp_path):
    config = load(tmp_path, "publications:\n" + publication("temperature", "{spool: 1MiB}")
                  + publication("humidity", "{}") + publication("pressure"))
    assert [p.durable for p in config.publications] == [
        DurableConfig(stream="SENSORS", spool=1 << 20), DurableConfig(), None]


def test_telemetry_durable_is_the_default_and_false_opts_a_publication_out(tmp_path):
    config = load(tmp_path, "telemetry:\n  durable: {stream: HOME}\npublications:\n" + publication("temperature")
                  + publication("humidity", "false") + publication("pressure", "{stream: OTHER}"))
    assert [p.durable for p in config.publications] == [
        DurableConfig(stream="HOME"), None, DurableConfig(stream="OTHER")]


def test_the_printed_config_spells_the_spool_as_a_size(tmp_path):
    config = load(tmp_path, "publications:\n" + publication("temperature", "{spool: 1MiB}"))
    assert to_plain(config, set())["publications"][0]["durable"] == {"stream": "SENSORS", "spool": "1MiB"}


def test_wrong_durable_blocks_are_errors_at_their_place(tmp_path):
    text = ("telemetry:\n  durable: {spool: 1KiB}\npublications:\n" + publication("temperature", "true")
            + publication("humidity", '{stream: "a.b"}') + publication("pressure", "{spool: 1MiB, retries: 3}"))
    assert errors(tmp_path, text) == [
        "telemetry.durable.spool: spool must be at least 64KiB (got 1KiB) @5:20",
        "publications[0].durable: expected a mapping (stream, spool; {} for the defaults), or false to publish "
        "plainly, got true @10:14",
        "publications[1].durable.stream: a stream name: letters, digits, _ and -, got a string 'a.b' @14:24",
        "publications[2].durable.retries: unknown key 'retries'; expected one of: stream, spool @18:28",
    ]


def test_a_stored_config_carries_the_default_a_bootstrap_may_not(tmp_path):
    bootstrap_path = tmp_path / "bootstrap.yml"
    bootstrap_path.write_text(HEAD + "fleet: {key: pis}\n")
    bootstrap = load_config(bootstrap_path)
    stored = load_stored("version: 1\ntelemetry: {durable: {}}\npublications:\n" + publication("temperature"),
                         bootstrap, "kv:bridge_config/pis@1")
    assert stored.publications[0].durable == DurableConfig()
    bootstrap_path.write_text(HEAD + "fleet: {key: pis}\ntelemetry: {durable: {}}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(bootstrap_path)
    assert "takes telemetry from the stored config" in str(caught.value.errors[0])
