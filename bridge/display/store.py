"""The runtime apps (set by the `app` action) kept in the state directory, so a restart keeps them.

One JSON file, written the power-cut-safe way (`bridge.state.write_private_file`). A file that
cannot be read or makes no sense costs one warning line and no apps, never the bridge's start.
Both methods block on the file: the display calls them on its worker's thread.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from twisted.logger import Logger

from bridge.display.model import App, Content, DrawOp
from bridge.state import write_private_file

log = Logger(namespace="bridge.display.store")

FILE_NAME = "display-apps.json"
_COLOUR_FIELDS = ("text_colour", "back_colour", "progress_colour", "progress_back_colour")


class AppStore:
    def __init__(self, directory: Path):
        self.path = Path(directory) / FILE_NAME

    def load(self) -> list[App]:
        """The apps saved last; none when there is no file yet or it is unreadable (one warning)."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        except OSError as error:
            log.warn("display: runtime apps not restored, {path} cannot be read: {why}", path=str(self.path),
                     why=error.strerror or error)
            return []
        try:
            return [_app(entry) for entry in json.loads(data)["apps"]]
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            log.warn("display: runtime apps not restored, {path} is not a saved app list ({why})",
                     path=str(self.path), why=f"{type(error).__name__}: {error}")
            return []

    def save(self, apps: list[App]) -> None:
        """Replace the file with these apps. Raises OSError."""
        document = {"apps": [asdict(app) for app in apps]}
        write_private_file(self.path, json.dumps(document, ensure_ascii=False).encode())


def _colour(value: Any) -> tuple[int, int, int]:
    red, green, blue = value
    return (int(red), int(green), int(blue))


def _picture(value: Any) -> tuple | None:
    if value is None:
        return None
    picture = tuple(_colour(colour) for colour in value)
    if len(picture) != 64:
        raise ValueError(f"a picture has 64 colours, not {len(picture)}")
    return picture


def _content(entry: dict) -> Content:
    fields = dict(entry)
    for name in _COLOUR_FIELDS:
        if name in fields:
            fields[name] = _colour(fields[name])
    fields["icon"] = _picture(fields.get("icon"))
    fields["pixels"] = _picture(fields.get("pixels"))
    fields["draw"] = tuple(DrawOp(op["kind"], tuple(op["values"]), _colour(op["colour"]))
                           for op in fields.get("draw", ()))
    return Content(**fields)


def _app(entry: dict) -> App:
    fields = dict(entry)
    fields["content"] = _content(fields["content"])
    return App(**fields)
