"""Runtime apps kept across a restart: content round-trips exactly, a bad file costs no start."""

from __future__ import annotations

import os
import stat

import pytest
from twisted.logger import globalLogPublisher

from bridge.display.model import App, Content, DrawOp
from bridge.display.store import FILE_NAME, AppStore

PICTURE = tuple((index, 255 - index, index % 7) for index in range(64))


@pytest.fixture
def warnings():
    lines = []

    def observe(event):
        if event.get("log_namespace") == "bridge.display.store":
            lines.append(event["log_format"].format(**event))

    globalLogPublisher.addObserver(observe)
    yield lines
    globalLogPublisher.removeObserver(observe)


def test_apps_round_trip_with_every_field(tmp_path):
    apps = [
        App("weather", Content(text="{temperature:.0f}°", icon=PICTURE, pixels=PICTURE,
                               draw=(DrawOp("line", (0, 0, 7, 7), (9, 8, 7)), DrawOp("text", (1, 2, "hi"))),
                               text_colour=(1, 2, 3), back_colour=(4, 5, 6), scroll_speed=0.05, progress=42,
                               progress_colour=(7, 8, 9), progress_back_colour=(10, 11, 12)),
            duration=3.5, lifetime=60.0, lifetime_mode="stale", persistent=True),
        App("clock", Content(), clock="%H:%M", persistent=True),
    ]
    store = AppStore(tmp_path)
    store.save(apps)
    assert AppStore(tmp_path).load() == apps
    assert stat.S_IMODE(os.stat(tmp_path / FILE_NAME).st_mode) == 0o600


def test_no_file_yet_is_no_apps_and_no_warning(tmp_path, warnings):
    assert AppStore(tmp_path / "missing").load() == []
    assert warnings == []


@pytest.mark.parametrize("data", [
    b"\x89PNG\r\n\x1a\n\x00\xff garbage",
    b'{"apps": [{"name": "x"}]}',
    b'{"apps": [{"name": "x", "content": {"pixels": [[1, 2, 3]]}}]}',
    b"[1, 2]",
    b"",
])
def test_a_corrupt_file_is_one_warning_and_no_apps(tmp_path, warnings, data):
    (tmp_path / FILE_NAME).write_bytes(data)
    assert AppStore(tmp_path).load() == []
    assert len(warnings) == 1 and "\n" not in warnings[0]
    assert warnings[0].startswith(f"display: runtime apps not restored, {tmp_path / FILE_NAME} is not a saved app list")


def test_an_unreadable_file_is_one_warning_and_no_apps(tmp_path, warnings):
    (tmp_path / FILE_NAME).mkdir()  # reading a directory fails even as root
    assert AppStore(tmp_path).load() == []
    assert len(warnings) == 1 and "cannot be read" in warnings[0]
