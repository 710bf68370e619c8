"""What the fleet did with a stored revision, in memory: `outcome` from one bridge's `$SRV` metadata,
and `await_rollout`/`look` on a fake client whose `$SRV.INFO.bridge` answers the test sends by hand,
on a `task.Clock`."""

from __future__ import annotations

import json

from twisted.internet import defer, task

from bridge.fleet.rollout import (
    DISCOVERY,
    POLL,
    SILENCE,
    Outcome,
    State,
    await_rollout,
    followers,
    look,
    outcome,
)
from bridge.nats.protocol import Msg
from bridge.runtime.srv import INFO_RESPONSE

REQUESTS = "$SRV.INFO.bridge"


def info(device, config=None, refused=None, error=None, type=INFO_RESPONSE) -> dict:
    metadata = {"device": device}
    for name, value in (("config", config), ("config_refused", refused), ("config_error", error)):
        if value is not None:
            metadata[name] = value
    return {"type": type, "name": "bridge", "metadata": metadata}


class FakeClient:
    """Records what is published and subscribed; `answer` delivers replies to an inbox's subscriber."""

    def __init__(self):
        self.inboxes = 0
        self.published: list[tuple[str, bytes, str | None]] = []
        self.subscribers: dict[int, tuple[str, object]] = {}
        self.unsubscribed: list[int] = []

    def new_inbox(self) -> str:
        self.inboxes += 1
        return f"_INBOX.test.{self.inboxes}"

    def subscribe(self, subject, callback) -> int:
        sid = len(self.subscribers) + 1
        self.subscribers[sid] = (subject, callback)
        return sid

    def unsubscribe(self, sid) -> None:
        self.unsubscribed.append(sid)

    def publish(self, subject, payload=b"", reply=None) -> None:  # payload's default: Client.publish's
        self.published.append((subject, payload, reply))

    def answer(self, payload: dict | bytes, status=None) -> None:
        """One reply to the requests' inbox, delivered even after an unsubscribe (as one in flight is)."""
        (subject, callback), = self.subscribers.values()
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        callback(Msg(subject, 1, None, data, status=status))


def start(revision=5, timeout=3.0, expected=()):
    """`await_rollout` on a clock that does not start at 0 (times count from the start of the wait)."""
    clock, client = task.Clock(), FakeClient()
    clock.advance(100)
    results = []
    await_rollout(client, clock, "b", "k", revision, timeout, expected).addCallback(results.append)
    return clock, client, results


# -- outcome, followers -------------------------------------------------------------------------------

def test_a_bridge_running_the_revision_or_a_later_one_applied_it():
    assert outcome(info("pi1", "kv:b/k@5")["metadata"], "b", "k", 5) == Outcome("pi1", State.APPLIED, 5)
    assert outcome(info("pi1", "kv:b/k@6")["metadata"], "b", "k", 5) == Outcome("pi1", State.APPLIED, 6)


def test_a_bridge_that_refused_the_revision_or_a_later_one_refused_it_with_its_reason():
    refused = info("pi1", "kv:b/k@4", refused="kv:b/k@5", error="fleet.vars: no such var")["metadata"]
    assert outcome(refused, "b", "k", 5) == Outcome("pi1", State.REFUSED, 4, "fleet.vars: no such var")
    later = info("pi1", "kv:b/k@4", refused="kv:b/k@6")["metadata"]
    assert outcome(later, "b", "k", 5) == Outcome("pi1", State.REFUSED, 4, "no reason given")


def test_a_bridge_on_an_earlier_revision_that_refused_only_an_earlier_one_is_pending():
    earlier = info("pi1", "kv:b/k@3", refused="kv:b/k@4", error="bad")["metadata"]
    assert outcome(earlier, "b", "k", 5) == Outcome("pi1", State.PENDING, 3)
    assert outcome(info("pi1", "kv:b/k")["metadata"], "b", "k", 5) == Outcome("pi1", State.PENDING, None)


