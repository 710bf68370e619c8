"""`bridge fleet`: every running bridge on a NATS system, from the services protocol (bridge/runtime/srv.py).

First the device ids known from the status stream (below), then one scatter-gather on
`$SRV.INFO.bridge` and one on `$SRV.STATS.bridge`, at once, each collecting answers until `--timeout`
or until every known device id answered; without known ids, until none came for a quarter of the
timeout. The answers are joined by instance id (bridge/fleet/listing.py), each with how long it took
(INFO). A device id that more than one bridge reports is flagged: its commands reach all of them.
Like `bridge send` it tries each server once (UNREACHABLE when none took the connection); OK when
it ran, whatever it found.

Last seen: when the JetStream stream `BRIDGE_STATUS` exists (it captures `bridge.*.status` and keeps
the last message per subject; bridge/fleet/status.py), `bridge fleet` also reads the last
status of every device id in it, and lists the devices that did not answer `$SRV` as not answering,
with the server's time of their last status and what it said (`offline` after a graceful stop,
`online` when the process died without a goodbye): a bridge that answers late, within the timeout,
is listed as answering. Without JetStream or without that stream the listing is only what `$SRV`
answered.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence

from twisted.internet import defer

from bridge.cli.connect import command_servers, connect_once, run_command
from bridge.cli.exit import ExitStatus
from bridge.fleet.listing import add_last_seen, build_entries, format_table
from bridge.fleet.status import read_last_statuses
from bridge.nats.errors import NatsError
from bridge.nats.jetstream.streams import JetStream
from bridge.runtime.srv import (INFO_RESPONSE, SERVICE_NAME, STATS_RESPONSE, answered_by_all, decode_answers, gather,
                                timed_documents)

DEFAULT_TIMEOUT = 2.0


def quiet_period(timeout: float) -> float:
    """Without a list of who should answer: the answers are taken as all in once none came for
    this long; a quarter of the timeout, so a longer timeout also waits longer for a slow bridge."""
    return max(0.2, timeout / 4)


def command(args: argparse.Namespace) -> int:
    return run_fleet(args.servers, as_json=args.as_json, timeout=args.timeout)


def run_fleet(servers: Sequence[str] = (), as_json: bool = False, timeout: float = DEFAULT_TIMEOUT) -> ExitStatus:
    if timeout <= 0:
        print("bridge fleet: --timeout must be positive", file=sys.stderr)
        return ExitStatus.USAGE
    servers = command_servers("fleet", servers)
    if servers is None:
        return ExitStatus.USAGE

    @defer.inlineCallbacks
    def main(reactor):
        client = yield defer.ensureDeferred(connect_once("fleet", servers, reactor))
        if client is None:  # refused, unreachable, TLS, auth: nothing was asked
            return ExitStatus.UNREACHABLE
        try:
            statuses = yield read_last_statuses(JetStream(client, timeout=timeout)).addErrback(_no_last_seen, NatsError)
            known = set(statuses or ())
            infos, stats = yield defer.gatherResults([
                gather(client, f"$SRV.{verb}.{SERVICE_NAME}", reactor, timeout=timeout,
                       **({"until": answered_by_all(known)} if known else {"quiet": quiet_period(timeout)}))
                for verb in ("INFO", "STATS")
            ], consumeErrors=True)
        except defer.FirstError as error:
            print(f"bridge fleet: {error.subFailure.getErrorMessage()}", file=sys.stderr)
            return ExitStatus.FAILED
        finally:
            yield client.close()
        timed = timed_documents(infos, INFO_RESPONSE)
        latencies = {document.get("id"): latency for document, latency in timed}
        entries = build_entries([document for document, _ in timed], decode_answers(stats, STATS_RESPONSE),
                                latencies=latencies)
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
