"""Rules the schema cannot express: subject syntax, duplicates, sensor timing, auth kinds, files.

Runs even when the schema found problems (every error at once), so each rule looks only at
values of the right shape and skips paths that already have an error.
"""

from __future__ import annotations

import os
from pathlib import Path as FilePath
from typing import Any, Callable, Iterator

from bridge.actions import check_defaults, check_locked
from bridge.config.document import Document, Path, parse_value
from bridge.config.filters import compensate_issues, filter_issues
from bridge.config.errors import ConfigIssue, did_you_mean, format_path
from bridge.config.limits import MAX_SUBJECT_BYTES
from bridge.config.model import ACTIONS, POLLED_SENSORS, NatsConfig, ReconnectConfig
from bridge.config.units import parse_duration, parse_listen
from bridge.nats.subjects import validate_subject

Found = Iterator[tuple[Path, ConfigIssue]]
AUTH_KINDS = (("user/password", ("user", "password")), ("token", ("token",)),
              ("nkey_seed_file", ("nkey_seed_file",)), ("creds_file", ("creds_file",)))
FILE_KEYS = (("nats", "nkey_seed_file"), ("nats", "creds_file"),
             ("nats", "tls", "ca_file"), ("nats", "tls", "cert_file"), ("nats", "tls", "key_file"))


def semantic_issues(document: Document, config_dir: FilePath, bad: Callable[[Path], bool]) -> list[tuple[Path, ConfigIssue]]:
    """`bad(path)` says a path already has an error (schema or substitution) and is to be left alone."""
    found: list[tuple[Path, ConfigIssue]] = []
    for rule in (_vars, _subscriptions, _publications, _auth, _reconnect, _files, _web, _homeassistant):
        found.extend((path, issue) for path, issue in rule(document, config_dir) if not bad(path))
    return found


def read_as_yaml(document: Document, path: Path) -> bool:
    """Substituted text where the schema wants a number, true/false...: read it as YAML, like --set.

    Returns whether the value changed (then validation runs again).
    """
    value = document.get(path)
    if not isinstance(value, str):
        return False
    typed = parse_value(value)
    if isinstance(typed, str):
        return False
    document.get(path[:-1])[path[-1]] = typed
    return True


def coerce_substituted_args(document: Document, substituted: set[Path]) -> None:
    """The same for subscription args, which the action (not the schema) checks."""
    for index, entry in _entries(document, "subscriptions"):
        action, args = entry.get("action"), entry.get("args")
        if action not in ACTIONS or not isinstance(args, dict):
            continue
        for key, _ in check_defaults(action, args):
            path = ("subscriptions", index, "args", key)
            if path in substituted and isinstance(args[key], str):
                typed = parse_value(args[key])
                if not isinstance(typed, str) and not check_defaults(action, {key: typed}):
                    args[key] = typed


def _vars(document: Document, config_dir: FilePath) -> Found:
    for where in (("vars",), ("fleet", "vars")):
        variables = document.get(where)
        if isinstance(variables, dict) and "HOSTNAME" in variables:
            path = where + ("HOSTNAME",)
            yield path, document.issue(path, "HOSTNAME is built in (the machine's host name); pick another name", key=True)
    public = document.get(("fleet", "public"))
    if isinstance(public, list):
        exported = document.get(("fleet", "vars"), {})
        names = list(exported) if isinstance(exported, dict) else []
        for index, name in enumerate(public):
            if isinstance(name, str) and name not in names:
                path = ("fleet", "public", index)
                known = ", ".join(names) or "none defined"
                hint = did_you_mean(name, names) or f" (fleet.vars: {known})"
                yield path, document.issue(path, f"public names {name!r}, which is not one of fleet.vars{hint}")


def _entries(document: Document, key: str) -> Iterator[tuple[int, dict]]:
    entries = document.get((key,))
    if isinstance(entries, list):
        for index, entry in enumerate(entries):
            if isinstance(entry, dict):
                yield index, entry


def _subject(document: Document, path: Path, subject: Any, wildcards: bool) -> Found:
    if isinstance(subject, str) and subject:
        size = len(subject.encode("utf-8", "surrogatepass"))
        if size > MAX_SUBJECT_BYTES:
            yield path, document.issue(
                path, f"the subject is {size} bytes, longer than the {MAX_SUBJECT_BYTES} a subject may be here "
                      "(nats-server takes a protocol line of at most 4096 bytes, and the subject shares it with a "
                      "reply subject or queue group and sizes); shorten it")
            return
        problem = validate_subject(subject, wildcards=wildcards)
        if problem:
            yield path, document.issue(path, problem)


def _duplicates(document: Document, key: str, what: str) -> Found:
    first_seen: dict[tuple, int] = {}
    for index, entry in _entries(document, key):
        identity = (entry.get("subject"), entry.get(what))
        if not all(isinstance(part, str) for part in identity):
            continue
        if identity in first_seen:
            first = first_seen[identity]
            line = document.position((key, first)).line
            path = (key, index, "subject")
            yield path, document.issue(
                path, f"same subject and {what} as {format_path((key, first))} (line {line})")
        else:
            first_seen[identity] = index