def test_a_bridge_that_follows_another_key_or_a_file_has_no_outcome():
    for config in ("kv:b/other@9", "kv:other/k@9", "file:/etc/bridge.yml", None):
        assert outcome(info("pi1", config)["metadata"], "b", "k", 5) is None


def test_the_device_id_is_read_as_text():
    assert outcome({"device": 7, "config": "kv:b/k@5"}, "b", "k", 5).device == "7"


def test_followers_are_the_documents_whose_bridge_follows_the_key_by_device_id():
    documents = [info("pi1", "kv:b/k@5"), info("pi2", "kv:b/other@5"), {"type": INFO_RESPONSE, "metadata": None},
                 {"type": INFO_RESPONSE}, {"metadata": {"device": 3, "config": "kv:b/k"}}]
    assert followers(documents, "b", "k") == {"pi1": documents[0]["metadata"], "3": documents[4]["metadata"]}


# -- await_rollout ---------------------------------------------------------------------------------------

def test_every_poll_asks_the_fleet_with_one_reply_inbox_and_no_follower_ends_it_after_discovery_time():
    clock, client, results = start(timeout=5.0)
    (inbox, _), = client.subscribers.values()
    assert inbox == "_INBOX.test.1"
    clock.advance(0)
    assert client.published == [(REQUESTS, b"", inbox)]
    clock.advance(POLL)
    assert client.published == [(REQUESTS, b"", inbox)] * 2
    clock.pump([POLL, POLL])
    assert results == [] and len(client.published) == 4
    clock.advance(DISCOVERY - 3 * POLL)
    assert results == [[]] and len(client.published) == 4
    assert client.unsubscribed == [1] and clock.getDelayedCalls() == []


def test_followers_that_all_applied_are_reported_once_discovery_time_passed():
    clock, client, results = start(timeout=5.0, expected=["pi-b"])
    clock.advance(0)
    client.answer(info("pi-b", "kv:b/k@5"))
    client.answer(info("pi-a", "kv:b/k@6"))
    client.answer(info("pi-c", "kv:b/other@1"))
    clock.pump([POLL] * 3)
    assert results == []
    clock.advance(DISCOVERY - 3 * POLL)
    assert results == [[Outcome("pi-a", State.APPLIED, 6), Outcome("pi-b", State.APPLIED, 5)]]
    assert client.unsubscribed == [1] and clock.getDelayedCalls() == []
    requests = len(client.published)
    clock.advance(10)
    assert len(client.published) == requests


def test_a_timeout_shorter_than_discovery_is_all_the_wait():
    clock, client, results = start(timeout=0.5)
    clock.advance(0)
    client.answer(info("pi1", "kv:b/k@5"))
    clock.advance(0.5)
    assert results == [[Outcome("pi1", State.APPLIED, 5)]]


def test_an_answer_is_checked_at_once_after_discovery_time():
    clock, client, results = start(timeout=5.0)
    clock.advance(0)
    client.answer(info("pi1", "kv:b/k@4"))
    clock.advance(DISCOVERY + 0.1)
    assert results == []
    client.answer(info("pi1", "kv:b/k@5"))
    assert results == [[Outcome("pi1", State.APPLIED, 5)]]


def test_a_refusal_decides_and_a_later_answer_does_not_undo_a_decision():
    clock, client, results = start(timeout=5.0)
    clock.advance(0)
    client.answer(info("pi1", "kv:b/k@4", refused="kv:b/k@5", error="bad var"))
    client.answer(info("pi2", "kv:b/k@5"))
    client.answer(info("pi1", "kv:b/k@4"))
    client.answer(info("pi2", "kv:b/k@3"))
    clock.advance(DISCOVERY)
    assert results == [[Outcome("pi1", State.REFUSED, 4, "bad var"), Outcome("pi2", State.APPLIED, 5)]]


def test_a_pending_answer_is_replaced_by_the_next_one():
    clock, client, results = start(timeout=2.0)
    clock.advance(0)
    client.answer(info("pi1", "kv:b/k@3"))
    client.answer(info("pi1", "kv:b/k@4"))
    clock.advance(1.5)
    client.answer(info("pi2", "kv:b/k@4"))
    assert results == []
    clock.advance(0.5)
    assert results == [[Outcome("pi1", State.SILENT, 4), Outcome("pi2", State.PENDING, 4)]]


