"""`bridge fleet`: every running bridge on a NATS system, from the services protocol (bridge/service.py).

One scatter-gather on `$SRV.INFO.bridge` and one on `$SRV.STATS.bridge`, at once; the answers are
joined by instance id. A device id that more than one bridge reports is flagged: its commands
reach all of them. Like `bridge send` it tries each server once; unlike it, exit 2 when none is
reachable (nothing was asked), 0 when it ran, whatever it found.
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from datetime import datetime, timezone
from typing import Sequence

DEFAULT_TIMEOUT = 2.0


def parse_config_source(source: str | None) -> dict:
    """`file:PATH` or `kv:BUCKET/KEY@REV` (metadata `config`) as the JSON output's `config`."""
    config = {"source": source, "file": None, "key": None, "revision": None, "error": None}
    if not source:
        return config
    if source.startswith("file:"):
        config["file"] = source[len("file:"):]
    elif source.startswith("kv:"):
        key, _, revision = source[len("kv:"):].rpartition("@")
        config["key"] = key or None
        config["revision"] = int(revision) if revision.isdigit() else None
    return config


def _uptime(started: str | None, now: datetime) -> float | None:
    if not started:
        return None
    try:
        moment = datetime.fromisoformat(started.replace("Z", "+00:00"))
    except ValueError:
        return None
    return round((now - moment).total_seconds(), 3)


def build_entries(infos: Sequence[dict], stats: Sequence[dict], now: datetime | None = None) -> list[dict]:
    """One entry per bridge instance (by id), sorted by device id; `duplicate` marks a device id
    that several instances report."""
    now = now or datetime.now(timezone.utc)
    by_id: dict[str, dict] = {}
    for document in list(infos) + list(stats):
        by_id.setdefault(document.get("id"), {}).setdefault(document["type"].rsplit(".", 1)[-1], document)
    entries = []
    for instance_id, found in by_id.items():
        info, stat = found.get("info_response", {}), found.get("stats_response", {})
        any_document = info or stat
        metadata = any_document.get("metadata") or {}
        counts = {e.get("name"): e for e in stat.get("endpoints") or []}
        endpoints = []
        for endpoint in info.get("endpoints") or stat.get("endpoints") or []:
            counted = counts.get(endpoint.get("name"), {})
            endpoints.append({
                "name": endpoint.get("name"),
                "subject": endpoint.get("subject"),
                "queue_group": endpoint.get("queue_group") or None,
                "action": (endpoint.get("metadata") or {}).get("action"),
                "num_requests": counted.get("num_requests"),
                "num_errors": counted.get("num_errors"),
                "last_error": counted.get("last_error") or None,
                "average_processing_time": counted.get("average_processing_time"),
            })
        received = sum(e["num_requests"] or 0 for e in endpoints) if stat else None
        errors = sum(e["num_errors"] or 0 for e in endpoints) if stat else None
        entries.append({
            "device": metadata.get("device"),
            "id": instance_id,
            "version": any_document.get("version"),
            "host": metadata.get("host"),
            "driver": metadata.get("driver"),
            "server": metadata.get("server") or None,
            "config": parse_config_source(metadata.get("config")),
            "started": stat.get("started"),
            "uptime": _uptime(stat.get("started"), now),
            "received": received,
            "errors": errors,
            "endpoints": endpoints,
            "duplicate": False,
        })
    devices = Counter(entry["device"] for entry in entries)
    for entry in entries:
        entry["duplicate"] = devices[entry["device"]] > 1
    entries.sort(key=lambda entry: (str(entry["device"]), str(entry["id"])))
    return entries


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    days, seconds = divmod(seconds, 86400)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    if days:
        return f"{days}d{hours}h"
    if hours:
        return f"{hours}h{minutes}m"
    return f"{minutes}m{seconds}s" if minutes else f"{seconds}s"


def format_table(entries: Sequence[dict]) -> str:
    headers = ("DEVICE", "HOST", "VERSION", "CONFIG", "SERVER", "UPTIME", "RECEIVED", "ERRORS")
    rows = []
    for entry in entries:
        device = entry["device"] or "?"
        rows.append((
            device + (" (DUPLICATE)" if entry["duplicate"] else ""),
            entry["host"] or "-",
            entry["version"] or "-",
            entry["config"]["source"] or "-",
            entry["server"] or "-",
            _duration(entry["uptime"]),
            "-" if entry["received"] is None else str(entry["received"]),
            "-" if entry["errors"] is None else str(entry["errors"]),
        ))
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in [headers, *rows]]
    lines.append(f"{len(entries)} bridge(s)")
    duplicates = sorted({entry["device"] for entry in entries if entry["duplicate"]}, key=str)
    for device in duplicates:
        count = sum(1 for entry in entries if entry["device"] == device)
        lines.append(f"duplicate device id {device!r}: {count} bridges answer to it; give each its own device.id")
    return "\n".join(lines)


def run_fleet(servers: Sequence[str] = (), as_json: bool = False, timeout: float = DEFAULT_TIMEOUT,
              quiet: float | None = None) -> int:
    if timeout <= 0:
        print("bridge fleet: --timeout must be positive", file=sys.stderr)
        return 2

    from twisted.internet import defer, task

    from bridge.config.redact import redact_url
    from bridge.nats import Client
    from bridge.nats.client import DEFAULT_URL, parse_server_url
    from bridge.service import INFO_RESPONSE, QUIET, SERVICE_NAME, STATS_RESPONSE, decode_answers, gather

    servers = list(servers) or [os.environ.get("NATS_URL", DEFAULT_URL)]
    for url in servers:
        try:
            parse_server_url(url)
        except ValueError as error:
            print(f"bridge fleet: {error}", file=sys.stderr)
            return 2
    outcome = {"exit": 0}
    quiet = QUIET if quiet is None else quiet

    @defer.inlineCallbacks
    def main(reactor):
        client = Client(servers=servers, name="bridge-fleet", randomize=False, max_attempts=len(servers),
                        reactor=reactor)
        try:
            yield client.connect()
        except Exception as error:  # refused, unreachable, TLS, auth: nothing was asked
            shown = ", ".join(redact_url(url) for url in servers)
            print(f"bridge fleet: cannot connect to {shown}: {error}", file=sys.stderr)
            outcome["exit"] = 2
            return
        try:
            infos, stats = yield defer.gatherResults([
                gather(client, f"$SRV.INFO.{SERVICE_NAME}", reactor, timeout=timeout, quiet=quiet),
                gather(client, f"$SRV.STATS.{SERVICE_NAME}", reactor, timeout=timeout, quiet=quiet),
            ], consumeErrors=True)
        except defer.FirstError as error:
            print(f"bridge fleet: {error.subFailure.getErrorMessage()}", file=sys.stderr)
            outcome["exit"] = 2
            return
        finally:
            yield client.close()
        entries = build_entries(decode_answers(infos, INFO_RESPONSE), decode_answers(stats, STATS_RESPONSE))
        if as_json:
            print(json.dumps(entries, indent=2))
        else:
            print(format_table(entries))

    try:
        task.react(main)
    except SystemExit as done:
        if done.code not in (0, None):
            return int(done.code) if isinstance(done.code, int) else 2
    return outcome["exit"]
