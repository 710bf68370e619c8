"""`bridge send`: publish one message (or make one request) from the command line.

The seed's `send_sense.py` as a subcommand. Unlike the bridge, a one-shot command must not retry
forever: it tries each server once and exits 1 with the reason.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Sequence

DEFAULT_SERVER = "nats://127.0.0.1:4222"


def build_payload(text: Sequence[str], as_json: bool, stdin=None) -> bytes:
    """TEXT words joined by spaces, or stdin for `-`; `--json` checks it parses and sends it compact."""
    if list(text) == ["-"]:
        stream = stdin if stdin is not None else sys.stdin.buffer
        raw = stream.read()
        data = raw if isinstance(raw, bytes) else raw.encode()
    else:
        data = " ".join(text).encode()
    if as_json:
        try:
            value = json.loads(data or b"null")
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


def send_message(
    subject: str,
    text: Sequence[str],
    servers: Sequence[str] = (),
    request: bool = False,
    as_json: bool = False,
    timeout: float = 5.0,
) -> int:
    from bridge.nats.subjects import validate_subject

    problem = validate_subject(subject, wildcards=False)
    if problem:
        print(f"bridge send: {problem}", file=sys.stderr)
        return 2
    try:
        payload = build_payload(text, as_json)
    except ValueError as error:
        print(f"bridge send: {error}", file=sys.stderr)
        return 2
    servers = list(servers) or [os.environ.get("NATS_URL", DEFAULT_SERVER)]

    from twisted.internet import defer, task

    from bridge.nats import Client, NatsError, NatsTimeoutError, NoRespondersError

    outcome = {"exit": 0}

    @defer.inlineCallbacks
    def main(reactor):
        client = Client(servers=servers, name="bridge-send", randomize=False, max_attempts=1, reactor=reactor)
        try:
            yield client.connect()
        except Exception as error:  # refused, unreachable, TLS, auth: all end the one-shot command
            print(f"bridge send: cannot connect to {', '.join(servers)}: {error}", file=sys.stderr)
            outcome["exit"] = 1
            return
        try:
            if request:
                reply = yield client.request(subject, payload, timeout=timeout)
                sys.stdout.write(reply.payload.decode("utf-8", "replace") + "\n")
                if reply_failed(reply.payload):
                    outcome["exit"] = 1
            else:
                client.publish(subject, payload)
                yield client.flush(timeout=timeout)
        except NoRespondersError:
            print(f"bridge send: no responders on {subject}", file=sys.stderr)
            outcome["exit"] = 1
        except NatsTimeoutError:
            print(f"bridge send: no reply on {subject} within {timeout:g}s", file=sys.stderr)
            outcome["exit"] = 1
        except (NatsError, ValueError) as error:
            print(f"bridge send: {error}", file=sys.stderr)
            outcome["exit"] = 1
        finally:
            yield client.close()

    try:
        task.react(main)
    except SystemExit as done:
        if done.code not in (0, None):
            return int(done.code) if isinstance(done.code, int) else 1
    return outcome["exit"]
