"""The reference pages' tables, generated from what the bridge itself reads, so they cannot go stale.

A page holds a line `<!-- generated: NAME -->` where a table belongs; `mkdocs build` (the `hooks:`
setting of mkdocs.yml) puts the text of GENERATORS[NAME] there. The sources: the JSON Schemas in
schemas/ (every config key), `bridge.cli.main.build_parser()` and `bridge.cli.exit` (every command,
option and exit status), and `bridge.actions` (every action's payload keys). On GitHub the marker
is an invisible comment and the page says where the table comes from.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any, Callable, Iterator, NamedTuple

import yaml

REPO = Path(__file__).resolve().parents[1]
MARKER = re.compile(r"^<!-- generated: ([\w-]+) -->$", re.M)
LIMITS = ("minimum", "maximum", "exclusiveMinimum", "minLength", "maxLength", "minItems", "maxItems", "pattern")


# --- config keys, from the JSON Schema -------------------------------------------------------------

def load_schema(name: str = "bridge.schema.json") -> dict:
    return json.loads((REPO / "schemas" / name).read_text(encoding="utf-8"))


class Key(NamedTuple):
    path: tuple[str, ...]  # "[]" stands for an item of a list
    node: dict  # the key's schema, its $ref resolved
    parents: tuple[dict, ...]  # the schemas of the objects on the way to it, outermost first

    @property
    def name(self) -> str:
        return ".".join(self.path).replace(".[]", "[]")


def resolve(node: dict, schema: dict) -> dict:
    """The node with its `$ref` merged under its own keywords (as a description next to a $ref wins)."""
    if "$ref" not in node:
        return node
    target = schema["$defs"][node["$ref"].rsplit("/", 1)[1]]
    return {**resolve(target, schema), **{k: v for k, v in node.items() if k != "$ref"}}


def keys(schema: dict) -> Iterator[Key]:
    """Every key a config file may hold, depth first, in the schema's order."""
    def walk(node: dict, path: tuple[str, ...], parents: tuple[dict, ...]) -> Iterator[Key]:
        for name, child in node.get("properties", {}).items():
            child = resolve(child, schema)
            items = resolve(child.get("items", {}), schema)
            if child.get("type") == "array" and "properties" in items:
                yield Key((*path, name), child, parents + (node,))
                yield from walk(items, (*path, name, "[]"), parents + (node, items))
            elif "properties" in child:
                yield Key((*path, name), child, parents + (node,))
                yield from walk(child, (*path, name), parents + (node,))
            else:
                yield Key((*path, name), child, parents + (node,))
    yield from walk(schema, (), ())


def is_section(key: Key) -> bool:
    """An object or a list of objects: its keys are listed one by one instead."""
    return "properties" in key.node or "properties" in resolve(key.node.get("items", {}), load_schema())


def type_text(node: dict) -> str:
    node = resolve(node, load_schema())
    if "enum" in node:
        return "one of " + ", ".join(f"`{json.dumps(value)}`" for value in node["enum"])
    if "const" in node:
        return f"`{json.dumps(node['const'])}`"
    if "anyOf" in node:
        title = node.get("title")
        return f"[{title}](#values)" if title else " or ".join(type_text(option) for option in node["anyOf"])
    kind = node.get("type", "any")
    kinds = kind if isinstance(kind, list) else [kind]
    text = " or ".join(kinds)
    if "array" in kinds and "prefixItems" in node:
        text = "[" + ", ".join(type_text(item) for item in node["prefixItems"]) + "]"
    elif "array" in kinds and "items" in node:
        text = f"list of {type_text(node['items'])}"
    return text


def limits_text(node: dict) -> str:
    found = [f"{name} `{node[name]}`" for name in LIMITS if name in node]
    if "title" not in node:  # a titled unit (duration, size) is explained once, under Values
        for option in node.get("anyOf", []):
            found += [f"{name} `{option[name]}`" for name in LIMITS if name in option]
    if "items" in node:
        found += [f"each: {text}" for text in [limits_text(node["items"])] if text]
    if node.get("uniqueItems"):
        found.append("no duplicates")
    return "; ".join(found)


