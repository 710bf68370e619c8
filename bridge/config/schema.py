"""The JSON Schema (the editors' source of truth) and its errors turned into plain sentences.

`jsonschema` is imported only when a file is actually validated: `bridge --help` and the
runtime's imports should not pay for it.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path as FilePath
from typing import Any, Iterator

from bridge.config.document import Document, Path
from bridge.config.errors import ConfigIssue, did_you_mean
from bridge.config.redact import redact_url

SCHEMA_FILE = FilePath(__file__).with_name("bridge.schema.json")
# The stored form (a fleet key's value) as its own schema for editors, made from the main one by
# `stored_schema()`; tests check the shipped file is what it makes.
STORED_SCHEMA_FILE = FilePath(__file__).with_name("bridge-stored.schema.json")
STORED_KEYS = ("version", "vars", "subscriptions", "publications", "homeassistant")
SECRET_KEYS = ("password", "token")
SERVERS = ("nats", "servers")

_TYPE_NAMES = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "null": "null",
}


def schema_text() -> str:
    return SCHEMA_FILE.read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def _schema() -> dict:
    return json.loads(schema_text())


def stored_schema() -> dict:
    """The schema of a stored config: the main schema's `STORED_KEYS`, nothing else (device, nats
    and web come from each Pi's bootstrap file)."""
    main = _schema()
    return {
        "$schema": main["$schema"],
        "$id": "urn:nats-sense-bridge:stored-config:1",
        "title": "nats-sense-bridge stored configuration (a fleet key's value), version 1",
        "description": "What `bridge deploy` stores and every Pi with a matching `fleet:` block runs. "
                       "Substitutions such as ${device.id} resolve on each Pi.",
        "type": "object",
        "additionalProperties": False,
        "required": ["version"],
        "properties": {key: main["properties"][key] for key in STORED_KEYS},
        "$defs": main["$defs"],
    }


def stored_schema_text() -> str:
    return json.dumps(stored_schema(), indent=2, ensure_ascii=False) + "\n"


@lru_cache(maxsize=1)
def _validator() -> Any:
    # Loaded when a file is first checked: `bridge --help`, `bridge schema` and importing the
    # config package stay fast (tests/config/test_loader.py holds that).
    from jsonschema import Draft202012Validator

    return Draft202012Validator(_schema())


