"""No test module imports another test module or conftest.py: what tests share lives in
tests/harness, so a test file can be moved, split or deleted without breaking another."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def is_test_module(dotted: str) -> bool:
    """`tests.e2e.test_srv` and `tests.conftest` are test modules; `tests.harness.fleet` is not."""
    parts = dotted.split(".")
    return parts[0] == "tests" and (parts[-1] == "conftest" or parts[-1].startswith("test_"))


def imported_modules(path: Path) -> list[str]:
    """Every module `path` imports, absolute and dotted; a relative import resolved against its package."""
    package = ".".join(path.relative_to(TESTS.parent).with_suffix("").parts[:-1])
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            found.append(base)
            found += [f"{base}.{alias.name}" for alias in node.names]  # `from tests.e2e import test_srv`
    return found


def test_the_check_recognises_test_modules():
    assert is_test_module("tests.conftest")
    assert is_test_module("tests.e2e.test_srv")
    assert not is_test_module("tests.harness.fleet")
    assert not is_test_module("bridge.testing.outside")


def test_no_test_module_imports_another_test_module():
    offenders = [
        f"{path.relative_to(TESTS.parent)} imports {module}"
        for path in sorted(TESTS.rglob("*.py"))
        for module in imported_modules(path)
        if is_test_module(module)
    ]
    assert offenders == []
