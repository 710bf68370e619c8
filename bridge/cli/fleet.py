"""`bridge fleet`: every running bridge on a NATS system, from the services protocol (bridge/runtime/srv.py).

One scatter-gather on `$SRV.INFO.bridge` and one on `$SRV.STATS.bridge`, at once; the answers are
joined by instance id. A device id that more than one bridge reports is flagged: its commands
reach all of them. Like `bridge send` it tries each server once (UNREACHABLE when none took the
connection); OK when it ran, whatever it found.

Last seen: when the JetStream stream `BRIDGE_STATUS` exists (it captures `bridge.*.status` and keeps
the last message per subject; `ensure_status_stream` creates it), `bridge fleet` also reads the last
status of every device id in it, and lists the devices that did not answer `$SRV` as not answering,
with the server's time of their last status and what it said (`offline` after a graceful stop,
`online` when the process died without a goodbye). Without JetStream or without that stream the
listing is only what `$SRV` answered.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import sys
from collections import Counter
from datetime import datetime, timezone
from typing import Sequence

from twisted.internet import defer

from bridge import timestamps
from bridge.cli.connect import command_servers, connect_once, run_command
from bridge.cli.exit import ExitStatus
from bridge.config.sources import parse_source
from bridge.nats.errors import (
    JetStreamNotEnabledError,
    NatsError,
    NoMessageFoundError,
    StreamNameInUseError,
    StreamNotFoundError,
)
from bridge.nats.jetstream.streams import JetStream
from bridge.runtime.srv import INFO_RESPONSE, QUIET, SERVICE_NAME, STATS_RESPONSE, decode_answers, gather

DEFAULT_TIMEOUT = 2.0
STATUS_STREAM = "BRIDGE_STATUS"
STATUS_SUBJECTS = "bridge.*.status"


def status_stream_config(replicas: int = 1) -> dict:
    """The stream keeping the last `bridge.<device>.status` message of every device id."""
    return {
        "name": STATUS_STREAM,
        "description": "the last status message of every bridge (bridge fleet: last seen)",
        "subjects": [STATUS_SUBJECTS],
        "max_msgs_per_subject": 1,
        "discard": "old",
        "storage": "file",
        "num_replicas": replicas,
    }


def ensure_status_stream(js, replicas: int = 1):
    """Create `BRIDGE_STATUS` unless it exists (whatever its config then); fires with its info.
    Idempotent: safe to call on every deploy, and from two places at once."""
    @defer.inlineCallbacks
    def ensure():
        try:
            info = yield js.stream_info(STATUS_STREAM)
            return info
        except StreamNotFoundError:
            pass
        try:
            info = yield js.add_stream(status_stream_config(replicas))
        except StreamNameInUseError:  # created meanwhile by someone else, with another config
            info = yield js.stream_info(STATUS_STREAM)
        return info

    return ensure()


def read_last_statuses(js):
    """Fires with {device id: {"last_seen": RFC 3339 (server time), "last_status": str|None,
    "document": dict|None}} from `BRIDGE_STATUS`; None when there is no JetStream or no such stream."""
    @defer.inlineCallbacks
    def read():
        try:
            info = yield defer.ensureDeferred(js.api(f"STREAM.INFO.{STATUS_STREAM}",
                                                     {"subjects_filter": STATUS_SUBJECTS}))
        except (JetStreamNotEnabledError, StreamNotFoundError):
            return None
        subjects = sorted((info.get("state") or {}).get("subjects") or {})
        answers = yield defer.gatherResults([
            defer.ensureDeferred(js.api(f"STREAM.MSG.GET.{STATUS_STREAM}", {"last_by_subj": subject}))
            .addErrback(lambda failure: failure.trap(NoMessageFoundError) and None)
            for subject in subjects
        ], consumeErrors=True)
        found = {}
        for subject, answer in zip(subjects, answers):
            message = (answer or {}).get("message")
            if not message:
                continue
            device = subject.split(".")[1]
            found[device] = status_from_message(message)
        return found

    return read()


def status_from_message(message: dict) -> dict:
    """A `STREAM.MSG.GET` message (base64 `data`, server `time`) as last seen / last status."""
    document = None
    try:
        document = json.loads(base64.b64decode(message.get("data") or ""))
    except (ValueError, binascii.Error):
        pass
    if not isinstance(document, dict):
        document = None
    status = document.get("status") if document else None
    return {"last_seen": _short_time(message.get("time")), "last_status": status if isinstance(status, str) else None,
            "document": document}


def _short_time(value: str | None) -> str | None:
    """RFC 3339 with nanoseconds (the server's) cut to milliseconds, UTC with a Z."""
    if not value:
        return None
    moment = timestamps.parse(value)
    return value if moment is None else timestamps.format_utc(moment)


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
            "server": None, "config": parse_config_source(None), "started": None, "uptime": None,
            "received": None, "errors": None, "endpoints": [], "duplicate": False,
            "answering": False, "last_seen": known.get("last_seen"), "last_status": known.get("last_status"),
        })
    return entries


