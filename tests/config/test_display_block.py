"""The config's `display:` block: apps, idle, the queue's bounds, named icons (files or colours)."""

from __future__ import annotations

import json
import textwrap

import pytest

from bridge.config import ConfigError, load_config
from bridge.config.convert import to_plain
from bridge.config.loader import load_stored
from bridge.display.icons import BUILTIN
from bridge.display.model import App, Content, DisplayConfig

HEAD = "version: 1\ndevice: {id: pi, driver: memory}\nnats: {servers: [nats://127.0.0.1:4222]}\n"
RED = (255, 0, 0)
REDS = json.dumps([[255, 0, 0]] * 64)
BUILT_IN = next(iter(BUILTIN))


def write(tmp_path, text: str):
    path = tmp_path / "bridge.yml"
    path.write_text(HEAD + textwrap.dedent(text))
    return path


def errors(tmp_path, text: str) -> list[str]:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return [str(issue).replace(f"{path}:", "") for issue in caught.value.errors]


def test_no_display_block_is_the_default_display(tmp_path):
    config = load_config(write(tmp_path, ""))
    assert config.display == DisplayConfig()


def test_apps_idle_queue_and_icons_become_the_display_config(tmp_path):
    config = load_config(write(tmp_path, f"""\
        display:
          apps:
            - {{name: clock, clock: "%H:%M", duration: 6s}}
            - {{name: temperature, text: "{{temperature:.1f}}C", icon: {BUILT_IN}, text_colour: "#ff0000"}}
            - {{name: door, icon: door, scroll_speed: 0.05, duration: 1m}}
          idle: blank
          queue_limit: 4
          queue_bytes: 8KiB
          icons:
            door: {REDS}
        """))
    display = config.display
    assert display.apps == (
        App("clock", Content(), duration=6.0, clock="%H:%M"),
        App("temperature", Content(text="{temperature:.1f}C", icon=BUILTIN[BUILT_IN], text_colour=RED)),
        App("door", Content(icon=(RED,) * 64, scroll_speed=0.05), duration=60.0),
    )
    assert (display.idle, display.queue_limit, display.queue_bytes) == ("blank", 4, 8192)
    assert display.icons == (("door", (RED,) * 64),)
    plain = to_plain(config, set())["display"]
    assert [app["name"] for app in plain["apps"]] == ["clock", "temperature", "door"]
    assert plain["apps"][0]["duration"] == "6s" and plain["queue_bytes"] == "8KiB"


def test_an_icon_file_is_read_relative_to_the_config_file(tmp_path):
    folder = tmp_path / "icons"
    folder.mkdir()
    picture = [[(i * 4) % 256, 0, 0] for i in range(64)]
    try:
        from PIL import Image
    except ImportError:
        pytest.skip("no Pillow to write a PNG with")
    image = Image.new("RGB", (8, 8))
    image.putdata([tuple(colour) for colour in picture])
    image.save(folder / "door.png")
    config = load_config(write(tmp_path, "display: {icons: {door: icons/door.png}}\n"))
    assert config.display.icons == (("door", tuple(tuple(colour) for colour in picture)),)


def test_a_missing_icon_file_is_an_error_at_its_key(tmp_path):
    [error] = errors(tmp_path, "display:\n  icons:\n    door: nowhere/door.png\n")
    assert error.startswith("6:11: error: display.icons.door: ")
    assert "nowhere/door.png" in error


@pytest.mark.parametrize("text, expected", [
    ("display: {apps: [{name: a, text: hi}, {name: a, clock: '%H'}]}\n",
     "4:46: error: display.apps[1].name: another app is named 'a' (line 4)"),
    ("display: {apps: [{name: a}]}\n", "4:18: error: display.apps[0]: an app shows something: give text, clock, icon or pixels"),
    ("display: {apps: [{name: a, text: hi, clock: '%H'}]}\n", "4:38: error: display.apps[0].clock: give text or clock, not both"),
    ("display: {apps: [{name: a, icon: hart}]}\n", "error: display.apps[0].icon: no icon is named 'hart'"),
    ("display: {apps: [{name: a, text: hi, duration: soon}]}\n", "error: display.apps[0].duration: expected a duration"),
    ("display: {idle: sleep}\n", "error: display.idle:"),
    ("display: {queue_limit: 0}\n", "error: display.queue_limit:"),
    ("display: {apps: [{name: a, text: hi, text_colour: red}]}\n", "error: display.apps[0].text_colour:"),
    ("display: {icons: {door: [[1, 2, 3]]}}\n", "error: display.icons.door: an icon is a PNG file name or a list of 64 colours"),
    ("display: {apps: [{name: 'a b', text: hi}]}\n", "error: display.apps[0].name: an app name is 1 to 64 letters"),
    ("display: {aps: []}\n", "unknown key 'aps'; did you mean 'apps'?"),
    ("subscriptions:\n  - {subject: a.b, action: notify, args: {icon: hart}}\n",
     "error: subscriptions[0].args.icon: no icon is named 'hart'"),
    ("subscriptions:\n  - {subject: a.b, action: notify, args: {priority: 11}}\n",
     "error: subscriptions[0].args.priority: must be an integer 0..9, got 11"),
])
def test_display_mistakes_name_the_line_and_key(tmp_path, text, expected):
    found = errors(tmp_path, text)
    assert any(expected in error for error in found), found


def test_more_apps_than_the_limit_are_refused(tmp_path):
    apps = "".join(f"    - {{name: a{index}, text: hi}}\n" for index in range(33))
    [error] = errors(tmp_path, "display:\n  apps:\n" + apps)
    assert "display.apps" in error


def test_display_action_args_are_checked_and_normalised(tmp_path):
    config = load_config(write(tmp_path, f"""\
        display: {{icons: {{door: {REDS}}}}}
        subscriptions:
          - {{subject: a.b, action: notify, args: {{icon: door, priority: 8, text_colour: "#ff0000"}}}}
        """))
    assert dict(config.subscriptions[0].args) == {"icon": "door", "priority": 8, "text_colour": RED}


BOOTSTRAP = """\
version: 1
fleet: {key: pis}
device: {id: pi7, driver: memory}
nats: {servers: [nats://127.0.0.1:4222]}
"""


def test_a_stored_config_may_hold_a_display_block_with_colour_icons(tmp_path):
    path = tmp_path / "bridge.yml"
    path.write_text(BOOTSTRAP)
    bootstrap = load_config(path)
    stored = f"version: 1\ndisplay:\n  apps: [{{name: door, icon: door}}]\n  icons: {{door: {REDS}}}\n"
    config = load_stored(stored, bootstrap, "kv:bridge_config/pis@1")
    assert config.display.apps[0].content.icon == (RED,) * 64


def test_a_stored_config_may_not_read_icon_files(tmp_path):
    path = tmp_path / "bridge.yml"
    path.write_text(BOOTSTRAP)
    bootstrap = load_config(path)
    with pytest.raises(ConfigError) as caught:
        load_stored("version: 1\ndisplay:\n  icons: {door: /etc/passwd}\n", bootstrap, "kv:bridge_config/pis@1")
    [error] = [str(issue) for issue in caught.value.errors]
    assert error.startswith("kv:bridge_config/pis@1:3:")
    assert "display.icons.door: a stored config is data shared by the fleet and may not read a Pi's files" in error


def test_a_bootstrap_file_takes_display_from_the_stored_config(tmp_path):
    path = tmp_path / "bridge.yml"
    path.write_text(BOOTSTRAP + "display: {idle: blank}\n")
    with pytest.raises(ConfigError, match="takes display from the stored config"):
        load_config(path)
