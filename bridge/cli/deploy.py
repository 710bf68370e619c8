"""`bridge deploy`: store one config for many Pis in a NATS key-value bucket.

The file is a *stored config* (version, vars, subscriptions, publications) checked exactly as each
Pi will check it (`load_stored`, with a placeholder device id). Nothing is stored unless it is
valid. The key's history (the bucket keeps 10 revisions) is what `--history` lists and what
`--rollback` goes back in: it stores the previous revision's text as a new revision, so every Pi
follows it like any other change. Like `bridge send`, a one-shot command tries each server once.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from twisted.internet import task

from bridge import timestamps
from bridge.cli.configs import config_error_status
from bridge.cli.connect import command_servers, connect_once, run_command
from bridge.cli.exit import ExitStatus
from bridge.config import ConfigError, load_stored
from bridge.config.loader import read_text
from bridge.config.model import BridgeConfig, DeviceConfig, FleetConfig, NatsConfig
from bridge.config.sources import kv_key, kv_source
from bridge.fleet.status import ensure_status_stream
from bridge.nats.errors import BucketNotFoundError, NatsError, NatsTimeoutError
from bridge.nats.jetstream.kv import PUT, create_key_value, key_value, validate_bucket, validate_key
from bridge.nats.jetstream.streams import JetStream

HISTORY = 10


def placeholder_bootstrap(device_id: str, source: str) -> BridgeConfig:
    """What a Pi's bootstrap gives the stored config: here only a device id to resolve `${device.id}`."""
    return BridgeConfig(device=DeviceConfig(id=device_id), nats=NatsConfig(servers=("nats://127.0.0.1:4222",)),
                        source=source, fleet=FleetConfig(key="-"))


def check_stored_file(path: str, device_id: str):
    """(text, config) of a valid stored config file; raises ConfigError (ConfigFileError: unreadable)."""
    text = read_text(path)
    return text, load_stored(text, placeholder_bootstrap(device_id, path), path)


def cluster_size(info: dict) -> int:
    """How many servers the cluster has, from a server's INFO: its `connect_urls` list every
    server's client address, the one answering included once it knows its routes."""
    urls = set(info.get("connect_urls") or ())
    own = f"{info.get('host')}:{info.get('port')}"
    return max(1, len(urls) + (0 if own in urls or not urls else 1))


def replicas_for(info: dict) -> int:
    return min(3, cluster_size(info))


def command(args: argparse.Namespace) -> int:
    return deploy(args.file, args.key, args.bucket, args.servers, dry_run=args.dry_run, rollback=args.rollback,
                  history=args.history, device_id=args.device_id)


def deploy(file: str | None, key: str, bucket: str, servers: Sequence[str], *, dry_run: bool = False,
           rollback: bool = False, history: bool = False, device_id: str = "example") -> ExitStatus:
    try:
        validate_key(key)
        validate_bucket(bucket)
    except ValueError as error:
        print(f"bridge deploy: {error}", file=sys.stderr)
        return ExitStatus.USAGE
    text = None
    if not (rollback or history):
        if file is None:
            print("bridge deploy: FILE is required (or --rollback / --history)", file=sys.stderr)
            return ExitStatus.USAGE
        try:
            text, config = check_stored_file(file, device_id)
        except ConfigError as error:
            print(error, file=sys.stderr)
            return config_error_status(error)
        if dry_run:
            print(f"{file}: ok: {len(config.subscriptions)} subscription(s), {len(config.publications)} "
                  f"publication(s) for device {device_id}; not stored (--dry-run)")
            return ExitStatus.OK
    elif file is not None:
        print("bridge deploy: --rollback and --history take no FILE", file=sys.stderr)
        return ExitStatus.USAGE
    return _with_bucket(servers, bucket, create=text is not None,
                        work=lambda kv: _store(kv, key, text, file) if text is not None
                        else _rollback(kv, key, device_id) if rollback else _history(kv, key))


