"""The `bridge fleet` listing as pure joins: `$SRV` INFO and STATS answers joined by instance id,
the status stream's last-seen records added, and the table a person reads."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone
from typing import Sequence

from bridge import timestamps
from bridge.config.sources import parse_source


def add_last_seen(entries: list[dict], statuses: dict | None) -> list[dict]:
    """Mark every answering entry `answering: True` (with its last status when known) and append
    one `answering: False` entry per device id whose last status is known but that did not answer."""
    statuses = statuses or {}
    answering = {entry["device"] for entry in entries}
    for entry in entries:
        known = statuses.get(entry["device"]) or {}
        entry["answering"] = True
        entry["last_seen"] = known.get("last_seen")
        entry["last_status"] = known.get("last_status")
    for device in sorted(set(statuses) - answering):
        known = statuses[device]
        document = known.get("document") or {}
        entries.append({
            "device": device, "id": None, "version": document.get("version"), "host": None, "driver": None,
            "server": None, "config": config_of({}), "started": None, "uptime": None,
            "received": None, "errors": None, "endpoints": [], "duplicate": False, "latency_ms": None,
            "answering": False, "last_seen": known.get("last_seen"), "last_status": known.get("last_status"),
        })
    return entries


def config_of(metadata: dict) -> dict:
    """The `$SRV` metadata `config`, `config_error`, `config_refused` and `config_stale` as the JSON
    output's `config`; `revision` is null (never 0) while nothing is applied."""
    source = metadata.get("config") or None
    refused = parse_source(metadata.get("config_refused"))
    return {"source": source, **parse_source(source),
            "error": metadata.get("config_error") or None, "refused_revision": refused["revision"],
            "stale": metadata.get("config_stale") == "true"}


def shown_source(config: dict) -> str:
    """The CONFIG column: the source, `@-` for a key with nothing applied yet, `(stale)` when the
    revision came from a cache the bucket did not confirm."""
    if config["source"] is None:
        return "-"
    shown = f"kv:{config['key']}@{config['revision'] or '-'}" if config["key"] else config["source"]
    return shown + (" (stale)" if config["stale"] else "")


def _uptime(started: str | None, now: datetime) -> float | None:
    moment = timestamps.parse(started)
    return None if moment is None else round((now - moment).total_seconds(), 3)


def build_entries(infos: Sequence[dict], stats: Sequence[dict], now: datetime | None = None,
                  latencies: dict | None = None) -> list[dict]:
    """One entry per bridge instance (by id), sorted by device id; `duplicate` marks a device id
    that several instances report; `latencies`: seconds each instance id took to answer."""
    now = now or datetime.now(timezone.utc)
    latencies = latencies or {}
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
            "config": config_of(metadata),
            "started": stat.get("started"),
            "uptime": _uptime(stat.get("started"), now),
            "received": received,
            "errors": errors,
            "endpoints": endpoints,
            "duplicate": False,
            "latency_ms": None if latencies.get(instance_id) is None else round(latencies[instance_id] * 1000, 1),
        })
    devices = Counter(entry["device"] for entry in entries)
    for entry in entries:
        entry["duplicate"] = devices[entry["device"]] > 1
    entries.sort(key=lambda entry: (str(entry["device"]), str(entry["id"])))
    return entries


def _ago(value: str | None, now: datetime) -> str:
    moment = timestamps.parse(value)
    if moment is None:
        return ""
    return f" ({_duration(max(0.0, (now - moment).total_seconds()))} ago)"


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


def format_table(entries: Sequence[dict], now: datetime | None = None) -> str:
    now = now or datetime.now(timezone.utc)
    silent = [entry for entry in entries if entry.get("answering") is False]
    entries = [entry for entry in entries if entry.get("answering") is not False]
    headers = ("DEVICE", "HOST", "VERSION", "CONFIG", "SERVER", "UPTIME", "RECEIVED", "ERRORS", "LATENCY")
    rows = []
    for entry in entries:
        device = entry["device"] or "?"
        rows.append((
            device + (" (DUPLICATE)" if entry["duplicate"] else ""),
            entry["host"] or "-",
            entry["version"] or "-",
            shown_source(entry["config"]),
            entry["server"] or "-",
            _duration(entry["uptime"]),
            "-" if entry["received"] is None else str(entry["received"]),
            "-" if entry["errors"] is None else str(entry["errors"]),
            "-" if entry.get("latency_ms") is None else f"{entry['latency_ms']:.0f}ms",
        ))
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in [headers, *rows]]
    lines.append(f"{len(entries)} bridge(s)")
    for entry in entries:
        config = entry["config"]
        if config["error"]:
            refused = f"revision {config['refused_revision']}" if config["refused_revision"] else "the latest revision"
            lines.append(f"{entry['device']}: runs {shown_source(config)}; refused {refused}: {config['error']}")
    duplicates = sorted({entry["device"] for entry in entries if entry["duplicate"]}, key=str)
    for device in duplicates:
        count = sum(1 for entry in entries if entry["device"] == device)
        lines.append(f"duplicate device id {device!r}: {count} bridges answer to it; give each its own device.id")
    if silent:
        lines.append(f"{len(silent)} bridge(s) not answering:")
        width = max(len(str(entry["device"])) for entry in silent)
        for entry in silent:
            lines.append(f"  {str(entry['device']).ljust(width)}  not answering, last seen {entry['last_seen'] or '?'}"
                         f"{_ago(entry['last_seen'], now)}, last status {entry['last_status'] or '?'}")
    return "\n".join(lines)