def _subscriptions(document: Document, config_dir: FilePath) -> Found:
    for index, entry in _entries(document, "subscriptions"):
        base = ("subscriptions", index)
        yield from _subject(document, base + ("subject",), entry.get("subject"), wildcards=True)
        action, args = entry.get("action"), entry.get("args")
        if action in ACTIONS and isinstance(args, dict):
            for key, message in check_defaults(action, args):
                path = base + ("args", key)
                yield path, document.issue(path, message, key=message.startswith("unknown key"))
        locked = entry.get("locked")
        if action in ACTIONS and isinstance(locked, list):
            for position, message in check_locked(action, locked):
                path = base + ("locked", position)
                yield path, document.issue(path, message.replace("unknown key", "locked names no key", 1))
        if "burst" in entry and entry.get("rate") is None:
            path = base + ("burst",)
            yield path, document.issue(path, "burst only applies with a rate; set rate (e.g. 20/s) or drop burst", key=True)
    yield from _duplicates(document, "subscriptions", "action")


def _duration(value: Any) -> float | None:
    try:
        return parse_duration(value)
    except (TypeError, ValueError, AttributeError):
        return None


def _publications(document: Document, config_dir: FilePath) -> Found:
    for index, entry in _entries(document, "publications"):
        base = ("publications", index)
        yield from _subject(document, base + ("subject",), entry.get("subject"), wildcards=False)
        sensor = entry.get("sensor")
        if sensor == "joystick":
            for key in ("interval", "change", "heartbeat"):
                if key in entry:
                    path = base + (key,)
                    yield path, document.issue(path, f"the joystick is event driven: remove {key!r}", key=True)
        elif sensor in POLLED_SENSORS:
            if "interval" not in entry:
                path = base + ("interval",)
                yield path, document.issue(
                    path, f"missing required key 'interval': sensor {sensor!r} is polled (e.g. interval: 10s)", key=True)
            interval = _duration(entry.get("interval"))
            if interval == 0:
                path = base + ("interval",)
                yield path, document.issue(path, "interval must be more than 0")
            if "heartbeat" in entry:
                path = base + ("heartbeat",)
                heartbeat = _duration(entry["heartbeat"])
                if "change" not in entry:
                    yield path, document.issue(
                        path, "heartbeat only matters with 'change' (without it every reading is published)", key=True)
                elif heartbeat is not None and interval and heartbeat < interval:
                    yield path, document.issue(path, f"heartbeat ({entry['heartbeat']}) must be at least the interval "
                                                     f"({entry['interval']})")
        for where, message in (*filter_issues(sensor, entry.get("filters")),
                               *compensate_issues(sensor, entry.get("compensate"))):
            path = base + where
            yield path, document.issue(path, message, key=isinstance(where[-1], str))
    yield from _duplicates(document, "publications", "sensor")


def _auth(document: Document, config_dir: FilePath) -> Found:
    nats = document.get(("nats",))
    if not isinstance(nats, dict):
        return
    present = [(name, keys) for name, keys in AUTH_KINDS if any(key in nats for key in keys)]
    for name, keys in present[1:]:
        key = next(key for key in keys if key in nats)
        path = ("nats", key)
        chosen = " and ".join(kind for kind, _ in present)
        yield path, document.issue(
            path, f"use one kind of authentication (user/password, token, nkey_seed_file or creds_file); "
                  f"found {chosen}", key=True)


def _reconnect(document: Document, config_dir: FilePath) -> Found:
    initial = _duration(document.get(("nats", "reconnect", "initial_delay"), ReconnectConfig.initial_delay))
    longest = _duration(document.get(("nats", "reconnect", "max_delay"), ReconnectConfig.max_delay))
    if initial is not None and longest is not None and longest < initial:
        path = ("nats", "reconnect", "max_delay")
        yield path, document.issue(path, "max_delay must be at least initial_delay")
    if _duration(document.get(("nats", "ping_interval"), NatsConfig.ping_interval)) == 0:
        path = ("nats", "ping_interval")
        yield path, document.issue(path, "ping_interval must be more than 0")
    if _duration(document.get(("nats", "status_interval"), NatsConfig.status_interval)) == 0:
        path = ("nats", "status_interval")
        yield path, document.issue(path, "status_interval must be more than 0")


def resolve_file(config_dir: FilePath, name: str) -> str:
    """Config file paths are relative to the config file's folder, not the working directory."""
    return os.path.normpath(config_dir / FilePath(name).expanduser())


def _files(document: Document, config_dir: FilePath) -> Found:
    for path in FILE_KEYS:
        name = document.get(path)
        if not isinstance(name, str) or not name:
            continue
        target = resolve_file(config_dir, name)
        if not os.path.exists(target):
            yield path, document.issue(path, f"no such file: {target}")
        elif not os.path.isfile(target):
            yield path, document.issue(path, f"not a file: {target}")
        elif not os.access(target, os.R_OK):
            yield path, document.issue(path, f"cannot read {target}: permission denied")


def _web(document: Document, config_dir: FilePath) -> Found:
    listen = document.get(("web", "listen"))
    if isinstance(listen, str):
        try:
            parse_listen(listen)
        except ValueError as error:
            path = ("web", "listen")
            yield path, document.issue(path, str(error))


def _homeassistant(document: Document, config_dir: FilePath) -> Found:
    path = ("homeassistant", "expire_after")
    if _duration(document.get(path)) == 0:
        yield path, document.issue(path, "expire_after must be more than 0; 'off' never expires a sensor")
