"""Every YAML example in the README and the docs site's pages is checked the way its marker says,
so an example a reader copies is one the bridge accepts. A block is marked by the HTML comment on
the line before it:

  <!-- example: file -->       a config a bridge runs (loaded like `bridge validate`)
  <!-- example: stored -->     a stored fleet config (checked as a Pi checks it)
  <!-- example: bootstrap -->  a Pi's fleet bootstrap file
  <!-- example: fragment -->   a few keys: added to a minimal file, then loaded like `file`
  <!-- example: publication -->, <!-- example: subscription -->
                               entries of that list: put under it in a minimal file, then loaded

A file the example reads (`${file:...}`, `tls: {ca_file: ...}`) and a variable of the environment
(`${env:...}`) it names are given to it, as the Pi it was written for has them.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from bridge.config import load_config
from bridge.config.loader import check_stored
from tests.docs.examples import MINIMAL, as_on_its_pi

REPO = Path(__file__).resolve().parents[2]
DOCUMENTS = [REPO / "README.md", REPO / "deploy" / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
KINDS = ("file", "stored", "bootstrap", "fragment", "publication", "subscription")
BLOCK = re.compile(r"^(?:<!-- example: (?P<kind>[\w-]+) -->\n)?```yaml\n(?P<text>.*?)^```", re.M | re.S)


def examples() -> list:
    found = []
    for document in DOCUMENTS:
        text = document.read_text(encoding="utf-8")
        for match in BLOCK.finditer(text):
            line = text.count("\n", 0, match.start("text")) + 1
            found.append(pytest.param(match.group("kind"), match.group("text"),
                                      id=f"{document.relative_to(REPO)}:{line}"))
    return found


@pytest.mark.parametrize("kind, text", examples())
def test_every_yaml_example_is_valid_as_marked(kind, text, tmp_path, monkeypatch):
    assert kind in KINDS, f"mark the block with <!-- example: KIND --> on the line before it, KIND one of {KINDS}"
    if kind == "stored":
        check_stored(text, "example")
        return
    monkeypatch.setenv("HOSTNAME", "example")
    text = as_on_its_pi(text, tmp_path, monkeypatch)
    if kind == "fragment":
        text = yaml.safe_dump(MINIMAL) + text
    elif kind in ("publication", "subscription"):
        text = yaml.safe_dump(MINIMAL) + f"{kind}s:\n" + text
    path = tmp_path / "config.yml"
    path.write_text(text, encoding="utf-8")
    config = load_config(path)
    assert (config.fleet is not None) == (kind == "bootstrap" or "\nfleet:" in text)


def test_the_examples_are_found():
    kinds = [param.values[0] for param in examples()]
    assert len(kinds) >= 5 and {"stored", "bootstrap"} <= set(kinds)
