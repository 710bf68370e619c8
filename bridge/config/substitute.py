"""`${...}` substitutions: vars, ${device.id}, ${HOSTNAME}, ${env:NAME[:-default]}, ${file:PATH}.

Resolved on the parsed data before schema validation, so a bad value is reported where it was
written. Substitution produces text; where a number or true/false is needed, the loader reads
that text as YAML (so `rotation: ${rot}` and `rotation: "${env:ROT}"` both work). `$${` is a literal `${`.

A default may itself hold references (`${env:ROOM:-${room}}`); braces are matched in one pass
(`_closings`) and a default is expanded by the same code as any value, so one size limit
(MAX_EXPANDED_CHARS, checked as pieces are added) and one nesting limit hold for every combination.

A stored config (a fleet key's value, `StoredScope`) is data shared by the fleet: it may not read the
Pi running it, so `${env:...}` and `${file:...}` are errors there, `${HOSTNAME}` is the host name the
Pi's bootstrap saw, and the bootstrap's exported `fleet.vars` resolve (overriding the stored config's
own vars), except the secret ones.
"""

from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path as FilePath
from typing import Any, Mapping

from bridge.config.document import Document, Path, Position
from bridge.config.errors import ConfigIssue, did_you_mean
from bridge.config.limits import (
    MAX_EXPANDED_CHARS,
    MAX_FILE_BYTES,
    MAX_NESTING,
    NotRegular,
    TooLarge,
    format_limit,
    read_regular_file,
)

_OPEN = re.compile(r"\$\$\{|\$\{")
_MARK = re.compile(r"\$\$\{|\$\{|\}")
_VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ENV = re.compile(r"\s*env:([A-Za-z_][A-Za-z0-9_]*)(:-)?")
BUILTINS = ("HOSTNAME", "device.id", "env:NAME", "file:PATH")
STORED_BUILTINS = ("HOSTNAME", "device.id")
DEVICE_ID = ("device", "id")


def machine_hostname() -> str:
    """The short host name: subject tokens cannot contain dots, so 'pi1.local' becomes 'pi1'."""
    return socket.gethostname().split(".")[0]


@dataclass(frozen=True)
class StoredScope:
    """What a stored config may read of the Pi it runs on: nothing but what its bootstrap gives it."""

    hostname: str
    exported: Mapping[str, str] = field(default_factory=dict)  # the bootstrap's fleet.vars
    secret_names: frozenset[str] = frozenset()  # exported vars read from a file or the environment


@dataclass
class _Resolved:
    value: Any
    secret: bool = False  # came (partly) from ${file:...}
    device_id: bool = False  # used ${device.id}
    ok: bool = True
    private: tuple[str, ...] = ()  # the texts read from a file or the environment that went into it


class _Failed(Exception):
    """A reference that cannot be resolved; already reported."""


