"""Load and check a config in a short-lived child process, for the long-running `bridge run`.

Checking a config needs the YAML parser, jsonschema and the schema (~7 MiB); a child process
loads them, checks the file (or a fleet's stored revision) and exits, so they never stay resident
in the bridge. The request goes to the child's stdin and the answer comes back on its stdout, both
pickled (the child is our own): the typed `BridgeConfig`, or the `ConfigError`'s issues (raised
here again as the same class), or one sentence saying why the child could not check at all
(`ConfigCheckFailed`).

`check_config_at_start` (its `result()`) and `load_stored_at_start` block: for start-up, before the
reactor runs.
`load_config_isolated` and `load_stored_isolated` run the child on the reactor (SIGHUP, a new
fleet revision) and return a Deferred.
"""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
from typing import TYPE_CHECKING, Sequence

from bridge.config.errors import ConfigError, ConfigFileError

if TYPE_CHECKING:
    from twisted.internet.defer import Deferred

    from bridge.config.model import BridgeConfig


class ConfigCheckFailed(Exception):
    """The child could not check the config at all (it crashed, or could not be started); one sentence."""


class BadOverride(ValueError):
    """A `--set` that is not KEY=VALUE with a dotted key; the message says which."""


class CheckAtStart:
    """A checker started now and asked later: it imports the loader before it reads the request,
    so what the caller does in between (importing Twisted, say) runs alongside. `result()` blocks:
    for start-up, before the reactor runs."""

    def __init__(self, request: tuple):
        self.request = pickle.dumps(request)
        try:
            self.child = subprocess.Popen(child_command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE)
        except OSError as error:
            self.child = None
            self.unstarted = f"cannot start the config checker: {error.strerror or error}"

    def result(self) -> BridgeConfig:
        if self.child is None:
            raise ConfigCheckFailed(self.unstarted)
        stdout, stderr = self.child.communicate(self.request)
        status = self.child.returncode
        return outcome(stdout, stderr, status, -status if status < 0 else None)  # < 0: killed by that signal


def check_config_at_start(path: str, overrides: Sequence[str] = ()) -> CheckAtStart:
    """`load_config(path, overrides)` in a child, started now: its `result()` is the config."""
    return CheckAtStart(("file", os.fspath(path), list(overrides)))


def load_stored_at_start(text: str, bootstrap: BridgeConfig, source: str) -> BridgeConfig:
    """`load_stored(text, bootstrap, source)` in a child; blocks until it is done."""
    return CheckAtStart(("stored", text, bootstrap, source)).result()


def load_config_isolated(path: str, overrides: Sequence[str] = (), reactor=None) -> Deferred:
    """`load_config(path, overrides)` in a child run by the reactor: a Deferred of the `BridgeConfig`."""
    return _spawn_child(("file", os.fspath(path), list(overrides)), reactor)


def load_stored_isolated(text: str, bootstrap: BridgeConfig, source: str, reactor=None) -> Deferred:
    """`load_stored(text, bootstrap, source)` in a child run by the reactor: a Deferred of the `BridgeConfig`."""
    return _spawn_child(("stored", text, bootstrap, source), reactor)


def child_command() -> list[str]:
    # -P: a module in the working directory must not shadow one the checker imports (yaml, say);
    # the path insert finds this `bridge` package, installed or not.
    package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return [sys.executable, "-P", "-c",
            f"import sys; sys.path.insert(0, {package_root!r}); from bridge.config.isolated import main; main()"]


def _spawn_child(request: tuple, reactor) -> Deferred:
    from twisted.internet import defer
    from twisted.internet.utils import getProcessOutputAndValue

    executable, *arguments = child_command()
    try:
        running = getProcessOutputAndValue(executable, arguments, env=dict(os.environ), reactor=reactor,
                                           stdinBytes=pickle.dumps(request))
    except OSError as error:
        return defer.fail(ConfigCheckFailed(f"cannot start the config checker: {error.strerror or error}"))

    def killed(failure):
        if not isinstance(failure.value, tuple):
            return failure
        stdout, stderr, signum = failure.value  # how getProcessOutputAndValue reports a child killed by a signal
        return outcome(stdout, stderr, None, signum)

    return running.addCallbacks(lambda ended: outcome(*ended), killed)


def outcome(stdout: bytes, stderr: bytes, status: int | None, signum: int | None = None) -> BridgeConfig:
    """The child's answer: the config, or the exception it stands for."""
    try:
        kind, detail = pickle.loads(stdout)
    except Exception:
        if signum is not None:
            how = f"was killed by {signal.Signals(signum).name}"
        else:
            how = f"exited with status {status}"
        said = stderr.decode(errors="replace").strip().splitlines()
        raise ConfigCheckFailed(f"the config checker {how} without an answer"
                                + (f" ({said[-1]})" if said else "")) from None
    if kind == "config":
        return detail
    if kind == "unreadable":
        raise ConfigFileError(detail)
    if kind == "invalid":
        raise ConfigError(detail)
    if kind == "bad override":
        raise BadOverride(detail)
    raise ConfigCheckFailed(detail)


def check(request: tuple) -> tuple:
    """The child's work: the outcome of one request, as a picklable tuple."""
    from bridge.config.loader import load_config, load_stored
    from bridge.config.overrides import OverrideSyntaxError, split_override

    kind, *arguments = request
    try:
        if kind == "file":
            for text in arguments[1]:
                split_override(text)
        config = load_config(*arguments) if kind == "file" else load_stored(*arguments)
    except OverrideSyntaxError as error:
        return ("bad override", str(error))
    except ConfigFileError as error:
        return ("unreadable", error.errors)
    except ConfigError as error:
        return ("invalid", error.errors)
    except Exception as error:
        return ("failed", f"checking the config failed: {type(error).__name__}: {error}")
    return ("config", config)


def main() -> None:
    import bridge.config.loader  # noqa: F401 (before the request comes: see CheckAtStart)

    request = pickle.loads(sys.stdin.buffer.read())
    sys.stdout.buffer.write(pickle.dumps(check(request)))
    sys.stdout.flush()
