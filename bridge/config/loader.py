"""read → parse with positions → --set → substitute → schema → semantic checks → typed model."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path as FilePath
from typing import Sequence

from bridge.config.checks import coerce_substituted_args, read_as_yaml, semantic_issues
from bridge.config.convert import to_model
from bridge.config.document import Document, Path, YamlError, parse_document
from bridge.config.errors import ConfigError, ConfigFileError, ConfigIssue
from bridge.config.limits import MAX_CONFIG_BYTES, NotRegular, TooLarge, format_limit, read_regular_file
from bridge.config.model import BridgeConfig
from bridge.config.overrides import apply_overrides
from bridge.config.redact import mask_value
from bridge.config.schema import STORED_KEYS, describe, is_secret, schema_issues
from bridge.config.substitute import DEVICE_ID, Substitution


@dataclass
class Loaded:
    config: BridgeConfig
    secret_paths: set[Path]


def load_config(path: str | os.PathLike, overrides: Sequence[str] = ()) -> BridgeConfig:
    """The validated, typed config; raises ConfigError listing every problem (ConfigFileError: unreadable)."""
    return load(path, overrides).config


def load(path: str | os.PathLike, overrides: Sequence[str] = ()) -> Loaded:
    file = os.fspath(path)
    config_dir = FilePath(os.path.abspath(file)).parent
    return _check(_parse(file), config_dir, file, overrides)


_PLACEHOLDER_SERVER = "nats://127.0.0.1:4222"


def load_stored(text: str, bootstrap: BridgeConfig, source: str) -> BridgeConfig:
    """A stored config (a fleet key's value: version, vars, subscriptions, publications) checked
    exactly like a file, with `bootstrap`'s device (so `${device.id}` is this Pi's id), and merged
    into `bootstrap`. `source` names it in errors and logs, e.g. `kv:bridge_config/pis@7`."""
    try:
        document = parse_document(text, source)
    except YamlError as error:
        raise ConfigError(sorted(error.issues, key=lambda issue: _order(issue, source))) from None
    if not isinstance(document.data, dict):
        got = describe(document.data)
        raise ConfigError([document.position(()).issue((), "a stored config is a mapping (version:, vars:, "
                                                        f"subscriptions:, publications:), got {got}")])
    foreign = [
        document.issue((key,), f"{key!r} does not belong in a stored config: it holds only {', '.join(STORED_KEYS)}; "
                               "device, nats and web come from each Pi's bootstrap file", key=True)
        for key in document.data if key not in STORED_KEYS
    ]
    if foreign:
        raise ConfigError(sorted(foreign, key=lambda issue: _order(issue, source)))
    device = bootstrap.device
    document.data["device"] = {"id": device.id, "driver": device.driver, "rotation": device.rotation,
                               "low_light": device.low_light}
    document.data["nats"] = {"servers": [_PLACEHOLDER_SERVER]}  # checked already, in the bootstrap file
    config_dir = FilePath(os.path.abspath(bootstrap.source)).parent
    stored = _check(document, config_dir, source, ()).config
    return dataclasses.replace(bootstrap, subscriptions=stored.subscriptions, publications=stored.publications,
                               version=stored.version, source=source)


def _check(document: Document, config_dir: FilePath, file: str, overrides: Sequence[str]) -> Loaded:
    issues = [issue for _, issue in document.issues]
    issues += apply_overrides(document, overrides)
    substitution = Substitution(document, config_dir)
    substitution.run()
    issues += substitution.issues
    skip = set(substitution.failed_paths) | {path for path, _ in document.issues}

    found = schema_issues(document, substitution.secret_paths)
    retry = {path for path, _ in found} & substitution.substituted_paths
    if any([read_as_yaml(document, path) for path in retry]):
        found = schema_issues(document, substitution.secret_paths)
    coerce_substituted_args(document, substitution.substituted_paths)
    if any(path in (DEVICE_ID, DEVICE_ID[:1]) for path, _ in found):
        skip |= substitution.device_id_paths  # one bad device id should not fail every subject using it

    def skipped(path: Path) -> bool:
        return any(path[: len(stale)] == stale for stale in skip)

    keep_device_id = DEVICE_ID not in substitution.failed_paths
    found = [(path, issue) for path, issue in found if not skipped(path) or (path == DEVICE_ID and keep_device_id)]
    error_paths = {path for path, _ in found}
    found += semantic_issues(document, config_dir, lambda path: skipped(path) or path in error_paths)
    issues += _mask_secrets(found, document, substitution.secret_paths)
    if issues:
        raise ConfigError(sorted(set(issues), key=lambda issue: _order(issue, file)))
    config = to_model(document.data, config_dir, file)
    return Loaded(config, substitution.secret_paths)


def _mask_secrets(found: list[tuple[Path, ConfigIssue]], document: Document, secret_paths: set[Path]) -> list[ConfigIssue]:
    """A message about a secret value must not quote it; other messages are left as they are."""
    issues = []
    for path, issue in found:
        value = document.get(path)
        if isinstance(value, str) and value and is_secret(path, secret_paths):
            issue = dataclasses.replace(issue, message=mask_value(issue.message, value))
        issues.append(issue)
    return issues


def _order(issue: ConfigIssue, file: str) -> tuple:
    return (issue.file != file, issue.file, issue.line, issue.column, issue.path, issue.message)


def _parse(file: str) -> Document:
    return _parse_text(read_text(file), file)


def read_text(file: str) -> str:
    """A config file's text; ConfigFileError when unreadable, ConfigError when too large or not UTF-8."""
    try:
        raw = read_regular_file(file, MAX_CONFIG_BYTES)
    except OSError as error:
        reason = error.strerror or str(error)
        raise ConfigFileError([ConfigIssue(file, 0, 0, "<file>", f"cannot read: {reason}")]) from None
    except NotRegular as error:
        raise ConfigFileError([ConfigIssue(file, 0, 0, "<file>", f"cannot read: {error.kind}, not a regular file; "
                                           "save the config as a file")]) from None
    except TooLarge:
        limit = format_limit(MAX_CONFIG_BYTES)
        raise ConfigError([ConfigIssue(file, 0, 0, "<file>", f"larger than {limit}, the most a config file may be; "
                                       "a config this size is a mistake (or an attack): check what wrote it")]) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        column = error.start - (raw.rfind(b"\n", 0, error.start) + 1) + 1
        raise ConfigError([ConfigIssue(file, line, column, "<file>", "not UTF-8 text")]) from None
    return text


def _parse_text(text: str, file: str) -> Document:
    try:
        document = parse_document(text, file)
    except YamlError as error:
        raise ConfigError(sorted(error.issues, key=lambda issue: _order(issue, file))) from None
    if not isinstance(document.data, dict):
        got = describe(document.data)
        raise ConfigError([document.position(()).issue((), f"the top level must be a mapping (version:, nats:, ...), got {got}")])
    return document