class Substitution:
    """Resolve every `${...}` in a document in place, collecting issues instead of stopping."""

    def __init__(self, document: Document, config_dir: FilePath, environ: Mapping[str, str] | None = None,
                 stored: StoredScope | None = None):
        self.document = document
        self.config_dir = config_dir
        self.environ = os.environ if environ is None else environ
        self.stored = stored
        self.hostname = stored.hostname if stored else machine_hostname()
        self.issues: list[ConfigIssue] = []
        self.secret_paths: set[Path] = set()  # values to mask in --print and error messages
        # path -> the texts read from a file or the environment that went into its value, and the value
        self.private: dict[Path, set[str]] = {}
        self.device_id_paths: set[Path] = set()  # values built from ${device.id}
        self.failed_paths: set[Path] = set()  # values left unresolved (errors already reported)
        self.substituted_paths: set[Path] = set()  # text built by substitution (may be read as YAML later)
        self._vars: dict[str, _Resolved] = {}
        self._resolving: list[str] = []
        self._depth = 0  # expansions in progress, for MAX_NESTING

    def run(self) -> None:
        data = self.document.data
        if not isinstance(data, dict):
            return
        device = data.setdefault("device", {})
        if isinstance(device, dict):
            device.setdefault("id", "${HOSTNAME}")
        variables = data.get("vars")
        if isinstance(variables, dict):
            for name in variables:
                self._var(name)
                self._store(("vars", name), self._vars[name])
        if isinstance(device, dict):
            self._store(DEVICE_ID, self._device_id())
        for key, value in data.items():
            if key != "vars":
                self._walk(value, (key,))

    # -- walking -------------------------------------------------------------------------------

    def _walk(self, value: Any, path: Path) -> None:
        if path == DEVICE_ID:
            return
        if isinstance(value, dict):
            for key, item in value.items():
                self._walk(item, path + (key,))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                self._walk(item, path + (index,))
        elif isinstance(value, str) and "${" in value:
            self._store(path, self._text(value, path))

    def _store(self, path: Path, resolved: _Resolved) -> None:
        if not resolved.ok:
            self.failed_paths.add(path)
            return
        self.substituted_paths.add(path)
        if resolved.secret:
            self.secret_paths.add(path)
        if resolved.private and path != DEVICE_ID:  # the device id is public by nature: it names the Pi
            texts = {*resolved.private, _as_text(resolved.value)}
            self.private[path] = {text for text in texts if text}
        if resolved.device_id:
            self.device_id_paths.add(path)
        parent = self.document.get(path[:-1])
        parent[path[-1]] = resolved.value

    # -- resolving ---------------------------------------------------------------------------------

    def _text(self, text: str, path: Path) -> _Resolved:
        position = self.document.position(path)
        try:
            return self._expand(text, 0, len(text), _closings(text), position, path)
        except _Failed:
            return _Resolved(text, ok=False)

    def _expand(self, text: str, start: int, end: int, closings: dict[int, int], position: Position,
                path: Path) -> _Resolved:
        """text[start:end] with every reference resolved; raises _Failed (reported) when any is not.

        A reference's default (`${env:NAME:-...}`) is expanded by the same function, so the size
        and nesting limits hold however the references are combined.
        """
        if self._depth >= MAX_NESTING:
            self._issue(position.at_offset(start), path, f"substitutions nest more than {MAX_NESTING} levels deep")
            raise _Failed
        self._depth += 1
        try:
            result = _Resolved("")
            pieces: list[str] = []
            size = 0
            failed = False
            index = start
            while True:
                match = _OPEN.search(text, index, end)
                if match is None:
                    piece = text[index:end]
                else:
                    piece = text[index : match.start()]
                    index = match.end()
                    if match.group(0) == "$${":
                        piece += "${"
                    elif match.start() not in closings or closings[match.start()] > end:
                        self._issue(position.at_offset(match.start()), path, "unterminated '${' (missing '}')")
                        failed = True
                    else:
                        close = closings[match.start()]
                        index = close + 1
                        try:
                            resolved = self._reference(text, match.end(), close, closings, position, path)
                        except _Failed:
                            failed = True
                        else:
                            result.secret |= resolved.secret
                            result.device_id |= resolved.device_id
                            result.private += resolved.private
                            piece += _as_text(resolved.value)
                pieces.append(piece)
                size += len(piece)
                if size > MAX_EXPANDED_CHARS:
                    self._issue(position.at_offset(start), path,
                                f"the value expands to more than {MAX_EXPANDED_CHARS} characters (the most one value may "
                                "hold after substitution); check for variables that repeat each other")
                    raise _Failed
                if match is None:
                    break
            if failed:
                raise _Failed
            result.value = "".join(pieces)
            return result
        finally:
            self._depth -= 1

    def _reference(self, text: str, start: int, end: int, closings: dict[int, int], position: Position,
                   path: Path) -> _Resolved:
        """The reference text[start:end] (between `${` and `}`); `position` is where the whole value starts."""
        name = text[start:end].strip()
        if name.startswith(("env:", "file:")) and self.stored:
            reference = name.split(":-", 1)[0]
            what = "environment" if name.startswith("env:") else "files"
            self._issue(position.at_offset(start - 2), path,
                        f"'${{{reference}}}': a stored config is data shared by the fleet and may not read a Pi's "
                        f"{what}; export what each Pi contributes from its bootstrap file (fleet: vars: {{NAME: ...}}) "
                        "and use it here as ${NAME}")
            raise _Failed
        if name.startswith("env:"):
            return self._env(text, start, end, closings, position, path)
        position = position.at_offset(start - 2)  # where this reference starts, for its messages
        if "${" in name:
            self._issue(position, path, f"'${{{name}}}': a substitution may appear only in an "
                                        "${env:NAME:-default} default, not inside another name")
            raise _Failed
        if name == "HOSTNAME":
            return _Resolved(self.hostname)
        if name == "device.id":
            resolved = self._device_id()
            if not resolved.ok:
                raise _Failed
            return _Resolved(resolved.value, resolved.secret, True)  # public by nature: it names the Pi
        if name.startswith("file:"):
            return self._file(name[len("file:") :], position, path)
        if self.stored and name in self.stored.exported:
            return self._exported(name, position, path)
        variables = self.document.get(("vars",))
        if _VAR_NAME.fullmatch(name) and isinstance(variables, dict) and name in variables:
            resolved = self._var(name)
            if not resolved.ok:
                raise _Failed
            return resolved
        choices = list(variables) if isinstance(variables, dict) else []
        if self.stored:
            choices += [exported for exported in self.stored.exported if exported not in choices]
        builtins = STORED_BUILTINS if self.stored else BUILTINS
        hint = did_you_mean(name, choices + list(builtins))
        if not hint:
            known = ", ".join(choices) if choices else "none defined"
            hint = f" (vars: {known}; built in: {', '.join(builtins)})"
        self._issue(position, path, f"undefined substitution '${{{name}}}'{hint}")
        raise _Failed

    def _env(self, text: str, start: int, end: int, closings: dict[int, int], position: Position,
             path: Path) -> _Resolved:
        match = _ENV.match(text, start, end)
        if not match or (match.group(2) is None and text[match.end() : end].strip()):
            name = text[start:end].strip()
            self._issue(position.at_offset(start - 2), path, f"bad substitution '${{{name}}}': use ${{env:NAME}} or ${{env:NAME:-default}}")
            raise _Failed
        variable = match.group(1)
        value = self.environ.get(variable, "")
        if value:
            return _Resolved(value, private=(value,))
        if match.group(2) is not None:
            # The default is expanded only when it is used, as in the shell.
            return self._expand(text, match.end(), end, closings, position, path)
        if variable in self.environ:
            return _Resolved("")
        self._issue(position.at_offset(start - 2), path, f"environment variable {variable} is not set "
                                    f"(give a default with ${{env:{variable}:-default}})")
        raise _Failed

    def _file(self, name: str, position: Position, path: Path) -> _Resolved:
        if not name:
            self._issue(position, path, "'${file:}' needs a path")
            raise _Failed
        target = self.config_dir / FilePath(name).expanduser()
        try:
            content = read_regular_file(target, MAX_FILE_BYTES).decode("utf-8")
        except FileNotFoundError:
            self._issue(position, path, f"${{file:{name}}}: no such file: {target}")
            raise _Failed from None
        except NotRegular as error:
            self._issue(position, path, f"${{file:{name}}}: {target} is {error.kind}; ${{file:...}} reads regular files "
                                        "only (write the value to a file)")
            raise _Failed from None
        except TooLarge:
            self._issue(position, path, f"${{file:{name}}}: {target} is larger than {format_limit(MAX_FILE_BYTES)}, "
                                        "the most ${file:...} reads (it is meant for secrets and short values)")
            raise _Failed from None
        except (OSError, UnicodeDecodeError) as error:
            reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
            self._issue(position, path, f"${{file:{name}}}: cannot read {target}: {reason}")
            raise _Failed from None
        content = content.rstrip("\r\n")
        return _Resolved(content, secret=True, private=(content,))

    def _exported(self, name: str, position: Position, path: Path) -> _Resolved:
        """A var the Pi's bootstrap exports; refused when it is a secret of the Pi."""
        if name in self.stored.secret_names:
            self._issue(position, path, f"'${{{name}}}' would publish a secret of this Pi: its bootstrap's "
                                        f"fleet.vars.{name} comes from ${{file:...}} or ${{env:...}}; export a plain "
                                        f"value, or list {name} in the bootstrap's fleet.public if anyone may see it")
            raise _Failed
        return _Resolved(self.stored.exported[name])

    def _var(self, name: str) -> _Resolved:
        if name in self._vars:
            return self._vars[name]
        path = ("vars", name)
        if name in self._resolving:
            cycle = " -> ".join(self._resolving[self._resolving.index(name) :] + [name])
            self._issue(self.document.position(path), path, f"substitution cycle: {cycle}")
            raise _Failed
        self._resolving.append(name)
        try:
            value = self.document.get(path)
            resolved = self._text(value, path) if isinstance(value, str) and "${" in value else _Resolved(value)
        except _Failed:
            resolved = _Resolved(self.document.get(path), ok=False)
        finally:
            self._resolving.pop()
        self._vars[name] = resolved
        return resolved

    def _device_id(self) -> _Resolved:
        if "device.id" in self._vars:
            return self._vars["device.id"]
        if "device.id" in self._resolving:
            self._issue(self.document.position(DEVICE_ID), DEVICE_ID, "device.id cannot refer to itself")
            raise _Failed
        value = self.document.get(DEVICE_ID)
        self._resolving.append("device.id")
        try:
            if isinstance(value, str) and "${" in value:
                resolved = self._text(value, DEVICE_ID)
            else:
                resolved = _Resolved(value)
        except _Failed:
            resolved = _Resolved(value, ok=False)
        finally:
            self._resolving.pop()
        self._vars["device.id"] = resolved
        return resolved

    def _issue(self, position: Position, path: Path, message: str) -> None:
        issue = position.issue(path, message)
        if issue not in self.issues:
            self.issues.append(issue)


def _closings(text: str) -> dict[int, int]:
    """Where each `${` starts -> where its `}` is, matching nested pairs; an unclosed `${` is absent."""
    closings: dict[int, int] = {}
    opened: list[int] = []
    for match in _MARK.finditer(text):
        token = match.group(0)
        if token == "${":
            opened.append(match.start())
        elif token == "}" and opened:
            closings[opened.pop()] = match.start()
    return closings


def _as_text(value: Any) -> str:
    """How a variable reads inside a longer string: YAML spellings, not Python's."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return ""
    return str(value)
