"""`bridge validate`: check config files, every error at once, as text or one JSON report for CI."""

from __future__ import annotations

import argparse
import json
import sys

from bridge.cli.configs import config_error_status, overrides_usable
from bridge.cli.exit import ExitStatus
from bridge.config import ConfigError
from bridge.config.convert import to_plain, to_yaml
from bridge.config.loader import load
from bridge.config.redact import redact_url
from bridge.homeassistant.discovery import skipped


def command(args: argparse.Namespace) -> int:
    if not overrides_usable("validate", args.overrides):
        return ExitStatus.USAGE
    status = ExitStatus.OK
    reports = []
    printed = []
    for file in args.files:
        report = {"file": file, "valid": False, "errors": [], "summary": None, "notes": []}
        if args.print_config:
            report["config"] = None
        reports.append(report)
        try:
            loaded = load(file, args.overrides)
        except ConfigError as error:
            status = max(status, config_error_status(error))
            report["errors"] = [issue.as_dict() for issue in error.errors]
            if args.format == "text":
                print(error, file=sys.stderr)
            continue
        config = loaded.config
        report["valid"] = True
        report["summary"] = {
            "device": config.device.id,
            "driver": config.device.driver,
            "subscriptions": len(config.subscriptions),
            "publications": len(config.publications),
            "servers": [redact_url(url) for url in config.nats.servers],
        }
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


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _summary(file: str, summary: dict) -> str:
    return (
        f"{file}: ok: device {summary['device']} ({summary['driver']}), "
        f"{_plural(summary['subscriptions'], 'subscription')}, {_plural(summary['publications'], 'publication')}, "
        f"servers {', '.join(summary['servers'])}"
    )
