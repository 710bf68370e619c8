"""YAML → plain data plus the file position of every node, with safe_load semantics only.

PyYAML's own constructors keep the last of duplicate keys and forget where values came from; we
compose the node graph ourselves so every error can name its line and column.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from bridge.config.errors import ConfigIssue, format_path

Path = tuple  # of str keys and int list indices

# Aliases can expand a small file into a huge tree ("billion laughs"); no real config comes close
# to either limit (a config nests about six levels).
MAX_NODES = 100_000
MAX_DEPTH = 64

_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_TEXT_TAGS = {f"tag:yaml.org,2002:{name}" for name in ("str", "int", "float", "bool")}
VARS = "vars"
EXPORTED_VARS = ("fleet", "vars")
_SURROGATE = re.compile("[\ud800-\udfff]")


class _Loader(_BaseLoader):  # type: ignore[misc, valid-type]
    """The safe loader minus timestamps: dates stay text, as in JSON (the schema speaks JSON)."""

    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != _TIMESTAMP]
        for first, resolvers in _BaseLoader.yaml_implicit_resolvers.items()
    }


@dataclass(frozen=True)
class Position:
    file: str
    line: int  # 1-based
    column: int  # 1-based
    exact_columns: bool = False  # True when columns inside the scalar text map 1:1 to the file

    def issue(self, path: Path, message: str) -> ConfigIssue:
        return ConfigIssue(self.file, self.line, self.column, format_path(path), message)

    def at_offset(self, offset: int) -> Position:
        """The position `offset` characters into this scalar's text, when that is knowable."""
        if not self.exact_columns:
            return self
        return Position(self.file, self.line, self.column + offset, True)


@dataclass
class Document:
    """Plain data (dict/list/str/int/float/bool/None) with where each part came from."""

    file: str
    data: Any
    values: dict[Path, Position] = field(default_factory=dict)  # where each value starts
    keys: dict[Path, Position] = field(default_factory=dict)  # where a mapping entry's key starts
    issues: list[tuple[Path, ConfigIssue]] = field(default_factory=list)  # problems that spare the rest

    def position(self, path: Path, *, key: bool = False) -> Position:
        """Where to point for `path`: its key or value, else the nearest ancestor that has one."""
        path = tuple(path)
        while True:
            table = (self.keys, self.values) if key else (self.values, self.keys)
            for positions in table:
                if path in positions:
                    return positions[path]
            if not path:
                return Position(self.file, 1, 1)
            path = path[:-1]

    def issue(self, path: Path, message: str, *, key: bool = False) -> ConfigIssue:
        return self.position(path, key=key).issue(path, message)

    def get(self, path: Path, default: Any = None) -> Any:
        """The value at `path`, or `default` when any step is missing or of the wrong kind."""
        value = self.data
        for part in path:
            if isinstance(part, int) and isinstance(value, list) and 0 <= part < len(value):
                value = value[part]
            elif isinstance(part, str) and isinstance(value, dict) and part in value:
                value = value[part]
            else:
                return default
        return value

    def forget(self, path: Path) -> None:
        """Drop the positions of `path` and everything under it (its value is being replaced)."""
        size = len(path)
        for table in (self.values, self.keys):
            for stale in [p for p in table if p[:size] == path]:
                del table[stale]


class YamlError(Exception):
    def __init__(self, issues: list[ConfigIssue]):
        self.issues = issues


