"""`--set KEY=VALUE`: change one value of the file before substitution and validation.

KEY is a dotted path (`vars.room`, `nats.servers`, `subscriptions.0.queue` or `subscriptions[0].queue`);
VALUE is read as the schema's type for KEY says: text as written for a text key (and every `vars`
entry: `010` stays `010`); a number or `true`/`false` only when written exactly so (anything else
stays text, for the schema to report); `[a, b]` for a list, where a list of text may also be
written `a,b`, so `--set nats.servers=nats://a:4222,nats://b:4222` works. Subscription args, which
the schema leaves to the action, are read as YAML when the action takes that, else as text.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

from bridge.actions import check_defaults
from bridge.config.document import Document, Path, Position, parse_value
from bridge.config.errors import ConfigIssue, format_path
from bridge.config.schema import schema_at, value_types

OVERRIDE_FILE = "--set"
_KEY = re.compile(r"[^.\[\]=]+(?:\.[^.\[\]=]+|\[\d+\])*")
_KEY_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
_INTEGER = re.compile(r"[-+]?[0-9]+")
_NUMBER = re.compile(r"[-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?")


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
    full_path = tuple(resolved)
    container[resolved[-1]] = override_value(document, full_path, raw)
    document.forget(full_path)
    document.values[full_path] = value_position
    document.keys[full_path] = key_position
    return None


def override_value(document: Document, path: Path, raw: str) -> Any:
    """`raw` as the value the schema wants at `path`; what does not fit stays text, for the schema to report."""
    if len(path) == 2 and path[0] == "vars":
        return raw
    schema = schema_at(path)
    if schema is None:
        return _args_value(document, path, raw) if path[:1] == ("subscriptions",) else parse_value(raw)
    kinds = value_types(schema)
    if "array" in kinds:
        value = parse_value(raw)
        items = schema_at(path + (0,))
        if isinstance(value, str) and items is not None and value_types(items) == {"string"}:
            return [item.strip() for item in raw.split(",") if item.strip()]
        return value
    if "object" in kinds:
        return parse_value(raw)
    text = raw.strip()
    if "integer" in kinds and _INTEGER.fullmatch(text):
        return int(text)
    if "number" in kinds and _NUMBER.fullmatch(text):
        return int(text) if _INTEGER.fullmatch(text) else float(text)
    if "boolean" in kinds and text in ("true", "false"):
        return text == "true"
    if "null" in kinds and text == "null":
        return None
    return raw


def _args_value(document: Document, path: Path, raw: str) -> Any:
    """A subscription arg: YAML (`[1, 2, 3]`, `0.05`) when the action takes that, else the text as written."""
    value = parse_value(raw)
    action = document.get(path[:2] + ("action",))
    if len(path) != 4 or path[2] != "args" or not isinstance(action, str) or isinstance(value, str):
        return value
    if check_defaults(action, {path[3]: value}) and not check_defaults(action, {path[3]: raw}):
        return raw
    return value
