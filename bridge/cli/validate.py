"""`bridge validate`: check config files, every error at once, as text or one JSON report for CI."""

from __future__ import annotations

import argparse
import json
import sys

import yaml

from bridge.cli.configs import config_error_status, overrides_usable
from bridge.cli.exit import ExitStatus
from bridge.config import ConfigError
from bridge.config.convert import to_plain, to_yaml
from bridge.config.loader import EXAMPLE_ID, check_stored, load, read_text
from bridge.config.redact import redact_url
from bridge.homeassistant.discovery import skipped


def command(args: argparse.Namespace) -> int:
    if not overrides_usable("validate", args.overrides):
        return ExitStatus.USAGE
    status = ExitStatus.OK
    reports = []
    printed = []
    for file in args.files:
        report = {"file": file, "kind": None, "valid": False, "errors": [], "summary": None, "notes": []}
        if args.print_config:
            report["config"] = None
        reports.append(report)
        if looks_stored(file):
            report["kind"] = "stored"
            status = max(status, _validate_stored(file, report, args))
            continue
        try:
            loaded = load(file, args.overrides)
        except ConfigError as error:
            status = max(status, config_error_status(error))
            report["errors"] = [issue.as_dict() for issue in error.errors]
            if args.format == "text":
                print(error, file=sys.stderr)
            continue
        config = loaded.config
        report["kind"] = "bootstrap" if config.fleet is not None else "file"
        report["valid"] = True
        report["summary"] = {
            "device": config.device.id,
            "driver": config.device.driver,
            "subscriptions": len(config.subscriptions),
            "publications": len(config.publications),
            "servers": [redact_url(url) for url in config.nats.servers],
        }
        if config.fleet is not None:
            report["summary"]["follows"] = {"bucket": config.fleet.bucket, "key": config.fleet.key}
        notes = skipped(config) if config.homeassistant is not None else []
        report["notes"] = notes
        if args.format == "json":
            if args.print_config:
                report["config"] = to_plain(config, loaded.secret_paths)
        elif args.print_config:
            printed.append(f"# {file}\n" + to_yaml(config, loaded.secret_paths))
        else:
            print(_summary(file, report["summary"]))
            for note in notes:
                print(f"{file}: note: {note}")
    if args.format == "json":
        print(json.dumps({"valid": status == ExitStatus.OK, "files": reports}, indent=2))
    elif printed:
        print("---\n".join(printed), end="")
    return status


def looks_stored(file: str) -> bool:
    """A file with content but without `device:`, `nats:` and `fleet:` is what `bridge deploy` stores for many Pis (each
    Pi's bootstrap gives those), not a file a bridge runs; checked as such, not as a broken file."""
    try:
        document = yaml.safe_load(read_text(file))
    except (ConfigError, yaml.YAMLError):
        return False  # the ordinary load reports it, with its position
    return (isinstance(document, dict) and not {"device", "nats", "fleet"} & document.keys()
            and bool(document.keys() - {"version"}))


def _validate_stored(file: str, report: dict, args: argparse.Namespace) -> ExitStatus:
    if args.overrides:
        print(f"bridge validate: {file}: --set applies to a file a bridge runs, not to a stored config; "
              f"check it without --set", file=sys.stderr)
        return ExitStatus.USAGE
    try:
        config = check_stored(read_text(file), file)
    except ConfigError as error:
        report["errors"] = [issue.as_dict() for issue in error.errors]
        if args.format == "text":
            print(error, file=sys.stderr)
            print(f"{file}: note: checked as a stored fleet config (it has no device:, nats: or fleet:), as "
                  f"the Pi with device id {EXAMPLE_ID!r} would", file=sys.stderr)
        return config_error_status(error)
    report["valid"] = True
    report["summary"] = {"checked_as_device": EXAMPLE_ID, "subscriptions": len(config.subscriptions),
                         "publications": len(config.publications)}
    if args.format == "text":
        print(f"{file}: ok: a stored fleet config (no device:, nats: or fleet:; each Pi's bootstrap gives them): "
              f"{_plural(len(config.subscriptions), 'subscription')}, "
              f"{_plural(len(config.publications), 'publication')} for device {EXAMPLE_ID!r}; store it with "
              f"`bridge deploy {file} --key KEY` (`--dry-run --device-id ID` checks it for a Pi)")
    return ExitStatus.OK


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _summary(file: str, summary: dict) -> str:
    servers = f"servers {', '.join(summary['servers'])}"
    if "follows" in summary:
        follows = summary["follows"]
        return (f"{file}: ok: a fleet bootstrap: device {summary['device']} ({summary['driver']}), {servers}; its "
                f"subscriptions and publications come from key {follows['key']!r} of bucket {follows['bucket']!r} "
                f"(`bridge deploy FILE --key {follows['key']}` stores them)")
    return (
        f"{file}: ok: device {summary['device']} ({summary['driver']}), "
        f"{_plural(summary['subscriptions'], 'subscription')}, {_plural(summary['publications'], 'publication')}, "
        f"{servers}"
    )
