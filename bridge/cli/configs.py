"""What the commands that read a config file share: the `--set` syntax check, and the one exit
status of a config that cannot be used (USAGE unreadable, FAILED invalid)."""

from __future__ import annotations

import sys
from typing import Callable, Sequence

from bridge.cli.exit import ExitStatus
from bridge.config.errors import ConfigError, ConfigFileError


def overrides_usable(command: str, overrides: Sequence[str]) -> bool:
    """Every `--set` is KEY=VALUE with a dotted key; else say which is not."""
    from bridge.config.overrides import OverrideSyntaxError, split_override  # the schema: not for `bridge run`

    for text in overrides:
        try:
            split_override(text)
        except OverrideSyntaxError as error:
            print(f"bridge {command}: --set: {error}", file=sys.stderr)
            return False
    return True


def config_error_status(error: ConfigError) -> ExitStatus:
    return ExitStatus.USAGE if isinstance(error, ConfigFileError) else ExitStatus.FAILED


def with_config(command: str, overrides: Sequence[str], run: Callable[[], int]) -> int:
    """`run()` once the overrides parse; a ConfigError it raises ends the command with its status."""
    if not overrides_usable(command, overrides):
        return ExitStatus.USAGE
    try:
        return run()
    except ConfigError as error:
        print(error, file=sys.stderr)  # it says everything, file and line included
        return config_error_status(error)