def example_value(node: dict) -> Any:
    """What the reference shows for a key: the schema's own example, else its default or first choice."""
    if "const" in node:
        return node["const"]
    if node.get("default") is not None and "anyOf" in node:  # its examples are the unit's, not the key's
        return node["default"]
    if node.get("examples"):
        return node["examples"][0]
    if node.get("default") is not None:
        return node["default"]
    for choices in ("enum", "anyOf"):
        if node.get(choices):
            return example_value(node[choices][0]) if choices == "anyOf" else node[choices][0]
    kind = node.get("type")
    kind = kind[0] if isinstance(kind, list) else kind
    if kind == "integer":
        return max(node.get("minimum", 1), 1)
    if kind == "number":
        return node.get("minimum", 0.5) or 0.5
    if kind == "boolean":
        return True
    if kind == "array":
        if "prefixItems" in node:
            return [example_value(item) for item in node["prefixItems"]]
        return [example_value(node.get("items", {}))] * max(node.get("minItems", 1), 1)
    if kind == "object":
        return {}
    return "example"


# What an example needs that the schema cannot say (checks across keys): the keys an object
# (a list item, a mapping) needs whichever of its keys is shown, and the siblings one key needs.
NEEDED_IN: dict[str, dict] = {
    "publications[]": {"interval": "10s"},  # the example sensor (temperature) is polled
    "publications[].filters[].clamp": {"min": -40, "max": 85},  # clamp needs min, max or both
    "display.apps[]": {"icon": "thermometer"},  # an app shows something
}
NEEDED_WITH: dict[str, dict] = {
    "publications[].heartbeat": {"change": 0.2},
    "subscriptions[].burst": {"rate": "20/s"},
    "fleet.public": {"vars": {"floor": "${env:FLOOR}"}},  # names one of fleet.vars
}

# Values for keys whose schema has only the examples of its unit (a duration: 250ms, ...).
EXAMPLES: dict[str, Any] = {
    "publications[].interval": "10s",
    "publications[].heartbeat": "5m",
    "publications[].filters[].calibrate_linear": [[10.0, 10.5], [30.0, 29.0]],  # measured increasing
    "display.apps[].icon": "thermometer",  # a built-in name
    "display.apps[].pixels": [[0, 0, 64]] * 64,
}


def companions(key: Key) -> dict:
    holder = key.name.rsplit(".", 1)[0] if len(key.path) > 1 else ""
    found = {**NEEDED_IN.get(holder, {}), **NEEDED_WITH.get(key.name, {})}
    found.pop(key.path[-1], None)
    return found


def required_siblings(key: Key) -> dict:
    """What an object needs besides this key, so the example is a valid config."""
    parent = key.parents[-1]
    needed = list(parent.get("required", ())) + list(parent.get("dependentRequired", {}).get(key.path[-1], ()))
    return {name: example_value(resolve(parent["properties"][name], load_schema()))
            for name in needed if name != key.path[-1]}


def example(key: Key) -> dict:
    """The key inside the smallest config fragment that holds it (each list shown with one item)."""
    siblings = {**required_siblings(key), **companions(key)} if len(key.path) > 1 else {}
    value: Any = {**siblings, key.path[-1]: EXAMPLES.get(key.name, example_value(key.node))}
    for depth in range(len(key.path) - 2, -1, -1):
        name = key.path[depth]
        if name == "[]":
            value = [value]
        else:
            holder = Key(key.path[:depth + 1], {}, key.parents[:depth + 1])
            siblings = {**required_siblings(holder), **companions(holder)} if depth else {}
            value = {**siblings, name: value}
    return value


class ExampleDumper(yaml.SafeDumper):
    """YAML as people write it: lists of plain values on one line (`[50, 100, 40]`), mappings in blocks."""