def parse_document(text: str, file: str) -> Document:
    """Parse one YAML document; raises YamlError with positioned issues."""
    surrogate = _SURROGATE.search(text)
    if surrogate:
        line, column = text_position(text, surrogate.start())
        raise YamlError([ConfigIssue(file, line, column, "<yaml>", f"U+{ord(surrogate.group()):04X} is half of a "
                                     "UTF-16 pair, not a character: the text was decoded wrongly")])
    loader = _Loader(text)
    try:
        try:
            node = loader.get_single_node()
        except yaml.MarkedYAMLError as error:
            raise YamlError([_syntax_issue(error, text, file)]) from None
        except yaml.reader.ReaderError as error:
            raise YamlError([_reader_issue(error, text, file)]) from None
        except yaml.YAMLError as error:
            raise YamlError([ConfigIssue(file, 1, 1, "<yaml>", f"YAML syntax: {_sentence(error)}")]) from None
        except RecursionError:
            raise YamlError([ConfigIssue(file, 1, 1, "<yaml>", "nesting is too deep")]) from None
        if node is None:
            raise YamlError([ConfigIssue(file, 1, 1, "<root>", "the file is empty; expected a mapping with "
                                         "'version', 'nats', 'subscriptions' and 'publications'")])
        builder = _Builder(loader, file)
        data = builder.build(node, ())
        return Document(file, data, builder.values, builder.keys, builder.issues)
    finally:
        loader.dispose()


def parse_value(text: str) -> Any:
    """A --set value: YAML scalar or flow collection; text that isn't valid YAML stays text."""
    try:
        document = parse_document(text, "--set")
    except YamlError:
        return text
    return text if document.issues else document.data


def text_position(text: str, offset: int) -> tuple[int, int]:
    """(line, column), both from 1, of the character at `offset` in `text`."""
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def _reader_issue(error: yaml.reader.ReaderError, text: str, file: str) -> ConfigIssue:
    """A character YAML does not allow in a document (a control character, NUL): where it is."""
    character = chr(error.character) if isinstance(error.character, int) else None
    offset = text.find(character) if character is not None else -1
    if offset < 0:
        offset = error.position if isinstance(error.position, int) and 0 <= error.position <= len(text) else 0
    line, column = text_position(text, offset)
    what = f"the character U+{ord(character):04X}" if character is not None else "a character"
    return ConfigIssue(file, line, column, "<yaml>", f"{what} is not allowed in YAML text (control characters "
                                                     "and NUL are not; write it as an escape in double quotes)")


def _sentence(error: yaml.YAMLError) -> str:
    return " ".join(str(error).split()) or "invalid YAML"


def _unsupported(tag: str) -> str:
    shown = "!!" + tag[len("tag:yaml.org,2002:") :] if tag.startswith("tag:yaml.org,2002:") else tag
    return f"unsupported tag {shown!r}: a config holds plain data only (mappings, lists, text, numbers)"


def _syntax_issue(error: yaml.MarkedYAMLError, text: str, file: str) -> ConfigIssue:
    mark = error.problem_mark or error.context_mark
    line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    problem = error.problem or "invalid YAML"
    lines = text.splitlines()
    if mark and mark.line < len(lines) and "\t" in lines[mark.line][: mark.column + 1]:
        problem = "tab character: YAML indentation must use spaces"
    elif "another document" in problem:
        problem = "a config file holds one YAML document; remove the second '---' and what follows"
    elif error.context:
        started = error.context_mark
        where = f" that starts on line {started.line + 1}" if started and started.line != mark.line else ""
        problem = f"{problem} ({error.context}{where})"
        flow_lines = lines[started.line : mark.line + 1] if started and mark else []
        if "flow" in error.context and any("${" in line for line in flow_lines):
            problem += "; inside [...] or {...} write substitutions in quotes: '${name}'"
        elif "flow" in error.context:
            problem += "; inside [...] or {...} quote a value that holds ':', ',', '[' or '{': 'a: b'"
        elif "quoted scalar" in error.context:
            problem += "; a quote opened there is never closed"
        elif "could not find expected ':'" in problem:
            problem += "; each line of a mapping is 'key: value'"
    elif "mapping values are not allowed" in problem and mark:
        problem += "; " + _mapping_value_hint(lines, mark.line)
    return ConfigIssue(file, line, column, "<yaml>", f"YAML syntax: {problem}")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _mapping_value_hint(lines: list[str], index: int) -> str:
    """The two usual causes of YAML's "mapping values are not allowed here": a line indented deeper
    than its sibling above, or an unquoted value that itself holds ': '."""
    above = next((line for line in reversed(lines[:index]) if line.strip() and not line.lstrip().startswith("#")),
                 None)
    here = lines[index] if index < len(lines) else ""
    if above is not None and _indent(here) > _indent(above) and not above.rstrip().endswith(":"):
        return (f"this line is indented deeper than the line above ({_indent(here)} spaces, not "
                f"{_indent(above)}): keys of one mapping start in the same column")
    return "a value that holds ': ' must be quoted: 'a: b'"


