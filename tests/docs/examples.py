"""What the docs' tests share: the site's hooks (which generate the reference pages), and a YAML
example loaded as the Pi it was written for would load it."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

from PIL import Image

FILE_SUBSTITUTION = re.compile(r"\$\{file:([^}]+)\}")
ENV_SUBSTITUTION = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)")
PNG_FILE = re.compile(r"\b([\w/-]+\.png)\b")
NAMED_FILE = re.compile(r"\b\w+_file: ([\w./-]+)")
REPO = Path(__file__).resolve().parents[2]
MINIMAL = {"version": 1, "device": {"id": "example", "driver": "memory"}, "nats": {"servers": ["nats://127.0.0.1:4222"]}}


def as_on_its_pi(text: str, folder: Path, monkeypatch) -> str:
    """The example with the files and environment variables it names provided in `folder`."""
    for name in ENV_SUBSTITUTION.findall(text):
        monkeypatch.setenv(name, "example")
    for index, path in enumerate(dict.fromkeys(FILE_SUBSTITUTION.findall(text))):
        given = folder / f"file-{index}"
        given.write_text("example\n")
        text = text.replace(f"${{file:{path}}}", f"${{file:{given}}}")
    for relative in NAMED_FILE.findall(text):
        if not relative.startswith("/"):
            (folder / relative).write_text("")
    for relative in PNG_FILE.findall(text):
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 8), (255, 160, 0)).save(folder / relative)
    return text


def load_docs_hooks() -> ModuleType:
    """docs/hooks.py, which mkdocs loads by path: it is no package's module."""
    spec = importlib.util.spec_from_file_location("docs_hooks", REPO / "docs" / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