def _represent_list(dumper: yaml.SafeDumper, data: list) -> yaml.Node:
    flow = all(not isinstance(item, (dict, list)) for item in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


ExampleDumper.add_representer(list, _represent_list)


def example_yaml(value: Any) -> str:
    return yaml.dump(value, Dumper=ExampleDumper, sort_keys=False, allow_unicode=True, default_flow_style=False)


def stored_keys() -> set[str]:
    return set(load_schema("bridge-stored.schema.json")["properties"])


def config_reference() -> str:
    schema = load_schema()
    in_stored = stored_keys()
    parts = []
    for key in keys(schema):
        node = key.node
        level = "##" if len(key.path) == 1 else "###"
        parts.append(f"{level} `{key.name}`\n")
        if node.get("description"):
            parts.append(node["description"] + "\n")
        if is_section(key):
            continue
        facts = [f"- **Type**: {type_text(node)}"]
        if "default" in node:
            facts.append(f"- **Default**: `{json.dumps(node['default'])}`")
        if key.path[-1] in key.parents[-1].get("required", ()):
            facts.append("- **Required**")
        limits = limits_text(node)
        if limits:
            facts.append(f"- **Limits**: {limits}")
        if key.path[0] in in_stored:
            facts.append("- Also in a stored fleet config")
        parts.append("\n".join(facts) + "\n")
        parts.append("```yaml\n" + example_yaml(example(key)) + "```\n")
    return "\n".join(parts)


def config_examples() -> list[tuple[str, dict]]:
    """Every example the config reference shows, with the key it is for (the tests load each)."""
    return [(key.name, example(key)) for key in keys(load_schema()) if not is_section(key)]


# --- the command line ------------------------------------------------------------------------------

def commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def option_row(action: argparse.Action) -> str:
    name = ", ".join(f"`{option}`" for option in action.option_strings) or f"`{action.metavar or action.dest}`"
    if action.option_strings and action.nargs != 0:
        value = action.metavar or "{" + ",".join(map(str, action.choices or ())) + "}"
        name += f" `[{value}]`" if action.nargs == "?" else f" `{value}`"
    text = (action.help or "").replace("|", "\\|").replace("\n", " ")
    return f"| {name} | {text} |"


def cli_reference() -> str:
    from bridge.cli.exit import MEANING
    from bridge.cli.main import build_parser

    parts = ["| status | name | meaning |", "|---|---|---|"]
    parts += [f"| {status.value} | `{status.name}` | {meaning} |" for status, meaning in MEANING.items()]
    parts.append("")
    for name, command in commands(build_parser()).items():
        description, _, statuses = " ".join((command.description or "").split()).partition("Exit status: ")
        parts.append(f"## `bridge {name}`\n")
        parts.append("```text\n" + command.format_usage().removeprefix("usage: ").strip() + "\n```\n")
        parts.append(description.strip() + "\n")
        rows = [option_row(action) for action in command._actions if not isinstance(action, argparse._HelpAction)]
        parts.append("| argument | meaning |\n|---|---|\n" + "\n".join(rows) + "\n")
        if statuses:
            parts.append("Exit status:\n\n" + "\n".join(f"- {status}" for status in statuses.rstrip(".").split("; ")) + "\n")
        if command.epilog:
            parts.append("```sh\n" + "\n".join(line.strip() for line in command.epilog.splitlines()[1:]) + "\n```\n")
    return "\n".join(parts)


# --- actions ---------------------------------------------------------------------------------------

def actions_reference() -> str:
    from bridge import actions

    rows = ["| action | payload keys | when neither payload nor args give one | example payload |", "|---|---|---|---|"]
    for name, spec in actions._SPECS.items():
        payload_keys = ", ".join(f"`{key}`" for key in spec.keys) or "none"
        fallbacks = ", ".join(f"`{key}`: `{json.dumps(value)}`" for key, value in spec.fallbacks.items()) or ""
        example = spec.example.replace("|", "\\|")
        rows.append(f"| `{name}` | {payload_keys} | {fallbacks} | {example} |")
    return "\n".join(rows) + "\n"


GENERATORS: dict[str, Callable[[], str]] = {
    "config-keys": config_reference,
    "cli": cli_reference,
    "actions": actions_reference,
}


def expand(markdown: str) -> str:
    """The page with each generated table in place of its marker."""
    return MARKER.sub(lambda match: GENERATORS[match.group(1)](), markdown)


def on_page_markdown(markdown: str, page, config, files) -> str:
    return expand(markdown)