def test_an_undecided_follower_is_silent_only_when_it_sent_nothing_for_longer_than_silence():
    clock, client, results = start(timeout=3.0)
    clock.advance(0)
    client.answer(info("pi1", "kv:b/k@4"))
    clock.advance(3.0 - SILENCE)
    client.answer(info("pi2", "kv:b/k@4"))
    clock.advance(SILENCE - 0.25)
    client.answer(info("pi3", "kv:b/k"))
    clock.advance(0.25)
    assert results == [[Outcome("pi1", State.SILENT, 4), Outcome("pi2", State.PENDING, 4),
                        Outcome("pi3", State.PENDING, None)]]


def test_an_expected_follower_is_waited_for_and_silent_when_never_heard():
    clock, client, results = start(timeout=3.0, expected={"pi2", "pi1"})
    clock.advance(0)
    client.answer(info("pi1", "kv:b/k@5"))
    clock.advance(3.0 - 0.01)
    assert results == []
    clock.advance(0.01)
    assert results == [[Outcome("pi1", State.APPLIED, 5), Outcome("pi2", State.SILENT)]]


def test_nobody_listening_on_srv_ends_the_wait_at_once_with_the_expected_followers_silent():
    clock, client, results = start(timeout=3.0, expected=["pi1"])
    clock.advance(0)
    client.answer(b"", status=503)
    assert results == [[Outcome("pi1", State.SILENT)]]
    assert client.unsubscribed == [1] and clock.getDelayedCalls() == []


def test_a_503_after_a_follower_answered_is_ignored():
    clock, client, results = start(timeout=3.0)
    clock.advance(0)
    client.answer(info("pi1", "kv:b/k@4"))
    client.answer(b"", status=503)
    assert results == []
    client.answer(info("pi1", "kv:b/k@5"))
    clock.advance(DISCOVERY)
    assert results == [[Outcome("pi1", State.APPLIED, 5)]]


def test_answers_of_other_types_or_without_metadata_are_skipped():
    clock, client, results = start(timeout=1.0)
    clock.advance(0)
    client.answer(info("pi1", "kv:b/k@5", type="io.nats.micro.v1.ping_response"))
    client.answer({"type": INFO_RESPONSE, "metadata": None})
    client.answer({"type": INFO_RESPONSE})
    client.answer(b"not json")
    clock.advance(1.0)
    assert results == [[]]


def test_an_answer_after_the_end_changes_nothing():
    clock, client, results = start(timeout=1.0)
    clock.advance(1.0)
    client.answer(info("pi1", "kv:b/k@5"))
    client.answer(b"", status=503)
    assert results == [[]]
    assert client.unsubscribed == [1]


# -- look -------------------------------------------------------------------------------------------------

def test_look_gathers_the_info_documents_until_the_fleet_is_quiet_for_discovery_time():
    clock, client = task.Clock(), FakeClient()
    results = []
    defer.ensureDeferred(look(client, clock, 5.0)).addCallback(results.append)
    (inbox, _), = client.subscribers.values()
    assert client.published == [(REQUESTS, b"", inbox)]
    clock.advance(0.5)
    client.answer(info("pi1", "kv:b/k@5"))
    client.answer(info("pi2", type="io.nats.micro.v1.ping_response"))
    clock.advance(DISCOVERY - 0.01)
    assert results == []
    clock.advance(0.01)
    assert results == [[info("pi1", "kv:b/k@5")]]


def test_look_ends_at_its_timeout_while_answers_keep_coming():
    clock, client = task.Clock(), FakeClient()
    results = []
    defer.ensureDeferred(look(client, clock, 1.5)).addCallback(results.append)
    for _ in range(3):
        clock.advance(0.5)
        client.answer(info("pi1", "kv:b/k@5"))
    assert results == [[info("pi1", "kv:b/k@5")] * 2]
