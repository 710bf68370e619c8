"""`bridge deploy`'s decisions in memory (rollback target, history markers, the exit status a rollout
gives, option combinations, error sentences), and its compare-and-set against a real server with
nats-py writing the key between deploy's read and its write."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
import pytest_twisted

from bridge.cli import deploy as cli
from bridge.cli.exit import ExitStatus
from bridge.fleet.rollout import Outcome, State, expected_followers
from bridge.nats.errors import NatsTimeoutError, PermissionViolationError
from bridge.nats.jetstream.kv import DEL, PUT, KvEntry, create_key_value
from bridge.nats.jetstream.streams import JetStream
from bridge.nats.protocol import Headers
from bridge.testing.nats_server import NatsServer
from tests.harness.nats_client import connected
from tests.harness.natspy import NatsPy

WHEN = datetime(2026, 1, 1, tzinfo=timezone.utc)


def put(revision: int, value: str, to: int | None = None) -> KvEntry:
    headers = Headers([(cli.ROLLBACK_OF, str(revision - 1)), (cli.ROLLBACK_TO, str(to))]) if to else None
    return KvEntry("b", "k", value.encode(), revision, WHEN, PUT, headers)


def marker(revision: int, operation: str = DEL) -> KvEntry:
    return KvEntry("b", "k", b"", revision, WHEN, operation)


def always_valid(_entry) -> bool:
    return True


def target(entries, valid=always_valid) -> int | None:
    found = cli.rollback_target(entries, valid)
    return None if found is None else found.revision


# -- rollback_target -----------------------------------------------------------------------------------

def test_two_rollbacks_go_back_twice_never_forth():
    history = [put(1, "x1"), put(2, "x2"), put(3, "x3")]
    assert target(history) == 2
    history.append(put(4, "x2", to=2))
    assert target(history) == 1
    history.append(put(5, "x1", to=1))
    assert target(history) is None


def test_rollback_walks_over_invalid_revisions_earlier_rollbacks_and_the_current_content():
    history = [put(1, "x1"), put(2, "x2"), put(3, "bad"), put(4, "x1", to=1), put(5, "x5"), put(6, "x5")]
    assert target(history, lambda entry: entry.value != b"bad") == 2
    assert target(history) == 3


def test_rollback_after_a_delete_starts_from_the_content_the_pis_still_run():
    assert target([put(1, "x1"), put(2, "x2"), marker(3)]) == 1
    assert target([marker(7, "PURGE")]) is None


def test_a_rollback_marker_is_read_from_the_header():
    assert cli.rolled_back_to(put(4, "x2", to=2)) == 2
    assert cli.rolled_back_to(put(4, "x2")) is None


# -- history markers -----------------------------------------------------------------------------------

def test_history_marks_rollbacks_deletes_the_current_revision_and_refusals():
    current = put(4, "x2", to=2)
    assert cli.history_markers(current, current, {4: 2}) == ["rollback to 2", "current", "refused by 2 Pi(s)"]
    assert cli.history_markers(marker(5), current, {}) == ["deleted"]
    assert cli.history_markers(put(1, "x1"), current, {}) == []
    assert cli.refusals([{"config_refused": "kv:b/k@4"}, {"config_refused": "kv:b/k@4"}, {"config": "kv:b/k@3"}]) \
        == {4: 2}


# -- what the fleet did --------------------------------------------------------------------------------

@pytest.mark.parametrize("states, status", [
    ([State.APPLIED, State.APPLIED], ExitStatus.OK),
    ([State.APPLIED, State.REFUSED, State.SILENT], ExitStatus.REFUSED),
    ([State.APPLIED, State.SILENT], ExitStatus.NOT_ANSWERED),
    ([State.PENDING], ExitStatus.NOT_ANSWERED),
])
def test_the_rollout_sets_the_wait_exit_status(states, status):
    assert cli.rollout_status([Outcome(f"pi-{i}", state) for i, state in enumerate(states)]) == status


def test_one_line_per_pi():
    assert cli.outcome_line(Outcome("pi-3", State.APPLIED, 8), 4) == "pi-3  applied"
    assert cli.outcome_line(Outcome("pi-7", State.REFUSED, 7, "kv:b/k@8:1:1: error: no"), 4) == \
        "pi-7  refused: kv:b/k@8:1:1: error: no"
    assert cli.outcome_line(Outcome("pi-9", State.SILENT), 4) == "pi-9  not answering"
    assert cli.outcome_line(Outcome("pi", State.PENDING, 7), 4) == "pi    not applied yet (runs revision 7)"


# -- options and sentences -----------------------------------------------------------------------------

@pytest.mark.parametrize("request_, problem", [
    (cli.Deploy(key="k"), "give one of FILE"),
    (cli.Deploy(key="k", file="f", history=True), "FILE and --history do not go together"),
    (cli.Deploy(key="k", history=True, wait=5), "go with a deploy or a rollback"),
    (cli.Deploy(key="k", file="f", dry_run=True, expect_revision=3), "go with a deploy or a rollback"),
    (cli.Deploy(key="k", rollback=True, wait=0), "positive"),
])
def test_option_combinations_that_cannot_run(request_, problem):
    assert problem in cli.usage_error(request_)


def test_option_combinations_that_run():
    assert cli.usage_error(cli.Deploy(key="k", rollback=True, to=3, wait=10, expect_revision=7)) is None
    assert cli.usage_error(cli.Deploy(key="k", file="f", dry_run=True, fleet=True, device_ids=("a", "b"))) is None


@pytest_twisted.ensureDeferred
async def test_a_permission_violation_is_one_sentence_and_usage(capsys):
    async def refused(_session):
        raise PermissionViolationError("Permissions Violation for Publish to \"$JS.API.STREAM.INFO.KV_cfg\"")

    assert await cli.run_reporting(refused, None) == ExitStatus.USAGE
    assert capsys.readouterr().err == ("bridge deploy: NATS refused permission to publish to "
                                       "\"$JS.API.STREAM.INFO.KV_cfg\": this user may not deploy\n")


@pytest_twisted.ensureDeferred
async def test_another_nats_error_is_one_sentence_and_failed(capsys):
    async def slow(_session):
        raise NatsTimeoutError("no answer in 5s")

    assert await cli.run_reporting(slow, None) == ExitStatus.FAILED
    assert capsys.readouterr().err == "bridge deploy: no answer in 5s\n"


# -- compare-and-set against a real server, nats-py writing in between ----------------------------------

class SecondWriterBetween:
    """A bucket whose first `entry()` read is followed at once by nats-py putting the key: the race
    a deploy loses when someone else deploys between its read and its write."""

    def __init__(self, kv, nats_py: NatsPy, value: bytes):
        self.kv = kv
        self.nats_py = nats_py
        self.value = value
        self.raced_revision = None

    def __getattr__(self, name):
        return getattr(self.kv, name)

    async def entry(self, key):
        found = await self.kv.entry(key)
        if self.raced_revision is None:
            async def put():
                return await (await self.nats_py.js.key_value(self.kv.bucket)).put(key, self.value)

            self.raced_revision = await self.nats_py.run(put())
        return found


@pytest.fixture(scope="module")
def js_server():
    with NatsServer(jetstream=True) as server:
        yield server


@pytest.mark.parametrize("existing", [False, True])
@pytest_twisted.ensureDeferred
async def test_a_deploy_that_lost_the_race_stores_nothing_and_says_who_won(js_server, make_client, capsys, existing):
    key = f"race-{existing}"
    kv = await create_key_value(JetStream(await connected(make_client([js_server.url])), timeout=5.0), "race")
    if existing:
        await kv.put(key, b"version: 1\n")
    nats_py = NatsPy(js_server.url)
    try:
        racing = SecondWriterBetween(kv, nats_py, b"theirs")
        status = await cli._store(None, racing, cli.Deploy(key=key, no_wait=True), "version: 1\nvars: {a: b}\n")
        assert status == ExitStatus.CONFLICT
        assert capsys.readouterr().err == (f"bridge deploy: someone else deployed revision {racing.raced_revision} of "
                                           f"kv:race/{key} meanwhile; nothing stored: re-run to deploy over it\n")
        latest = await kv.get(key)
        assert (latest.revision, latest.value) == (racing.raced_revision, b"theirs")
    finally:
        nats_py.close()


def test_the_followers_waited_for_are_those_whose_last_status_names_the_key_and_did_not_stop():
    def known(status, config):
        return {"last_status": status, "document": {"config": config}}

    statuses = {"a": known("online", "kv:b/k@3"), "b": known("degraded", "kv:b/k"), "c": known("offline", "kv:b/k@3"),
                "d": known("online", "kv:b/other@3"), "e": known("online", "file:/etc/bridge.yml"),
                "f": {"last_status": "online", "document": None}}
    assert expected_followers(statuses, "b", "k") == {"a", "b"}
    assert expected_followers(None, "b", "k") == set()