def _with_bucket(servers: Sequence[str], bucket: str, *, create: bool, work) -> ExitStatus:
    servers = command_servers("deploy", servers)
    if servers is None:
        return ExitStatus.USAGE

    async def main(reactor) -> ExitStatus:
        client = await connect_once("deploy", servers, reactor)
        if client is None:
            return ExitStatus.UNREACHABLE
        try:
            js = JetStream(client)
            try:
                kv = await _bucket_during_elections(js, bucket, reactor)
            except BucketNotFoundError:
                if not create:
                    print(f"bridge deploy: no bucket {bucket!r}: nothing deployed yet", file=sys.stderr)
                    return ExitStatus.FAILED
                replicas = replicas_for(client.server_info)
                kv = await create_key_value(js, bucket, history=HISTORY, replicas=replicas,
                                            description="bridge configs (bridge deploy)")
                print(f"created bucket {bucket} (history {HISTORY}, {replicas} replica(s))", file=sys.stderr)
            if create:
                # The stream `bridge fleet` reads "last seen" from: set up with the first deploy.
                await ensure_status_stream(js, replicas=replicas_for(client.server_info))
            return await work(kv)
        except NatsError as error:  # a lost compare-and-set, a server error, no leader in time
            print(f"bridge deploy: {error}", file=sys.stderr)
            return ExitStatus.FAILED
        finally:
            await client.close()

    return run_command(main)


# Right after a cluster node dies, JetStream API requests time out until the stream has elected a
# new leader (a few seconds): asking again is what a user would do by hand.
LEADER_ELECTION_WAIT = 15.0


async def _bucket_during_elections(js, bucket: str, reactor):
    """`key_value(js, bucket)`, asked again while it times out, for up to LEADER_ELECTION_WAIT s."""
    deadline = reactor.seconds() + LEADER_ELECTION_WAIT
    while True:
        try:
            return await key_value(js, bucket)
        except NatsTimeoutError as error:
            if reactor.seconds() >= deadline:
                raise
            print(f"bridge deploy: {error}; asking again (a cluster may be electing a leader)", file=sys.stderr)
            await task.deferLater(reactor, 0.5)


async def _store(kv, key: str, text: str, file: str) -> ExitStatus:
    revision = await kv.put(key, text.encode())
    print(f"stored {file} as {kv_source(kv.bucket, key, revision)}")
    print(revision)
    return ExitStatus.OK


async def _rollback(kv, key: str, device_id: str) -> ExitStatus:
    entries = await kv.history(key)
    if not entries or entries[-1].operation != PUT:
        print(f"bridge deploy: {kv_key(kv.bucket, key)} has no current value to roll back from", file=sys.stderr)
        return ExitStatus.FAILED
    current = entries[-1]
    previous = [entry for entry in entries[:-1] if entry.operation == PUT and entry.value != current.value]
    if not previous:
        print(f"bridge deploy: {kv_source(kv.bucket, key, current.revision)} has no earlier revision to go back to",
              file=sys.stderr)
        return ExitStatus.FAILED
    target = previous[-1]
    source = kv_source(kv.bucket, key, target.revision)
    try:
        load_stored(target.value.decode("utf-8", "replace"), placeholder_bootstrap(device_id, source), source)
    except ConfigError as error:
        print(error, file=sys.stderr)
        print(f"bridge deploy: not rolling back to the invalid {source}", file=sys.stderr)
        return ExitStatus.FAILED
    revision = await kv.update(key, target.value, current.revision)
    print(f"rolled back {kv_key(kv.bucket, key)} to the content of revision {target.revision} as revision {revision}")
    print(revision)
    return ExitStatus.OK


async def _history(kv, key: str) -> ExitStatus:
    entries = await kv.history(key)
    if not entries:
        print(f"bridge deploy: {kv_key(kv.bucket, key)} has no revisions", file=sys.stderr)
        return ExitStatus.FAILED
    for entry in entries:
        when = timestamps.format_utc(entry.created)
        what = f"{len(entry.value)} bytes" if entry.operation == PUT else entry.operation
        current = "  (current)" if entry is entries[-1] else ""
        print(f"{entry.revision:>6}  {when}  {what}{current}")
    return ExitStatus.OK
