"""The package's import graph: no module of bridge/ imports itself back through others, and the
core client never imports JetStream (arrows point down).

Read from the source with `ast`, function-level imports included, so a lazy import cannot hide a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import bridge

PACKAGE_ROOT = Path(bridge.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_modules() -> dict[str, Path]:
    return {module_name(path): path for path in PACKAGE_ROOT.rglob("*.py")}


def imported_modules(source: str, this: str, is_package: bool, modules) -> set[str]:
    """The bridge.* modules the module `this` imports anywhere in `source`; `from package import
    name` counts as importing the submodule `package.name` when there is one, else the package."""
    package = this if is_package else this.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in modules)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                if submodule in modules:
                    found.add(submodule)
                elif base in modules:
                    found.add(base)
    found.discard(this)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = all_modules()
    return {name: imported_modules(path.read_text(encoding="utf-8"), name, path.name == "__init__.py", modules)
            for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of `graph` as [a, b, ..., a], or None."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                return stack[stack.index(target):] + [target]
            if target not in state:
                cycle = visit(target)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_the_finder_sees_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_graph_sees_function_level_and_relative_imports():
    source = "def later():\n    from bridge.nats.jetstream import kv\n\nfrom . import api\nimport bridge.names\n"
    modules = {"bridge.names", "bridge.nats.jetstream", "bridge.nats.jetstream.kv", "bridge.nats.jetstream.api",
               "bridge.nats.jetstream.streams"}
    found = imported_modules(source, "bridge.nats.jetstream.streams", False, modules)
    assert found == {"bridge.nats.jetstream.kv", "bridge.nats.jetstream.api", "bridge.names"}


def test_no_module_of_bridge_imports_itself_back():
    assert find_cycle(import_graph()) is None


def test_the_core_client_never_imports_jetstream():
    graph = import_graph()
    core = [name for name in graph if name.startswith("bridge.nats.") and not name.startswith("bridge.nats.jetstream")]
    assert core
    for name in core:
        assert not {target for target in graph[name] if target.startswith("bridge.nats.jetstream")}, name


def test_the_jetstream_modules_share_the_api_module_not_each_other():
    graph = import_graph()
    assert "bridge.nats.jetstream.kv" not in graph["bridge.nats.jetstream.streams"]
    assert "bridge.nats.jetstream.streams" not in graph["bridge.nats.jetstream.kv"]
    assert "bridge.nats.jetstream.api" in graph["bridge.nats.jetstream.streams"]
    assert "bridge.nats.jetstream.api" in graph["bridge.nats.jetstream.kv"]