def _resolve(node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        node = _schema()["$defs"][node["$ref"].rsplit("/", 1)[-1]]
    return node


def schema_at(path: Path) -> dict | None:
    """The schema of the value at `path`, or None where the schema does not say (free-form args, unknown keys)."""
    node = _resolve(_schema())
    for part in path:
        if not isinstance(node, dict):
            return None
        if isinstance(part, int):
            node = node.get("items")
        elif part in node.get("properties", {}):
            node = node["properties"][part]
        else:
            node = node.get("additionalProperties")
        node = _resolve(node)
    return node if isinstance(node, dict) and node else None


def value_types(schema: dict) -> set[str]:
    """The JSON types a schema allows: from 'type', an enum's or const's values, and anyOf branches."""
    kinds: set[str] = set()
    declared = schema.get("type")
    if declared:
        kinds |= {declared} if isinstance(declared, str) else set(declared)
    for value in schema.get("enum", []) + ([schema["const"]] if "const" in schema else []):
        kinds.add(_json_type(value))
    for branch in schema.get("anyOf", []):
        kinds |= value_types(_resolve(branch))
    return kinds


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    return {float: "number", str: "string", list: "array", dict: "object"}.get(type(value), "null")


def schema_issues(document: Document, secret_paths: set[Path]) -> list[tuple[Path, ConfigIssue]]:
    """Every schema violation as (path, issue), pointing at the offending key or value."""
    found: list[tuple[Path, ConfigIssue]] = []
    for error in _validator().iter_errors(document.data):
        for path, issue in _explain(error, document, secret_paths):
            if all(issue != seen for _, seen in found):
                found.append((path, issue))
    return found


def describe(value: Any, path: Path = (), secret_paths: frozenset | set = frozenset()) -> str:
    """A value as it reads in YAML, for messages; secrets are never shown."""
    if is_secret(path, secret_paths):
        return "a secret value"
    if isinstance(value, str) and path[:2] == SERVERS:
        value = redact_url(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        text = repr(value)
        return f"a string {text}" if len(text) <= 60 else f"a string {text[:56]}...'"
    return f"{value!r}"


def is_secret(path: Path, secret_paths: frozenset | set) -> bool:
    """A value that is a secret as a whole: from ${file:...}, or a password or token."""
    return path in secret_paths or bool(path and path[-1] in SECRET_KEYS)


def _show(value: Any, path: Path = (), secret_paths: frozenset | set = frozenset()) -> str:
    if is_secret(path, secret_paths):
        return "a secret value"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and path[:2] == SERVERS:
        return repr(redact_url(value))
    return repr(value)


def _article(noun: str) -> str:
    return ("an " if noun[:1] in "aeiou" else "a ") + noun


def _explain(error: Any, document: Document, secrets: set[Path]) -> Iterator[tuple[Path, ConfigIssue]]:
    path: Path = tuple(error.absolute_path)
    schema = error.schema if isinstance(error.schema, dict) else {}
    keyword = error.validator
    instance = error.instance
    got = describe(instance, path, secrets)

    if "propertyNames" in error.absolute_schema_path:
        name_path = path + (instance,)
        message = schema.get("patternErrorMessage", f"bad name {instance!r}")
        yield name_path, document.issue(name_path, f"{message}, got {instance!r}", key=True)
    elif keyword == "additionalProperties":
        allowed = list(schema.get("properties", {}))
        for key in instance:
            if key not in allowed:
                hint = did_you_mean(key, allowed) or f"; expected one of: {', '.join(allowed)}"
                key_path = path + (key,)
                yield key_path, document.issue(key_path, f"unknown key {key!r}{hint}", key=True)
    elif keyword == "required":
        for key in error.validator_value:
            if isinstance(instance, dict) and key not in instance:
                key_path = path + (key,)
                yield key_path, document.issue(key_path, f"missing required key {key!r}", key=True)
    elif keyword == "dependentRequired":
        for key, needs in error.validator_value.items():
            if isinstance(instance, dict) and key in instance:
                for other in needs:
                    if other not in instance:
                        key_path = path + (key,)
                        yield key_path, document.issue(key_path, f"{key!r} needs {other!r} as well", key=True)
    elif keyword == "enum":
        noun = schema.get("title", "allowed value")
        choices = error.validator_value
        words = [choice for choice in choices if isinstance(choice, str)]
        hint = did_you_mean(instance, words) if isinstance(instance, str) and words else ""
        hint = hint or f"; expected one of: {', '.join(_show(choice) for choice in choices)}"
        yield path, document.issue(path, f"{_show(instance, path, secrets)} is not {_article(noun)}{hint}")
    elif keyword == "uniqueItems":
        seen: list[Any] = []
        for index, item in enumerate(instance):
            if item in seen:
                first = seen.index(item)
                item_path = path + (index,)
                yield item_path, document.issue(item_path, f"duplicate of entry {first} ({_show(item, item_path, secrets)})")
            seen.append(item)
    elif keyword == "pattern" and "patternErrorMessage" in schema:
        yield path, document.issue(path, f"{schema['patternErrorMessage']}, got {got}")
    elif "errorMessage" in schema:
        yield path, document.issue(path, f"{schema['errorMessage']}, got {got}")
    elif keyword == "type":
        expected = error.validator_value
        names = [expected] if isinstance(expected, str) else list(expected)
        wanted = " or ".join(_TYPE_NAMES.get(name, name) for name in names)
        yield path, document.issue(path, f"expected {wanted}, got {got}")
    elif keyword in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        relation = {
            "minimum": "at least",
            "exclusiveMinimum": "more than",
            "maximum": "at most",
            "exclusiveMaximum": "less than",
        }[keyword]
        yield path, document.issue(path, f"must be {relation} {error.validator_value}, got {got}")
    elif keyword == "minLength":
        yield path, document.issue(path, "must not be empty")
    elif keyword == "maxItems":
        yield path, document.issue(path, f"at most {error.validator_value} entries, got {len(instance)}")
    elif keyword == "minItems":
        yield path, document.issue(path, f"needs at least {error.validator_value} entries")
    else:
        yield path, document.issue(path, f"{got} is not valid here ({keyword} {error.validator_value!r})")