def parse_config_source(source: str | None, error: str | None = None) -> dict:
    """`file:PATH` or `kv:BUCKET/KEY@REV` (metadata `config`) as the JSON output's `config`;
    `error`: why the latest revision was refused (metadata `config_error`), if it was."""
    return {"source": source, **parse_source(source), "error": error or None}


def _uptime(started: str | None, now: datetime) -> float | None:
    moment = timestamps.parse(started)
    return None if moment is None else round((now - moment).total_seconds(), 3)


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
            "config": parse_config_source(metadata.get("config"), metadata.get("config_error")),
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
    for entry in entries:
        if entry["config"]["error"]:
            lines.append(f"{entry['device']}: runs {entry['config']['source']}; refused the latest revision: "
                         f"{entry['config']['error']}")
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


def command(args: argparse.Namespace) -> int:
    return run_fleet(args.servers, as_json=args.as_json, timeout=args.timeout)


def run_fleet(servers: Sequence[str] = (), as_json: bool = False, timeout: float = DEFAULT_TIMEOUT,
              quiet: float | None = None) -> ExitStatus:
    if timeout <= 0:
        print("bridge fleet: --timeout must be positive", file=sys.stderr)
        return ExitStatus.USAGE
    servers = command_servers("fleet", servers)
    if servers is None:
        return ExitStatus.USAGE
    quiet = QUIET if quiet is None else quiet

    @defer.inlineCallbacks
    def main(reactor):
        client = yield defer.ensureDeferred(connect_once("fleet", servers, reactor))
        if client is None:  # refused, unreachable, TLS, auth: nothing was asked
            return ExitStatus.UNREACHABLE
        last_seen = read_last_statuses(JetStream(client, timeout=timeout))
        last_seen.addErrback(_no_last_seen, NatsError)
        try:
            infos, stats, statuses = yield defer.gatherResults([
                gather(client, f"$SRV.INFO.{SERVICE_NAME}", reactor, timeout=timeout, quiet=quiet),
                gather(client, f"$SRV.STATS.{SERVICE_NAME}", reactor, timeout=timeout, quiet=quiet),
                last_seen,
            ], consumeErrors=True)
        except defer.FirstError as error:
            print(f"bridge fleet: {error.subFailure.getErrorMessage()}", file=sys.stderr)
            return ExitStatus.FAILED
        finally:
            yield client.close()
        entries = build_entries(decode_answers(infos, INFO_RESPONSE), decode_answers(stats, STATS_RESPONSE))
        entries = add_last_seen(entries, statuses)
        if as_json:
            print(json.dumps(entries, indent=2))
        else:
            print(format_table(entries))
        return ExitStatus.OK

    return run_command(main)


def _no_last_seen(failure, error_type):
    """Reading the status stream failed (timeout, permissions): list what answered, say why."""
    failure.trap(error_type)
    print(f"bridge fleet: no last-seen data: {failure.getErrorMessage()}", file=sys.stderr)
    return None
