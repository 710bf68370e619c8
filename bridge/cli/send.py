"""`bridge send`: publish one message (or make one request) from the command line.

Unlike the bridge, a one-shot command must not retry
forever: it tries each server once, in the order given, and exits UNREACHABLE with the reason.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence

from twisted.internet import defer

from bridge.cli.connect import command_servers, connect_once, run_command
from bridge.cli.exit import ExitStatus
from bridge.nats import NatsError, NatsTimeoutError, NoRespondersError
from bridge.nats.subjects import validate_subject


def command(args: argparse.Namespace) -> int:
    return send_message(args.subject, args.text, args.servers, request=args.request,
                        as_json=args.as_json, timeout=args.timeout, check=args.check)


def build_payload(text: Sequence[str], as_json: bool, stdin=None) -> bytes:
    """TEXT words joined by spaces, or stdin for `-`; `--json` checks it parses and sends it compact.

    Raises ValueError for a usage problem: `--json` with nothing to send, or text that is not JSON.
    """
    if list(text) == ["-"]:
        stream = stdin if stdin is not None else sys.stdin.buffer
        raw = stream.read()
        data = raw if isinstance(raw, bytes) else raw.encode()
    else:
        data = " ".join(text).encode()
    if as_json:
        if not data.strip():
            raise ValueError("--json: no payload given (TEXT, or '-' for stdin)")
        try:
            value = json.loads(data)
        except ValueError as error:
            raise ValueError(f"--json: payload is not valid JSON: {error}") from None
        data = json.dumps(value, separators=(",", ":")).encode()
    return data


def reply_failed(payload: bytes) -> bool:
    """A bridge reply of the form {"ok": false, ...}."""
    try:
        value = json.loads(payload)
    except ValueError:
        return False
    return isinstance(value, dict) and value.get("ok") is False


def failure_message(error: Exception, subject: str, request: bool, timeout: float) -> str:
    """Why a connected send failed, in the user's terms: a publish has no reply to wait for."""
    if isinstance(error, NoRespondersError):
        return f"no responders on {subject}"
    if isinstance(error, NatsTimeoutError):
        if request:
            return (f"no reply on {subject} within {timeout:g}s (a bridge replies once the action is done: a long "
                    f"scroll takes longer, so raise --timeout, or use notify, which replies when accepted)")
        return f"the server did not confirm the publish on {subject} within {timeout:g}s"
    return str(error)


async def publish_checked(client, subject: str, payload: bytes, timeout: float) -> bool:
    """Publish once with a reply subject, so the server answers "no responders" (status 503) when
    nothing subscribes. The server handles one connection's frames in order, so that status arrives
    before the flush's PONG: after the flush, no status means some subscriber got the message.
    Subscribers see an ordinary message (with a reply subject they may ignore)."""
    statuses = []
    inbox = client.new_inbox()
    subscription = client.subscribe(inbox, lambda msg: statuses.append(msg.status))
    try:
        client.publish(subject, payload, reply=inbox)
        await client.flush(timeout=timeout)
    finally:
        client.unsubscribe(subscription)
    return 503 not in statuses


def send_message(
    subject: str,
    text: Sequence[str],
    servers: Sequence[str] = (),
    request: bool = False,
    as_json: bool = False,
    timeout: float = 5.0,
    check: bool = False,
) -> ExitStatus:
    problem = validate_subject(subject, wildcards=False)
    if problem:
        print(f"bridge send: {problem}", file=sys.stderr)
        return ExitStatus.USAGE
    try:
        payload = build_payload(text, as_json)
    except ValueError as error:
        print(f"bridge send: {error}", file=sys.stderr)
        return ExitStatus.USAGE
    servers = command_servers("send", servers)
    if servers is None:
        return ExitStatus.USAGE

    @defer.inlineCallbacks
    def main(reactor):
        client = yield defer.ensureDeferred(connect_once("send", servers, reactor))
        if client is None:
            return ExitStatus.UNREACHABLE
        try:
            if request:
                reply = yield client.request(subject, payload, timeout=timeout)
                sys.stdout.write(reply.payload.decode("utf-8", "replace") + "\n")
                if reply_failed(reply.payload):
                    return ExitStatus.FAILED
            elif check:
                received = yield defer.ensureDeferred(publish_checked(client, subject, payload, timeout))
                if not received:
                    print(f"bridge send: nothing subscribes to {subject}: the message reached no one",
                          file=sys.stderr)
                    return ExitStatus.FAILED
                print(f"published {len(payload)} bytes to {subject} (it reached a subscriber)", file=sys.stderr)
            else:
                client.publish(subject, payload)
                yield client.flush(timeout=timeout)
                print(f"published {len(payload)} bytes to {subject}", file=sys.stderr)
        except (NatsError, ValueError) as error:
            print(f"bridge send: {failure_message(error, subject, request, timeout)}", file=sys.stderr)
            return ExitStatus.FAILED
        finally:
            yield client.close()
        return ExitStatus.OK

    return run_command(main)
