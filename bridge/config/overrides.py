"""`--set KEY=VALUE`: change one value of the file before substitution and validation.

KEY is a dotted path (`vars.room`, `nats.servers`, `subscriptions.0.queue` or `subscriptions[0].queue`);
VALUE is read as YAML (`90` is a number, `[a, b]` a list). A plain text value for a key that holds
a list is split at commas, so `--set nats.servers=nats://a:4222,nats://b:4222` works.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

from bridge.config.document import Document, Path, Position, parse_value
from bridge.config.errors import ConfigIssue, format_path

OVERRIDE_FILE = "--set"
_KEY = re.compile(r"[^.\[\]=]+(?:\.[^.\[\]=]+|\[\d+\])*")
_KEY_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


class OverrideSyntaxError(ValueError):
    pass


def split_override(text: str) -> tuple[Path, str]:
    """'a.b[0].c=v' -> (('a', 'b', 0, 'c'), 'v'); dotted digits stay text until a list is met."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise OverrideSyntaxError(f"expected KEY=VALUE, got {text!r}")
    if not _KEY.fullmatch(key):
        raise OverrideSyntaxError(f"bad key {key!r}: use dotted names like nats.servers or subscriptions[0].queue")
    parts = tuple(name if index == "" else int(index) for name, index in _KEY_PART.findall(key))
    return parts, value


def apply_overrides(document: Document, overrides: Sequence[str]) -> list[ConfigIssue]:
    issues = []
    for number, text in enumerate(overrides, start=1):
        key_position = Position(OVERRIDE_FILE, number, 1)
        try:
            path, raw = split_override(text)
        except OverrideSyntaxError as error:
            issues.append(key_position.issue((), str(error)))
            continue
        value_position = Position(OVERRIDE_FILE, number, text.index("=") + 2)
        problem = _set(document, path, raw, key_position, value_position)
        if problem:
            issues.append(key_position.issue(path, problem))
    return issues


def _set(document: Document, path: Path, raw: str, key_position: Position, value_position: Position) -> str | None:
    container = document.data
    resolved: list[Any] = []
    for depth, part in enumerate(path):
        last = depth == len(path) - 1
        if isinstance(container, list):
            index = int(part) if isinstance(part, int) or str(part).isdigit() else None
            if index is None or index >= len(container):
                count = len(container)
                return f"{format_path(tuple(resolved))} has {count} entr{'y' if count == 1 else 'ies'}, no [{part}]"
            part = index
        elif isinstance(container, dict):
            part = str(part)
            if not last and not isinstance(container.get(part), (dict, list)):
                container[part] = {}
        else:
            return f"{format_path(tuple(resolved))} is not a mapping or list, cannot set {part!r} in it"
        resolved.append(part)
        if not last:
            container = container[part]
    key = resolved[-1]
    value = parse_value(raw)
    existing = container[key] if isinstance(container, list) or key in container else None
    if isinstance(existing, list) and isinstance(value, str):
        value = [item.strip() for item in value.split(",") if item.strip()]
    container[key] = value
    full_path = tuple(resolved)
    document.forget(full_path)
    document.values[full_path] = value_position
    document.keys[full_path] = key_position
    return None
