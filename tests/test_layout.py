"""The package's shape: no module of bridge/ imports itself back through others, none reads another
object's private state, and the core client never imports JetStream (arrows point down).

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


# A private attribute of the sense_hat library that its public API does not offer: the framebuffer's
# device path (bridge/devices/hat.py, sensehat.py).
THIRD_PARTY_PRIVATE = {"_fb_device"}


def own_private_names(tree: ast.AST) -> set[str]:
    """The private attributes the classes of this module give their instances (`self._x = ...`)."""
    return {node.attr for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) and node.attr.startswith("_")
            and isinstance(node.value, ast.Name) and node.value.id == "self"}


def private_reach_ins(source: str) -> list[str]:
    """`something._name` on anything but `self`/`cls`: reached through another object (`self.queue._x`)
    always counts; on a plain name it counts unless `_name` is state this module's own classes keep
    (a class may compare itself with another instance of itself)."""
    tree = ast.parse(source)
    own = own_private_names(tree)
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")):
            continue
        if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
            continue
        if node.attr in THIRD_PARTY_PRIVATE:
            continue
        if isinstance(node.value, ast.Attribute) or node.attr not in own:
            found.append(f"line {node.lineno}: .{node.attr}")
    return found


def test_the_reach_in_finder_sees_another_modules_private_state():
    assert private_reach_ins("def f(client):\n    return client._reactor\n") == ["line 2: ._reactor"]
    assert private_reach_ins("def f(self):\n    self._queue._paused = True\n") == ["line 2: ._paused"]
    assert private_reach_ins("class W:\n    def __init__(self):\n        self._reactor = None\n"
                             "    def clock(self):\n        return self.js.client._reactor\n") == ["line 5: ._reactor"]
    assert private_reach_ins("class A:\n    def __init__(self):\n        self._x = 1\n"
                             "    def __eq__(self, other):\n        return self._x == other._x\n") == []
    assert private_reach_ins("def f(self):\n    return self._queue, cls._x, hat._fb_device\n") == []


def test_no_module_of_bridge_reads_another_modules_private_state():
    found = {name: reach_ins for name, path in all_modules().items()
             if (reach_ins := private_reach_ins(path.read_text(encoding="utf-8")))}
    assert found == {}
