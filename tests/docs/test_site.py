"""The docs site builds in strict mode, and its generated reference holds every key, command,
exit status and action the bridge has, each config example one the bridge accepts."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bridge import actions
from bridge.cli.exit import ExitStatus
from bridge.cli.main import build_parser
from bridge.config import load_config
from tests.docs.examples import MINIMAL, as_on_its_pi, load_docs_hooks

REPO = Path(__file__).resolve().parents[2]


hooks = load_docs_hooks()


def build(folder: Path) -> subprocess.CompletedProcess:
    pytest.importorskip("mkdocs", reason="mkdocs is not installed (it is in the dev extra: make install)")
    pytest.importorskip("material", reason="mkdocs-material is not installed (it is in the dev extra: make install)")
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(folder / "site")],
        cwd=folder, capture_output=True, text=True, timeout=120, env=dict(os.environ, NO_MKDOCS_2_WARNING="1"),
    )


def copy_of_the_site_sources(folder: Path) -> Path:
    shutil.copytree(REPO / "docs", folder / "docs")
    shutil.copy(REPO / "mkdocs.yml", folder / "mkdocs.yml")
    shutil.copytree(REPO / "schemas", folder / "schemas")
    return folder


def test_the_site_builds_in_strict_mode(tmp_path):
    result = build(copy_of_the_site_sources(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARNING" not in result.stderr, result.stderr
    config_page = (tmp_path / "site" / "reference" / "config" / "index.html").read_text(encoding="utf-8")
    assert "nats.reconnect.max_delay" in config_page


def test_a_broken_anchor_fails_the_build(tmp_path):
    folder = copy_of_the_site_sources(tmp_path)
    page = folder / "docs" / "index.md"
    page.write_text(page.read_text(encoding="utf-8") + "\n[gone](reference/config.md#no-such-key)\n", encoding="utf-8")
    result = build(folder)
    assert result.returncode != 0
    assert "no-such-key" in result.stderr


def test_every_generated_marker_names_a_generator():
    used = set()
    for page in (REPO / "docs").rglob("*.md"):
        used |= set(hooks.MARKER.findall(page.read_text(encoding="utf-8")))
    assert used == set(hooks.GENERATORS)


def test_every_config_key_is_in_the_reference():
    text = hooks.config_reference()
    schema = hooks.load_schema()
    for top, node in schema["properties"].items():
        assert f"`{top}`" in text
        for key in node.get("properties", {}):
            assert f"`{top}.{key}`" in text
    for key in schema["$defs"]["subscription"]["properties"]:
        assert f"`subscriptions[].{key}`" in text


def test_a_key_added_to_the_schema_appears_with_its_facts(monkeypatch):
    schema = hooks.load_schema()
    schema["properties"]["web"]["properties"]["theme"] = {
        "description": "Colours of the page.", "enum": ["light", "dark"], "default": "light"}
    monkeypatch.setattr(hooks, "load_schema", lambda name="bridge.schema.json": schema)
    text = hooks.config_reference()
    section = text[text.index("### `web.theme`"):]
    assert 'one of `"light"`, `"dark"`' in section and '**Default**: `"light"`' in section
    assert "Colours of the page." in section and "theme: light" in section


def merged(base: dict, extra: dict) -> dict:
    result = dict(base)
    for key, value in extra.items():
        result[key] = merged(result[key], value) if isinstance(value, dict) and isinstance(result.get(key), dict) else value
    return result


@pytest.mark.parametrize("key, example", hooks.config_examples(), ids=[key for key, _ in hooks.config_examples()])
def test_every_config_key_example_is_a_valid_config(key, example, tmp_path, monkeypatch):
    text = hooks.example_yaml(merged(MINIMAL, example))
    text = as_on_its_pi(text, tmp_path, monkeypatch)
    path = tmp_path / "config.yml"
    path.write_text(text, encoding="utf-8")
    load_config(path)


def test_every_command_and_exit_status_is_in_the_reference():
    text = hooks.cli_reference()
    for name, command in hooks.commands(build_parser()).items():
        section = text[text.index(f"## `bridge {name}`"):]
        assert "\n- 0 OK: " in section.split("\n## ")[0]
        for action in command._actions:
            for option in action.option_strings if action.dest != "help" else ():
                assert f"`{option}`" in text
    for status in ExitStatus:
        assert f"| {status.value} | `{status.name}` |" in text


def test_every_action_is_in_the_reference():
    text = hooks.actions_reference()
    for name in actions._SPECS:
        assert f"| `{name}` |" in text



def test_the_actions_page_describes_every_action_by_hand_too():
    page = (REPO / "docs" / "reference" / "actions.md").read_text(encoding="utf-8")
    described = page[:page.index("<!-- generated: actions -->")]
    assert [name for name in actions._SPECS if f"`{name}`" not in described] == []
