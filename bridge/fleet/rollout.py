"""What the fleet did with a stored revision, from the `$SRV.INFO.bridge` metadata of the bridges
following its key (`config`, `config_refused`, `config_error`; see bridge/fleet/follow.py).

`outcome` is a pure function of one bridge's metadata; `await_rollout` polls `$SRV` until every
follower decided (applied or refused) or the time is up:

    store -> $SRV.INFO.bridge (every POLL s, one reply inbox) -> outcome per device -> report
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Iterable

from twisted.internet import defer

from bridge.config.sources import parse_source
from bridge.runtime.srv import INFO_RESPONSE, SERVICE_NAME, Answer, decode_answers, gather

POLL = 0.25  # seconds between two requests to the fleet
DISCOVERY = 1.0  # seconds to wait for followers to make themselves known, however fast the ones known decided
SILENCE = 1.0  # an undecided follower that sent nothing for this long at the end is "not answering"


class State(enum.Enum):
    APPLIED = "applied"
    REFUSED = "refused"
    PENDING = "pending"  # answered, still on an earlier revision
    SILENT = "not answering"


DECIDED = (State.APPLIED, State.REFUSED)


@dataclass(frozen=True)
class Outcome:
    device: str
    state: State
    running: int | None = None  # the revision it runs (None: none yet)
    reason: str | None = None  # why it refused


def follows(metadata: dict, bucket: str, key: str) -> bool:
    """Whether a bridge's `$SRV` metadata says it follows `bucket`/`key`."""
    return parse_source(metadata.get("config"))["key"] == f"{bucket}/{key}"


def outcome(metadata: dict, bucket: str, key: str, revision: int) -> Outcome | None:
    """What a bridge did with `revision` of `bucket`/`key`, from its metadata; None when it does not follow that key."""
    if not follows(metadata, bucket, key):
        return None
    device = str(metadata.get("device"))
    running = parse_source(metadata.get("config"))["revision"]
    if running is not None and running >= revision:
        return Outcome(device, State.APPLIED, running)
    refused = parse_source(metadata.get("config_refused"))["revision"]
    if refused is not None and refused >= revision:
        return Outcome(device, State.REFUSED, running, metadata.get("config_error") or "no reason given")
    return Outcome(device, State.PENDING, running)


def followers(documents: list[dict], bucket: str, key: str) -> dict[str, dict]:
    """{device id: metadata} of the INFO documents whose bridge follows `bucket`/`key`."""
    found = {}
    for document in documents:
        metadata = document.get("metadata") or {}
        if follows(metadata, bucket, key):
            found[str(metadata.get("device"))] = metadata
    return found


async def look(client, reactor, timeout: float) -> list[dict]:
    """One `$SRV.INFO.bridge` scatter-gather: the INFO documents, in at most `timeout` s; sooner once
    no answer came for DISCOVERY s."""
    answers = await gather(client, f"$SRV.INFO.{SERVICE_NAME}", reactor, timeout=timeout, quiet=DISCOVERY)
    return decode_answers(answers, INFO_RESPONSE)


def expected_followers(statuses: dict | None, bucket: str, key: str) -> set[str]:
    """The device ids whose last status (`BRIDGE_STATUS`, bridge/fleet/status.py) says they follow
    `bucket`/`key` and did not stop gracefully: a deploy waits for them however late they answer."""
    return {device for device, known in (statuses or {}).items()
            if known.get("last_status") != "offline"
            and follows({"config": (known.get("document") or {}).get("config")}, bucket, key)}


def await_rollout(client, reactor, bucket: str, key: str, revision: int, timeout: float,
                  expected: Iterable[str] = ()) -> defer.Deferred:
    """Fires with every follower's outcome for `revision` (sorted by device id) once all decided
    (the `expected` ones included) and DISCOVERY s passed, or after `timeout` s; [] when no
    follower is known. An expected follower never heard from is SILENT.

    Every POLL s one request goes to `$SRV.INFO.bridge`, all with the same reply inbox, so an answer
    to an earlier request still counts. A follower that had not decided and sent nothing for
    SILENCE s at the end is SILENT."""
    inbox = client.new_inbox()
    started = reactor.seconds()
    outcomes: dict[str, Outcome] = {}
    heard: dict[str, float] = {}
    expected = set(expected)
    done: defer.Deferred = defer.Deferred()

    def finish() -> None:
        if done.called:
            return
        for timer in (polling, deadline):
            if timer.active():
                timer.cancel()
        client.unsubscribe(subscription)
        now = reactor.seconds()
        for device in expected - set(outcomes):
            outcomes[device] = Outcome(device, State.SILENT)
        for device, known in outcomes.items():
            if known.state is State.PENDING and now - heard[device] > SILENCE:
                outcomes[device] = Outcome(device, State.SILENT, known.running)
        done.callback(sorted(outcomes.values(), key=lambda o: o.device))

    def check() -> None:
        if reactor.seconds() - started >= min(DISCOVERY, timeout) and expected <= set(outcomes) and \
                all(known.state in DECIDED for known in outcomes.values()):
            finish()

    def on_answer(msg) -> None:
        if done.called:
            return
        if msg.status == 503 and not outcomes:  # nobody listens on $SRV at all: the expected ones are off
            finish()
            return
        for document in decode_answers([Answer(msg, 0.0)], INFO_RESPONSE):
            found = outcome(document.get("metadata") or {}, bucket, key, revision)
            if found is not None:
                known = outcomes.get(found.device)
                if known is None or known.state not in DECIDED:
                    outcomes[found.device] = found
                heard[found.device] = reactor.seconds()
        check()

    def poll() -> None:
        nonlocal polling
        check()
        if done.called:
            return
        client.publish(f"$SRV.INFO.{SERVICE_NAME}", b"", reply=inbox)
        polling = reactor.callLater(POLL, poll)

    subscription = client.subscribe(inbox, on_answer)
    deadline = reactor.callLater(timeout, finish)
    polling = reactor.callLater(0, poll)
    return done