class _Builder:
    def __init__(self, loader: Any, file: str):
        self.loader = loader
        self.file = file
        self.values: dict[Path, Position] = {}
        self.keys: dict[Path, Position] = {}
        self.issues: list[tuple[Path, ConfigIssue]] = []
        self.count = 0
        self.active: set[int] = set()  # nodes on the current branch, to catch recursive aliases

    def _position(self, mark: Any, exact: bool = False) -> Position:
        return Position(self.file, mark.line + 1, mark.column + 1, exact)

    def _fail(self, node: Any, path: Path, message: str) -> None:
        self.issues.append((path, self._position(node.start_mark).issue(path, message)))

    def build(self, node: Any, path: Path) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            if self.count == MAX_NODES + 1:
                self._fail(node, path, f"the document expands to more than {MAX_NODES} values (aliases?)")
            return None
        if id(node) in self.active:
            self._fail(node, path, "recursive alias")
            return None
        if len(path) > MAX_DEPTH:
            self._fail(node, path[:MAX_DEPTH], f"nested more than {MAX_DEPTH} levels deep")
            return None
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node, path)
        self.active.add(id(node))
        try:
            self.values[path] = self._position(node.start_mark)
            if isinstance(node, yaml.SequenceNode):
                if node.tag != _SEQ:
                    self._fail(node, path, _unsupported(node.tag))
                    return None
                return [self.build(item, path + (index,)) for index, item in enumerate(node.value)]
            return self._mapping(node, path)
        finally:
            self.active.discard(id(node))

    def _scalar(self, node: Any, path: Path) -> Any:
        style = node.style or None  # libyaml says '' for plain scalars, PyYAML None
        single_line = node.start_mark.line == node.end_mark.line
        exact = single_line and style in (None, "'", '"')
        start = self._position(node.start_mark, exact)
        if style in ("'", '"'):
            start = Position(start.file, start.line, start.column + 1, exact)
        self.values[path] = start
        is_var = (len(path) == 2 and path[0] == VARS) or (len(path) == 3 and path[:2] == EXPORTED_VARS)
        if is_var and node.tag in _TEXT_TAGS:
            return node.value  # a variable is the text as written: NO stays 'NO', 010 stays '010'
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError:
            self._fail(node, path, _unsupported(node.tag))
            return None
        except ValueError as error:  # e.g. an int too large for the string-conversion limit
            self._fail(node, path, f"bad value: {error}")
            return None

    def _mapping(self, node: Any, path: Path) -> Any:
        if node.tag != _MAP:
            self._fail(node, path, _unsupported(node.tag))
            return None
        seen: dict[str, Any] = {}
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                name = key_node.value
                if name in seen:
                    first = seen[name].start_mark.line + 1
                    self._fail(key_node, path + (name,), f"duplicate key {name!r} (first defined on line {first})")
                seen[name] = key_node
        try:
            self.loader.flatten_mapping(node)
        except yaml.MarkedYAMLError as error:
            self.issues.append((path, _syntax_issue(error, "", self.file)))
            return None
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                self._fail(key_node, path, "mapping keys must be plain names, not lists or mappings")
                continue
            name = key_node.value
            self.keys[path + (name,)] = self._position(key_node.start_mark)
            result[name] = self.build(value_node, path + (name,))
        return result
