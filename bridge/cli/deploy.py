"""`bridge deploy`: store one config for many Pis in a NATS key-value bucket.

The file is a *stored config* (version, vars, subscriptions, publications) checked exactly as each
Pi will check it (`load_stored`, with a placeholder device id). Nothing is stored unless it is
valid. The key's history (the bucket keeps 10 revisions) is what `--history` lists and what
`--rollback` goes back in: it stores the previous revision's text as a new revision, so every Pi
follows it like any other change. Like `bridge send`, a one-shot command tries each server once.

Exit status: 0 stored (or valid with --dry-run, or listed), 1 invalid file or nothing to roll
back to, 2 bad usage or no server reachable.
"""

from __future__ import annotations

import sys
from typing import Sequence

from bridge.config.model import BridgeConfig, DeviceConfig, FleetConfig, NatsConfig

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2
HISTORY = 10


def placeholder_bootstrap(device_id: str, source: str) -> BridgeConfig:
    """What a Pi's bootstrap gives the stored config: here only a device id to resolve `${device.id}`."""
    return BridgeConfig(device=DeviceConfig(id=device_id), nats=NatsConfig(servers=("nats://127.0.0.1:4222",)),
                        source=source, fleet=FleetConfig(key="-"))


def check_stored_file(path: str, device_id: str):
    """(text, config) of a valid stored config file; raises ConfigError (ConfigFileError: unreadable)."""
    from bridge.config import load_stored
    from bridge.config.loader import read_text

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


def deploy(file: str | None, key: str, bucket: str, servers: Sequence[str], *, dry_run: bool = False,
           rollback: bool = False, history: bool = False, device_id: str = "example") -> int:
    from bridge.config import ConfigError, ConfigFileError
    from bridge.nats.jetstream.kv import validate_bucket, validate_key

    try:
        validate_key(key)
        validate_bucket(bucket)
    except ValueError as error:
        print(f"bridge deploy: {error}", file=sys.stderr)
        return EXIT_USAGE
    text = None
    if not (rollback or history):
        if file is None:
            print("bridge deploy: FILE is required (or --rollback / --history)", file=sys.stderr)
            return EXIT_USAGE
        try:
            text, config = check_stored_file(file, device_id)
        except ConfigError as error:
            print(error, file=sys.stderr)
            return EXIT_USAGE if isinstance(error, ConfigFileError) else EXIT_INVALID
        if dry_run:
            print(f"{file}: ok: {len(config.subscriptions)} subscription(s), {len(config.publications)} "
                  f"publication(s) for device {device_id}; not stored (--dry-run)")
            return EXIT_OK
    elif file is not None:
        print("bridge deploy: --rollback and --history take no FILE", file=sys.stderr)
        return EXIT_USAGE
    return _with_bucket(servers, bucket, create=text is not None,
                        work=lambda kv: _store(kv, key, text, file) if text is not None
                        else _rollback(kv, key, device_id) if rollback else _history(kv, key))


def _with_bucket(servers: Sequence[str], bucket: str, *, create: bool, work) -> int:
    from bridge.cli.connect import command_servers, connect_once, run_command
    from bridge.cli.fleet import ensure_status_stream
    from bridge.nats import NatsError
    from bridge.nats.errors import BucketNotFoundError
    from bridge.nats.jetstream.kv import create_key_value
    from bridge.nats.jetstream.streams import JetStream

    servers = command_servers("deploy", servers)
    if servers is None:
        return EXIT_USAGE
    outcome = {"exit": EXIT_OK}

    async def main(reactor):
        client = await connect_once("deploy", servers, reactor)
        if client is None:
            outcome["exit"] = EXIT_USAGE
            return
        try:
            js = JetStream(client)
            try:
                kv = await _bucket_during_elections(js, bucket, reactor)
            except BucketNotFoundError:
                if not create:
                    print(f"bridge deploy: no bucket {bucket!r}: nothing deployed yet", file=sys.stderr)
                    outcome["exit"] = EXIT_INVALID
                    return
                replicas = replicas_for(client.server_info)
                kv = await create_key_value(js, bucket, history=HISTORY, replicas=replicas,
                                            description="bridge configs (bridge deploy)")
                print(f"created bucket {bucket} (history {HISTORY}, {replicas} replica(s))", file=sys.stderr)
            if create:
                # The stream `bridge fleet` reads "last seen" from: set up with the first deploy.
                await ensure_status_stream(js, replicas=replicas_for(client.server_info))
            outcome["exit"] = await work(kv)
        except NatsError as error:
            print(f"bridge deploy: {error}", file=sys.stderr)
            outcome["exit"] = EXIT_USAGE
        finally:
            await client.close()

    return run_command(main, outcome, EXIT_USAGE)


# Right after a cluster node dies, JetStream API requests time out until the stream has elected a
# new leader (a few seconds): asking again is what a user would do by hand.
LEADER_ELECTION_WAIT = 15.0


async def _bucket_during_elections(js, bucket: str, reactor):
    """`key_value(js, bucket)`, asked again while it times out, for up to LEADER_ELECTION_WAIT s."""
    from twisted.internet import task

    from bridge.nats.errors import NatsTimeoutError
    from bridge.nats.jetstream.kv import key_value

    deadline = reactor.seconds() + LEADER_ELECTION_WAIT
    while True:
        try:
            return await key_value(js, bucket)
        except NatsTimeoutError as error:
            if reactor.seconds() >= deadline:
                raise
            print(f"bridge deploy: {error}; asking again (a cluster may be electing a leader)", file=sys.stderr)
            await task.deferLater(reactor, 0.5)


async def _store(kv, key: str, text: str, file: str) -> int:
    revision = await kv.put(key, text.encode())
    print(f"stored {file} as kv:{kv.bucket}/{key}@{revision}")
    print(revision)
    return EXIT_OK


async def _rollback(kv, key: str, device_id: str) -> int:
    from bridge.config import ConfigError, load_stored
    from bridge.nats.jetstream.kv import PUT

    entries = await kv.history(key)
    if not entries or entries[-1].operation != PUT:
        print(f"bridge deploy: kv:{kv.bucket}/{key} has no current value to roll back from", file=sys.stderr)
        return EXIT_INVALID
    current = entries[-1]
    previous = [entry for entry in entries[:-1] if entry.operation == PUT and entry.value != current.value]
    if not previous:
        print(f"bridge deploy: kv:{kv.bucket}/{key}@{current.revision} has no earlier revision to go back to",
              file=sys.stderr)
        return EXIT_INVALID
    target = previous[-1]
    source = f"kv:{kv.bucket}/{key}@{target.revision}"
    try:
        load_stored(target.value.decode("utf-8", "replace"), placeholder_bootstrap(device_id, source), source)
    except ConfigError as error:
        print(error, file=sys.stderr)
        print(f"bridge deploy: not rolling back to the invalid {source}", file=sys.stderr)
        return EXIT_INVALID
    revision = await kv.update(key, target.value, current.revision)
    print(f"rolled back kv:{kv.bucket}/{key} to the content of revision {target.revision} as revision {revision}")
    print(revision)
    return EXIT_OK


async def _history(kv, key: str) -> int:
    entries = await kv.history(key)
    if not entries:
        print(f"bridge deploy: kv:{kv.bucket}/{key} has no revisions", file=sys.stderr)
        return EXIT_INVALID
    for entry in entries:
        when = entry.created.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        what = f"{len(entry.value)} bytes" if entry.operation == "PUT" else entry.operation
        current = "  (current)" if entry is entries[-1] else ""
        print(f"{entry.revision:>6}  {when}  {what}{current}")
    return EXIT_OK
