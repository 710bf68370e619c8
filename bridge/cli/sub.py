"""`bridge sub`: watch a subject from the command line, one readable line per message.

What `nats sub` does, without installing it, and knowing this project's documents: a reading
prints as `sensor value unit`, a reply or any other JSON as compact JSON, anything else as text.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from typing import Any

from twisted.internet import defer

from bridge.cli.connect import command_servers, connect_once, run_command
from bridge.cli.exit import ExitStatus
from bridge.nats.subjects import validate_subject


def command(args: argparse.Namespace) -> int:
    return watch(args.subject, args.servers, count=args.count, as_json=args.as_json)


def decoded(payload: bytes) -> Any:
    """The payload as JSON when it is JSON, else as text (invalid UTF-8 shown as U+FFFD)."""
    text = payload.decode("utf-8", "replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


def summary(payload: bytes) -> str:
    """A message in a few words: a reading's sensor, value and unit; other JSON compact; text escaped
    (a control character cannot move the cursor or clear the user's terminal)."""
    value = decoded(payload)
    if isinstance(value, dict) and {"sensor", "value"} <= value.keys():
        reading = value["value"]
        shown = json.dumps(reading, separators=(", ", ": ")) if isinstance(reading, (dict, list)) else str(reading)
        unit = f" {value['unit']}" if value.get("unit") else ""
        return f"{value['sensor']} {shown}{unit}"
    if isinstance(value, str):
        return value.encode("unicode_escape").decode("ascii") if not value.isprintable() else value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def line(msg, as_json: bool, now: datetime) -> str:
    if as_json:
        document = {"subject": msg.subject, "data": decoded(msg.payload)}
        if msg.reply:
            document["reply"] = msg.reply
        return json.dumps(document, separators=(",", ":"), ensure_ascii=False)
    return f"{now:%H:%M:%S.%f}"[:-3] + f" {msg.subject}  {summary(msg.payload)}"


def watch(subject: str, servers=(), count: int | None = None, as_json: bool = False) -> ExitStatus:
    problem = validate_subject(subject, wildcards=True)
    if problem:
        print(f"bridge sub: {problem}", file=sys.stderr)
        return ExitStatus.USAGE
    if count is not None and count < 1:
        print("bridge sub: --count must be at least 1", file=sys.stderr)
        return ExitStatus.USAGE
    servers = command_servers("sub", servers)
    if servers is None:
        return ExitStatus.USAGE

    @defer.inlineCallbacks
    def main(reactor):
        client = yield defer.ensureDeferred(connect_once("sub", servers, reactor))
        if client is None:
            return ExitStatus.UNREACHABLE
        done = defer.Deferred()
        seen = 0

        def on_message(msg) -> None:
            nonlocal seen
            if done.called:
                return
            print(line(msg, as_json, datetime.now()), flush=True)
            seen += 1
            if count is not None and seen >= count:
                done.callback(ExitStatus.OK)

        def on_closed(*_) -> None:
            if not done.called:
                print("bridge sub: the connection to the server was lost", file=sys.stderr)
                done.callback(ExitStatus.UNREACHABLE)

        stopping = []

        def on_shutdown() -> None:  # Ctrl-C: the reactor stops, so there is no waiting for a goodbye
            stopping.append(True)
            if not done.called:
                done.callback(ExitStatus.OK)

        reactor.addSystemEventTrigger("before", "shutdown", on_shutdown)
        client.add_listener("closed", on_closed)
        client.subscribe(subject, on_message)
        yield client.flush()
        print(f"listening on {subject} at {client.connected_url} (Ctrl-C stops)", file=sys.stderr, flush=True)
        status = yield done
        if client.is_connected and not stopping:
            yield client.close()
        return status

    return run_command(main)
