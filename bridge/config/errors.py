"""How configuration problems are reported: one issue per line, pointing at the file position."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Iterable, Sequence

ROOT_PATH = "<root>"


@dataclass(frozen=True)
class ConfigIssue:
    file: str
    line: int
    column: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}" if self.line else self.file  # line 0: the file as a whole
        return f"{where}: error: {self.path}: {self.message}"

    def as_dict(self) -> dict:
        return {"file": self.file, "line": self.line, "column": self.column, "path": self.path, "message": self.message}


class ConfigError(Exception):
    """A configuration that cannot be used; `errors` holds every problem found, sorted by position."""

    def __init__(self, errors: Iterable[ConfigIssue]):
        self.errors: list[ConfigIssue] = list(errors)
        super().__init__("\n".join(str(issue) for issue in self.errors))


class ConfigFileError(ConfigError):
    """The file itself could not be read (missing, a directory, no permission): a usage problem, not content."""


def did_you_mean(word: str, choices: Sequence[str]) -> str:
    """The '; did you mean X?' tail for a misspelt name, or '' when nothing is close."""
    close = difflib.get_close_matches(word, [str(choice) for choice in choices], n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def format_path(path: Sequence[str | int]) -> str:
    """('subscriptions', 1, 'action') -> 'subscriptions[1].action'."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text or ROOT_PATH
