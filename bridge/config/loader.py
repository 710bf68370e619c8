"""read → parse with positions → --set → substitute → schema → semantic checks → typed model."""

from __future__ import annotations

import codecs
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
from bridge.config.model import BridgeConfig, DeviceConfig, FleetConfig, NatsConfig
from bridge.config.overrides import apply_overrides
from bridge.config.redact import mask_all, mask_value
from bridge.config.schema import STORED_KEYS, describe, is_secret, schema_issues
from bridge.config.substitute import DEVICE_ID, StoredScope, Substitution


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
_NO_FOLDER = FilePath("/")  # a stored config names no files, so nothing resolves against its folder


def stored_text(raw: bytes, source: str) -> str:
    """A stored config's text from the bytes of a key's value; ConfigError when too large or not UTF-8."""
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError([ConfigIssue(source, 0, 0, "<file>", f"larger than {format_limit(MAX_CONFIG_BYTES)}, the "
                                       "most a config may be; a config this size is a mistake (or an attack): check "
                                       "what wrote it")])
    return _decode(raw, source)


EXAMPLE_ID = "example"  # the device id a stored config is checked for when none is given


def placeholder_bootstrap(device_id: str) -> BridgeConfig:
    """The bootstrap a Pi with this device id gives its stored config, as far as a laptop can know
    it: the device id (which `${HOSTNAME}` resolves to as well), no environment, no exported variables."""
    return BridgeConfig(device=DeviceConfig(id=device_id), nats=NatsConfig(servers=(_PLACEHOLDER_SERVER,)),
                        source=f"bootstrap of {device_id}", fleet=FleetConfig(key="-"))


def check_stored(text: str, source: str, device_id: str = EXAMPLE_ID) -> BridgeConfig:
    """`text` as the Pi `device_id` checks it (`bridge deploy --dry-run`); raises ConfigError."""
    return load_stored(text, placeholder_bootstrap(device_id), source)


def load_stored(text: str, bootstrap: BridgeConfig, source: str) -> BridgeConfig:
    """A stored config (a fleet key's value: version, vars, subscriptions, publications, homeassistant, telemetry, display) checked
    exactly like a file, with `bootstrap`'s device (so `${device.id}` is this Pi's id), and merged
    into `bootstrap`. `source` names it in errors and logs, e.g. `kv:bridge_config/pis@7`.

    It reads nothing of the machine checking it: `${HOSTNAME}` is `bootstrap.hostname` (the device
    id when None), the bootstrap's `fleet.vars` are the only vars exported to it, and `${env:...}`
    and `${file:...}` are errors. Messages mask the bootstrap's secrets."""
    try:
        return _load_stored(text, bootstrap, source)
    except ConfigError as error:
        raise type(error)([dataclasses.replace(issue, message=mask_all(issue.message, bootstrap.secrets))
                           for issue in error.errors]) from None


def _load_stored(text: str, bootstrap: BridgeConfig, source: str) -> BridgeConfig:
    try:
        document = parse_document(text.removeprefix("\ufeff"), source)
    except YamlError as error:
        raise ConfigError(sorted(error.issues, key=lambda issue: _order(issue, source))) from None
    if not isinstance(document.data, dict):
        got = describe(document.data)
        raise ConfigError([document.position(()).issue((), "a stored config is a mapping (version:, vars:, "
                                                        f"subscriptions:, publications:, homeassistant:, display:), "
                                                        f"got {got}")])
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
    fleet = bootstrap.fleet
    scope = StoredScope(hostname=bootstrap.hostname or device.id, exported=dict(fleet.vars) if fleet else {},
                        secret_names=fleet.secret_vars if fleet else frozenset())
    stored = _check(document, _NO_FOLDER, source, (), scope).config
    return dataclasses.replace(bootstrap, subscriptions=stored.subscriptions, publications=stored.publications,
                               homeassistant=stored.homeassistant, display=stored.display, version=stored.version,
                               source=source)


def _check(document: Document, config_dir: FilePath, file: str, overrides: Sequence[str],
           stored: StoredScope | None = None) -> Loaded:
    issues = [issue for _, issue in document.issues]
    issues += apply_overrides(document, overrides)
    substitution = Substitution(document, config_dir, stored=stored)
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
    found += semantic_issues(document, config_dir, lambda path: skipped(path) or path in error_paths,
                             stored=stored is not None)
    issues += _mask_secrets(found, document, substitution.secret_paths)
    private = set().union(*substitution.private.values())
    if issues:
        issues = [dataclasses.replace(issue, message=mask_all(issue.message, private)) for issue in issues]
        raise ConfigError(sorted(set(issues), key=lambda issue: _order(issue, file)))
    config = to_model(document.data, config_dir, file)
    config = dataclasses.replace(config, hostname=substitution.hostname,
                                 secrets=_model_secrets(config, substitution.private))
    if config.fleet is not None:
        secret_vars = {name for name in config.fleet.vars
                       if ("fleet", "vars", name) in substitution.private and name not in config.fleet.public}
        config = dataclasses.replace(config, fleet=dataclasses.replace(config.fleet, secret_vars=frozenset(secret_vars)))
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


def _model_secrets(config: BridgeConfig, private: dict[Path, set[str]]) -> frozenset[str]:
    """What the running bridge masks: every text read from a file or the environment, except exported
    vars the bootstrap made public (and the device id, never recorded: it names the Pi in every subject)."""
    public = {("fleet", "vars", name) for name in config.fleet.public} if config.fleet else set()
    return frozenset(text for path, texts in private.items() if path not in public for text in texts)


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
    return _decode(raw, file)


def _decode(raw: bytes, file: str) -> str:
    """UTF-8 (a leading BOM dropped); ConfigError at the first byte that is not."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        start = error.start + (len(codecs.BOM_UTF8) if raw.startswith(codecs.BOM_UTF8) else 0)
        line = raw[:start].count(b"\n") + 1
        column = start - (raw.rfind(b"\n", 0, start) + 1) + 1
        raise ConfigError([ConfigIssue(file, line, column, "<file>", "not UTF-8 text")]) from None


def _parse_text(text: str, file: str) -> Document:
    try:
        document = parse_document(text, file)
    except YamlError as error:
        raise ConfigError(sorted(error.issues, key=lambda issue: _order(issue, file))) from None
    if not isinstance(document.data, dict):
        got = describe(document.data)
        raise ConfigError([document.position(()).issue((), f"the top level must be a mapping (version:, nats:, ...), got {got}")])
    return document
