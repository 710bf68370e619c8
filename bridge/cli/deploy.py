"""`bridge deploy`: store one config for many Pis in a NATS key-value bucket, and say what they did.

The file is a *stored config* (version, vars, subscriptions, publications) checked exactly as each
Pi will check it (`check_stored`: `load_stored` with a bootstrap built for a device id).
Nothing is stored unless it is valid, and nothing is overwritten unseen: the write is a
compare-and-set against the revision read before it (create when the key has none), so a deploy
that lost a race to another one stores nothing and exits CONFLICT.

The key's history (the bucket keeps 10 revisions) is what `--history` lists, `--show` prints and
`--rollback` goes back in: a rollback stores an earlier revision's text as a new revision marked
with the headers `Bridge-Rollback-Of` / `Bridge-Rollback-To`, so every Pi follows it like any other
change and a second rollback goes on back from where the first one went (`rollback_target`).

After a store, the bridges following the key report through `$SRV` metadata whether they applied
or refused the new revision (bridge/fleet/rollout.py): a short summary by default, `--wait` to wait
for every one and make the exit status say how it went. Like `bridge send`, a one-shot command
tries each server once.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from collections import Counter
from typing import Callable, Iterable, Sequence

from twisted.internet import task

from bridge import timestamps
from bridge.cli.configs import config_error_status
from bridge.cli.connect import command_servers, connect_once, run_command
from bridge.cli.exit import ExitStatus
from bridge.config import ConfigError, stored_text
from bridge.config.loader import EXAMPLE_ID, check_stored, read_text
from bridge.config.model import BridgeConfig
from bridge.config.sources import kv_key, kv_source, parse_source
from bridge.fleet.rollout import DECIDED, Outcome, State, await_rollout, expected_followers, followers, look
from bridge.fleet.status import ensure_status_stream, read_last_statuses
from bridge.nats.errors import (
    BucketNotFoundError,
    KeyWrongLastSequenceError,
    NatsError,
    NatsTimeoutError,
    PermissionViolationError,
)
from bridge.nats.jetstream.kv import PUT, KvEntry, create_key_value, key_value, validate_bucket, validate_key
from bridge.nats.jetstream.streams import JetStream, replicas_for
from bridge.nats.protocol import Headers
from bridge.telemetry.durable import ensure_stream, stream_subjects

HISTORY = 10
SUMMARY_WAIT = 2.0  # seconds the default summary waits for the fleet; it never changes the exit status
FLEET_LOOK = 2.0  # seconds `--dry-run --fleet` and `--history` ask $SRV for the followers
ROLLBACK_OF = "Bridge-Rollback-Of"
ROLLBACK_TO = "Bridge-Rollback-To"


@dataclass(frozen=True)
class Deploy:
    """What the command line asks for; exactly one of `file`, `rollback`, `history`, `show`."""

    key: str
    file: str | None = None
    bucket: str = "bridge_config"
    servers: Sequence[str] = ()
    dry_run: bool = False
    device_ids: Sequence[str] = ()  # none given: EXAMPLE_ID, or with `fleet` only the followers
    fleet: bool = False
    rollback: bool = False
    to: int | None = None
    history: bool = False
    show: int | None = None
    expect_revision: int | None = None
    wait: float | None = None  # --wait TIMEOUT: wait for every follower and let the outcome set the exit status
    no_wait: bool = False




def rolled_back_to(entry: KvEntry) -> int | None:
    """The revision a rollback entry took its content from (its `Bridge-Rollback-To` header)."""
    value = entry.headers.get(ROLLBACK_TO) if entry.headers is not None else None
    return int(value) if value is not None and value.isdigit() else None


def rollback_target(entries: Sequence[KvEntry], valid: Callable[[KvEntry], bool]) -> KvEntry | None:
    """The revision `--rollback` goes back to: the newest one before the current value's place in
    history (for a rollback, the revision it went back to), that is no rollback itself, differs from
    the current value and is `valid`. None when there is none. So x3 -> x2 -> x1, never back to x3."""
    puts = [entry for entry in entries if entry.operation == PUT]
    if not puts:
        return None
    current = puts[-1]
    place = min(current.revision, rolled_back_to(current) or current.revision)
    for entry in reversed(puts):
        if entry.revision < place and rolled_back_to(entry) is None and entry.value != current.value \
                and valid(entry):
            return entry
    return None


def command(args: argparse.Namespace) -> int:
    return deploy(Deploy(
        key=args.key, file=args.file, bucket=args.bucket, servers=args.servers, dry_run=args.dry_run,
        device_ids=tuple(args.device_ids or ()), fleet=args.fleet, rollback=args.rollback or args.to is not None,
        to=args.to, history=args.history, show=args.show, expect_revision=args.expect_revision, wait=args.wait,
        no_wait=args.no_wait))


def usage_error(request: Deploy) -> str | None:
    """Why this combination of options cannot run, or None."""
    asks = [name for name, given in (("FILE", request.file is not None), ("--rollback", request.rollback),
                                      ("--history", request.history), ("--show", request.show is not None)) if given]
    if len(asks) != 1:
        return "give one of FILE, --rollback (or --to REV), --history, --show REV" if not asks \
            else f"{' and '.join(asks)} do not go together"
    if request.dry_run and request.file is None:
        return "--dry-run checks a FILE"
    if request.fleet and not request.dry_run:
        return "--fleet goes with --dry-run"
    writes = request.file is not None and not request.dry_run or request.rollback
    if not writes and (request.expect_revision is not None or request.wait is not None or request.no_wait):
        return "--expect-revision, --wait and --no-wait go with a deploy or a rollback"
    if request.wait is not None and request.no_wait:
        return "--wait and --no-wait do not go together"
    if request.wait is not None and request.wait <= 0:
        return "--wait takes a positive number of seconds"
    if request.expect_revision is not None and request.expect_revision < 0:
        return "--expect-revision takes a revision, or 0 for a key that must not exist"
    return None


def deploy(request: Deploy) -> ExitStatus:
    try:
        validate_key(request.key)
        validate_bucket(request.bucket)
    except ValueError as error:
        print(f"bridge deploy: {error}", file=sys.stderr)
        return ExitStatus.USAGE
    problem = usage_error(request)
    if problem is not None:
        print(f"bridge deploy: {problem}", file=sys.stderr)
        return ExitStatus.USAGE
    if request.file is None:
        work = _rollback if request.rollback else _history if request.history else _show
        return _connected(request, lambda session: _with_bucket(
            session, request, lambda session, kv: work(session, kv, request), create=False))
    try:
        text = read_text(request.file)
    except ConfigError as error:
        print(error, file=sys.stderr)
        return config_error_status(error)
    if request.dry_run and request.fleet:
        return _connected(request, lambda session: _dry_run_fleet(session, request, text))
    status = check_for_devices(text, request.file, checked_ids(request), verbose=request.dry_run)
    if status != ExitStatus.OK or request.dry_run:
        return status
    return _connected(request, lambda session: _with_bucket(
        session, request, lambda session, kv: _streams_and_store(session, kv, request, text), create=True))


def check_for_devices(text: str, source: str, device_ids: Sequence[str], verbose: bool) -> ExitStatus:
    """Check `text` for each device id, printing the errors (and with `verbose` each id's result);
    FAILED when it is invalid for any of them."""
    status = ExitStatus.OK
    for device_id in device_ids:
        try:
            config = check_stored(text, source, device_id)
        except ConfigError as error:
            if len(device_ids) > 1:
                print(f"{source}: invalid for device {device_id}:", file=sys.stderr)
            print(error, file=sys.stderr)
            status = max(status, config_error_status(error))
            continue
        if verbose:
            print(f"{source}: ok: {len(config.subscriptions)} subscription(s), {len(config.publications)} "
                  f"publication(s) for device {device_id}; not stored (--dry-run)")
    return status


def checked_ids(request: Deploy) -> Sequence[str]:
    return request.device_ids or (EXAMPLE_ID,)


@dataclass
class Session:
    client: object
    reactor: object


def _connected(request: Deploy, work) -> ExitStatus:
    """Connect once (each server tried once) and run `work(session)`; every NATS error ends in one sentence."""
    servers = command_servers("deploy", request.servers)
    if servers is None:
        return ExitStatus.USAGE

    async def main(reactor) -> ExitStatus:
        client = await connect_once("deploy", servers, reactor)
        if client is None:
            return ExitStatus.UNREACHABLE
        try:
            return await run_reporting(work, Session(client, reactor))
        finally:
            await client.close()

    return run_command(main)


async def run_reporting(work, session: Session | None) -> ExitStatus:
    """`await work(session)`; a NATS error ends in one sentence and its exit status."""
    try:
        return await work(session)
    except PermissionViolationError as error:
        print(f"bridge deploy: NATS refused permission to {_refused_action(error)}: this user may not deploy",
              file=sys.stderr)
        return ExitStatus.USAGE
    except NatsError as error:  # a server error, no leader in time
        print(f"bridge deploy: {error}", file=sys.stderr)
        return ExitStatus.FAILED


def _refused_action(error: PermissionViolationError) -> str:
    """`publish to "SUBJ"` from the server's `Permissions Violation for Publish to "SUBJ"`."""
    found = re.search(r"for (publish|subscription) to (\"[^\"]*\"|\S+)", str(error), re.IGNORECASE)
    if found is None:
        return f"do this ({error})"
    verb = "publish" if found.group(1).lower() == "publish" else "subscribe"
    return f"{verb} to {found.group(2)}"


async def _with_bucket(session: Session, request: Deploy, work, *, create: bool) -> ExitStatus:
    client, reactor = session.client, session.reactor
    js = JetStream(client)
    try:
        kv = await _bucket_during_elections(js, request.bucket, reactor)
    except BucketNotFoundError:
        if not create:
            print(f"bridge deploy: no bucket {request.bucket!r}: nothing deployed yet", file=sys.stderr)
            return ExitStatus.FAILED
        replicas = replicas_for(client.server_info)
        kv = await create_key_value(js, request.bucket, history=HISTORY, replicas=replicas,
                                    description="bridge configs (bridge deploy)")
        print(f"created bucket {request.bucket} (history {HISTORY}, {replicas} replica(s))", file=sys.stderr)
    if create:
        # The stream `bridge fleet` reads "last seen" from: set up with the first deploy.
        await ensure_status_stream(js, replicas=replicas_for(client.server_info))
    return await work(session, kv)


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


# -- storing: compare-and-set -------------------------------------------------------------------------

async def _store(session: Session, kv, request: Deploy, text: str) -> ExitStatus:
    current = await kv.entry(request.key)
    if not _as_expected(kv, request, current):
        return ExitStatus.CONFLICT
    if current is not None and current.operation == PUT and current.value == text.encode():
        print(f"unchanged: {kv_source(kv.bucket, request.key, current.revision)} has this content already; "
              "nothing stored")
        return ExitStatus.OK
    revision = await _compare_and_set(kv, request.key, text.encode(), current)
    if revision is None:
        return ExitStatus.CONFLICT
    return await _report(session, kv, request, revision)


def durable_streams(text: str, source: str, device_ids: Sequence[str]) -> dict[str, list[str]]:
    """The streams the stored config's durable publications publish to, with their subjects as
    each checked device resolves them (the text is already known to be valid)."""
    streams: dict[str, list[str]] = {}
    for device_id in device_ids:
        for publication in check_stored(text, source, device_id).publications:
            if publication.durable is not None:
                streams.setdefault(publication.durable.stream, []).append(publication.subject)
    return streams


async def _streams_and_store(session: Session, kv, request: Deploy, text: str) -> ExitStatus:
    await _ensure_durable_streams(session, request, text)
    return await _store(session, kv, request, text)


async def _ensure_durable_streams(session: Session, request: Deploy, text: str) -> None:
    """Create the streams durable publications need, before any Pi runs the config (a Pi may lack
    the permission to create one)."""
    js = JetStream(session.client)
    replicas = replicas_for(session.client.server_info)
    for name, subjects in durable_streams(text, request.file, checked_ids(request)).items():
        if await ensure_stream(js, name, subjects, replicas) == "created":
            print(f"created stream {name} for durable readings ({', '.join(stream_subjects(subjects))}, "
                  f"{replicas} replica(s))", file=sys.stderr)


def _as_expected(kv, request: Deploy, current: KvEntry | None) -> bool:
    """Whether the key is at `--expect-revision` (0: has no revision), having said why not."""
    at = current.revision if current is not None else 0
    if request.expect_revision is None or request.expect_revision == at:
        return True
    now = f"is at revision {at}" if at else "has no revision"
    print(f"bridge deploy: {kv_key(kv.bucket, request.key)} {now}, not the expected {request.expect_revision}; "
          "nothing stored", file=sys.stderr)
    return False


async def _compare_and_set(kv, key: str, value: bytes, current: KvEntry | None,
                           headers: Headers | None = None) -> int | None:
    """Store `value` only over `current` (the entry read before; None: create); its revision, or
    None (having said who won) when someone else wrote the key meanwhile."""
    try:
        if current is None:
            revision = await kv.create(key, value, headers)
        else:
            revision = await kv.update(key, value, current.revision, headers)
    except KeyWrongLastSequenceError:
        latest = await kv.entry(key)
        what = f"revision {latest.revision}" if latest is not None else "a change"
        print(f"bridge deploy: someone else deployed {what} of {kv_key(kv.bucket, key)} meanwhile; nothing stored: "
              "re-run to deploy over it", file=sys.stderr)
        return None
    replaced = "new key" if current is None else \
        f"replaced {current.revision}" if current.operation == PUT else f"after the {current.operation} marker {current.revision}"
    print(f"stored revision {revision} ({replaced})")
    return revision


# -- what the fleet did -------------------------------------------------------------------------------

SHOWN = {State.APPLIED: "applied", State.SILENT: "not answering"}


def outcome_line(outcome: Outcome, width: int) -> str:
    if outcome.state is State.REFUSED:
        what = f"refused: {outcome.reason}"
    elif outcome.state is State.PENDING:
        what = f"not applied yet (runs revision {outcome.running or '-'})"
    else:
        what = SHOWN[outcome.state]
    return f"{outcome.device.ljust(width)}  {what}"


def rollout_status(outcomes: Sequence[Outcome]) -> ExitStatus:
    """REFUSED if any Pi refused, else NOT_ANSWERED if any did not decide, else OK."""
    if any(outcome.state is State.REFUSED for outcome in outcomes):
        return ExitStatus.REFUSED
    if any(outcome.state not in DECIDED for outcome in outcomes):
        return ExitStatus.NOT_ANSWERED
    return ExitStatus.OK


async def _report(session: Session, kv, request: Deploy, revision: int) -> ExitStatus:
    """After a store: each follower's outcome, one line per Pi; with `--wait` it sets the exit status."""
    if request.no_wait:
        return ExitStatus.OK
    timeout = request.wait if request.wait is not None else SUMMARY_WAIT
    expected = await _known_followers(session, kv.bucket, request.key)
    outcomes = await await_rollout(session.client, session.reactor, kv.bucket, request.key, revision, timeout,
                                   expected)
    if not outcomes:
        print(f"no bridge following {kv_key(kv.bucket, request.key)} answered $SRV", file=sys.stderr)
        return ExitStatus.OK
    width = max(len(outcome.device) for outcome in outcomes)
    for outcome in outcomes:
        print(outcome_line(outcome, width))
    decided = sum(1 for outcome in outcomes if outcome.state in DECIDED)
    if decided < len(outcomes) and request.wait is None:
        print(f"{len(outcomes) - decided} of {len(outcomes)} Pi(s) had not decided after {timeout:g}s; "
              "`bridge deploy --wait` waits longer, `bridge fleet` shows them", file=sys.stderr)
    return rollout_status(outcomes) if request.wait is not None else ExitStatus.OK


async def _known_followers(session: Session, bucket: str, key: str) -> set[str]:
    """The Pis whose last status says they follow the key (none without the status stream, or
    when this user may not read it: the answers to `$SRV` are then all there is)."""
    try:
        statuses = await read_last_statuses(JetStream(session.client))
    except NatsError:
        return set()
    return expected_followers(statuses, bucket, key)


async def _dry_run_fleet(session: Session, request: Deploy, text: str) -> ExitStatus:
    documents = await look(session.client, session.reactor, FLEET_LOOK)
    device_ids = sorted(followers(documents, request.bucket, request.key))
    extra = [device_id for device_id in request.device_ids if device_id not in device_ids]
    if not device_ids and not extra:
        print(f"bridge deploy: no bridge following {kv_key(request.bucket, request.key)} answered $SRV: "
              "no device id to check with", file=sys.stderr)
        return ExitStatus.FAILED
    return check_for_devices(text, request.file, device_ids + extra, verbose=True)


# -- rollback, history, show --------------------------------------------------------------------------

async def _rollback(session: Session, kv, request: Deploy) -> ExitStatus:
    entries = await kv.history(request.key)
    where = kv_key(kv.bucket, request.key)
    puts = [entry for entry in entries if entry.operation == PUT]
    if not puts:
        print(f"bridge deploy: {where} has no stored revision to roll back from", file=sys.stderr)
        return ExitStatus.FAILED
    current, latest = puts[-1], entries[-1]
    if not _as_expected(kv, request, latest):
        return ExitStatus.CONFLICT
    if request.to is not None:
        target = _named_target(entries, request, where)
        if target is None:
            return ExitStatus.FAILED
        if target.value == current.value and latest is current:
            print(f"unchanged: {kv_source(kv.bucket, request.key, current.revision)} has the content of revision "
                  f"{target.revision} already; nothing stored")
            return ExitStatus.OK
    else:
        target = rollback_target(entries, lambda entry: _valid_revision(entry, request))
        if target is None:
            print(f"bridge deploy: {kv_source(kv.bucket, request.key, current.revision)} has no earlier valid revision "
                  "to go back to in the kept history", file=sys.stderr)
            return ExitStatus.FAILED
    headers = Headers([(ROLLBACK_OF, str(current.revision)), (ROLLBACK_TO, str(target.revision))])
    print(f"rolling back {where} from revision {current.revision} to the content of revision {target.revision}")
    revision = await _compare_and_set(kv, request.key, target.value, latest, headers)
    if revision is None:
        return ExitStatus.CONFLICT
    return await _report(session, kv, request, revision)


def _named_target(entries: Sequence[KvEntry], request: Deploy, where: str) -> KvEntry | None:
    """`--to REV`'s entry when it is a kept, valid PUT; else None, having said why."""
    found = [entry for entry in entries if entry.revision == request.to]
    if not found:
        kept = f"{entries[0].revision}-{entries[-1].revision}" if entries else "none"
        print(f"bridge deploy: revision {request.to} of {where} is not in the kept history (revisions {kept})",
              file=sys.stderr)
        return None
    if found[0].operation != PUT:
        print(f"bridge deploy: revision {request.to} of {where} is a {found[0].operation} marker, not a config",
              file=sys.stderr)
        return None
    if not _valid_revision(found[0], request, quiet=False):
        print(f"bridge deploy: not rolling back to the invalid revision {request.to}", file=sys.stderr)
        return None
    return found[0]


def _valid_revision(entry: KvEntry, request: Deploy, quiet: bool = True) -> bool:
    """Whether a stored revision is valid for every `--device-id`; when not, say so on stderr
    (one line when `quiet`: a rollback walking back over it; every error otherwise)."""
    source = kv_source(entry.bucket, entry.key, entry.revision)
    for device_id in checked_ids(request):
        try:
            check_stored(stored_text(entry.value, source), source, device_id)
        except ConfigError as error:
            if quiet:
                print(f"bridge deploy: skipping revision {entry.revision}: invalid for device {device_id}: "
                      f"{error.errors[0]}", file=sys.stderr)
            else:
                print(error, file=sys.stderr)
            return False
    return True


async def _show(session: Session, kv, request: Deploy) -> ExitStatus:
    entries = await kv.history(request.key)
    found = [entry for entry in entries if entry.revision == request.show]
    where = kv_key(kv.bucket, request.key)
    if not found:
        print(f"bridge deploy: revision {request.show} of {where} is not in the kept history", file=sys.stderr)
        return ExitStatus.FAILED
    if found[0].operation != PUT:
        print(f"bridge deploy: revision {request.show} of {where} is a {found[0].operation} marker: it has no text",
              file=sys.stderr)
        return ExitStatus.FAILED
    sys.stdout.write(found[0].value.decode("utf-8", "replace"))
    return ExitStatus.OK


def refusals(metadata: Iterable[dict]) -> dict[int, int]:
    """{revision: how many followers refused it} from their `$SRV` metadata `config_refused`."""
    counts: Counter = Counter()
    for one in metadata:
        revision = parse_source(one.get("config_refused"))["revision"]
        if revision is not None:
            counts[revision] += 1
    return dict(counts)


def history_markers(entry: KvEntry, current: KvEntry | None, refused_by: dict[int, int]) -> list[str]:
    """What `--history` says about one revision besides its time and size."""
    markers = []
    to = rolled_back_to(entry)
    if to is not None:
        markers.append(f"rollback to {to}")
    if entry.operation != PUT:
        markers.append("deleted" if entry.operation == "DEL" else "purged")
    if entry is current:
        markers.append("current")
    if refused_by.get(entry.revision):
        markers.append(f"refused by {refused_by[entry.revision]} Pi(s)")
    return markers


async def _history(session: Session, kv, request: Deploy) -> ExitStatus:
    entries = await kv.history(request.key)
    if not entries:
        print(f"bridge deploy: {kv_key(kv.bucket, request.key)} has no revisions", file=sys.stderr)
        return ExitStatus.FAILED
    documents = await look(session.client, session.reactor, FLEET_LOOK)
    refused_by = refusals(followers(documents, kv.bucket, request.key).values())
    puts = [entry for entry in entries if entry.operation == PUT]
    current = puts[-1] if puts else None
    for entry in entries:
        when = timestamps.format_utc(entry.created)
        size = f"{len(entry.value)} bytes" if entry.operation == PUT else "-"
        markers = ", ".join(history_markers(entry, current, refused_by))
        print(f"{entry.revision:>6}  {when}  {size:>11}  {markers}".rstrip())
    return ExitStatus.OK
