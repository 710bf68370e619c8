"""The NATS services protocol (ADR-32, what `nats micro ls/info/stats` reads) for a running bridge.

Every bridge is one instance of the service `bridge`: it answers `$SRV.PING`, `$SRV.INFO` and
`$SRV.STATS`, each also as `$SRV.<VERB>.bridge` and `$SRV.<VERB>.bridge.<id>`, on plain (non-queue)
subscriptions, so a request reaches every bridge and each answers. `<id>` is random per process;
the device id is in the metadata. The endpoints are the config's `subscriptions:` with their
counts; the protocol only reports them, their subjects and queue groups stay as configured.

Scatter-gather (`gather`): publish once with a reply inbox and collect every answer until a deadline,
or sooner when the caller knows who answers; `bridge fleet`, `bridge deploy` and the duplicate
device id check at start-up use it.

An endpoint's error reply carries ADR-32's `Nats-Service-Error` (one sentence) and
`Nats-Service-Error-Code` (HTTP-like: 400 a request it cannot use, 503 one it dropped, 500 a
failure) headers as well as its JSON body (`service_error_headers`).

The documents are built by pure functions (`ping_response`, `info_response`, `stats_response`);
`ServiceResponder` owns the nine subscriptions and asks its callables for the current facts.
"""

from __future__ import annotations

import json
import re
import secrets
import string
from typing import Any, Callable, NamedTuple, Sequence

from twisted.internet import defer
from twisted.logger import Logger

from bridge.actions import PayloadError
from bridge.devices.worker import Dropped
from bridge.nats import Headers, NatsError
from bridge.runtime.documents import encode

log = Logger(namespace="bridge")

SERVICE_NAME = "bridge"
DESCRIPTION = "Raspberry Pi Sense HAT over NATS"
VERBS = ("PING", "INFO", "STATS")
PING_RESPONSE = "io.nats.micro.v1.ping_response"
INFO_RESPONSE = "io.nats.micro.v1.info_response"
STATS_RESPONSE = "io.nats.micro.v1.stats_response"
DUPLICATE_WINDOW = 0.5  # how long a starting bridge listens for another one with its device id

_ID_ALPHABET = string.digits + string.ascii_letters
_NOT_NAME = re.compile(r"[^a-zA-Z0-9_-]+")


def new_instance_id() -> str:
    """22 random base-62 characters, like a nats.go NUID: unique per process, not per device."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(22))


def control_subjects(verb: str, instance_id: str) -> list[str]:
    return [f"$SRV.{verb}", f"$SRV.{verb}.{SERVICE_NAME}", f"$SRV.{verb}.{SERVICE_NAME}.{instance_id}"]


class Identity(NamedTuple):
    """What every response starts with."""

    id: str
    version: str
    metadata: dict  # str -> str: device, driver, host, config, server


class Endpoint(NamedTuple):
    """One `subscriptions:` entry as the protocol sees it."""

    name: str
    subject: str
    queue: str | None
    action: str
    num_requests: int
    num_errors: int
    last_error: str
    processing_time: int  # ns


def endpoint_name(subject: str, action: str) -> str:
    """`[a-zA-Z0-9_-]+` from the subject: `sense.pi.clear` -> `sense_pi_clear`, `a.*.b` -> `a_any_b`."""
    tokens = [{"*": "any", ">": "all"}.get(token, token) for token in subject.split(".")]
    name = re.sub("_+", "_", _NOT_NAME.sub("_", "_".join(tokens))).strip("_")
    return name or action


def endpoints_of(subscriptions: Sequence[Any]) -> list[Endpoint]:
    """From the running `ActionSubscription`s; a name that repeats (the same subject twice, with
    different queue groups) gets `-2`, `-3`... A dropped message counts as an error: its sender
    got an error reply."""
    endpoints, seen = [], {}
    for item in subscriptions:
        config, stats = item.config, item.stats
        name = endpoint_name(config.subject, config.action)
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:
            name = f"{name}-{seen[name]}"
        endpoints.append(Endpoint(name, config.subject, config.queue, config.action, stats.received,
                                  stats.errors + stats.dropped, item.last_error, stats.processing_ns))
    return endpoints


def service_error_code(error: BaseException) -> int:
    """ADR-32's `Nats-Service-Error-Code` for an endpoint's error: 400 a request it cannot use,
    503 one it dropped (overflow, rate), 500 anything that failed while running."""
    if isinstance(error, PayloadError):
        return 400
    if isinstance(error, Dropped):
        return 503
    return 500


def service_error_headers(error: BaseException) -> Headers:
    """The ADR-32 headers of an endpoint's error reply; the sentence on one line."""
    sentence = " ".join(str(error).split()) or type(error).__name__
    return Headers([("Nats-Service-Error", sentence), ("Nats-Service-Error-Code", str(service_error_code(error)))])


def ping_response(identity: Identity) -> dict:
    return {"type": PING_RESPONSE, "name": SERVICE_NAME, "id": identity.id, "version": identity.version,
            "metadata": dict(identity.metadata)}


def _queue_group(endpoint: Endpoint) -> str:
    # The published schema types queue_group as a string (null fails it) and nats-py's parser
    # needs the key, so no queue group is "" — what nats.go reports for a disabled queue group.
    return endpoint.queue or ""


def info_response(identity: Identity, endpoints: Sequence[Endpoint]) -> dict:
    document = ping_response(identity)
    document["type"] = INFO_RESPONSE
    document["description"] = DESCRIPTION
    document["endpoints"] = [
        {"name": e.name, "subject": e.subject, "queue_group": _queue_group(e), "metadata": {"action": e.action}}
        for e in endpoints
    ]
    return document


def stats_response(identity: Identity, started: str, endpoints: Sequence[Endpoint]) -> dict:
    document = ping_response(identity)
    document["type"] = STATS_RESPONSE
    document["started"] = started
    document["endpoints"] = [
        {
            "name": e.name,
            "subject": e.subject,
            "queue_group": _queue_group(e),
            "num_requests": e.num_requests,
            "num_errors": e.num_errors,
            "last_error": e.last_error,
            "processing_time": e.processing_time,
            "average_processing_time": e.processing_time // e.num_requests if e.num_requests else 0,
            "data": {},
        }
        for e in endpoints
    ]
    return document


class ServiceResponder:
    """Answers `$SRV.PING/INFO/STATS` (and `.bridge`, `.bridge.<id>`) for one bridge.

    `identity()` and `endpoints()` are asked at each request, so a reload or a reconnect shows
    at once; `started` is the RFC 3339 start time.
    """

    def __init__(self, client, identity: Callable[[], Identity], endpoints: Callable[[], list[Endpoint]],
                 started: str):
        self.client = client
        self.identity = identity
        self.endpoints = endpoints
        self.started = started
        self._subscriptions: list = []

    def start(self, instance_id: str) -> None:
        answer = {"PING": self._ping, "INFO": self._info, "STATS": self._stats}
        for verb in VERBS:
            for subject in control_subjects(verb, instance_id):
                self._subscriptions.append(self.client.subscribe(subject, self._responder(answer[verb])))

    def stop(self) -> None:
        for subscription in self._subscriptions:
            self.client.unsubscribe(subscription)
        self._subscriptions = []

    def _ping(self) -> dict:
        return ping_response(self.identity())

    def _info(self) -> dict:
        return info_response(self.identity(), self.endpoints())

    def _stats(self) -> dict:
        return stats_response(self.identity(), self.started, self.endpoints())

    def _responder(self, build: Callable[[], dict]) -> Callable:
        def respond(msg) -> None:
            if not msg.reply:
                return
            try:
                self.client.publish(msg.reply, encode(build()))
            except NatsError as error:
                log.warn("could not answer {subject}: {error}", subject=msg.subject, error=str(error))

        return respond


class Answer(NamedTuple):
    """One reply to a scatter-gather request and how long after the request it came."""

    msg: Any
    latency: float  # seconds


def gather(client, subject: str, reactor, *, timeout: float, quiet: float | None = None,
           until: Callable[[list], bool] | None = None) -> defer.Deferred:
    """Scatter-gather: publish an empty request on `subject` with a fresh inbox as reply subject;
    fires with every `Answer` (in arrival order) at `timeout`, or sooner: once `until(answers)` is
    true, once `quiet` seconds passed without an answer after the first one, or at once when the
    server says nobody listens (a 503 status)."""
    inbox = client.new_inbox()
    answers: list[Answer] = []
    done: defer.Deferred = defer.Deferred()
    timers: dict = {}
    asked = reactor.seconds()

    def finish() -> None:
        if done.called:
            return
        for timer in timers.values():
            if timer.active():
                timer.cancel()
        client.unsubscribe(subscription)
        done.callback(answers)

    def on_answer(msg) -> None:
        if done.called:
            return
        if msg.status == 503 and not msg.payload:
            finish()
            return
        answers.append(Answer(msg, reactor.seconds() - asked))
        if until is not None and until(answers):
            finish()
            return
        if quiet is None:
            return
        waiting = timers.get("quiet")
        if waiting is not None and waiting.active():
            waiting.reset(quiet)
        else:
            timers["quiet"] = reactor.callLater(quiet, finish)

    subscription = client.subscribe(inbox, on_answer)
    try:
        client.publish(subject, b"", reply=inbox)
    except Exception:
        client.unsubscribe(subscription)
        return defer.fail()
    timers["deadline"] = reactor.callLater(timeout, finish)
    return done


def answered_by_all(expected: set) -> Callable[[list], bool]:
    """`gather`'s `until`: true once the answers' metadata name every device id in `expected`."""
    seen: set = set()

    def until(answers: list) -> bool:
        try:
            document = json.loads(answers[-1].msg.payload)
        except ValueError:
            return False
        if isinstance(document, dict):
            seen.add((document.get("metadata") or {}).get("device"))
        return expected <= seen

    return until


def decode_answers(answers: Sequence[Answer], response_type: str) -> list[dict]:
    """The JSON documents of type `response_type` among `answers`; anything else is skipped."""
    return [document for document, _ in timed_documents(answers, response_type)]


def timed_documents(answers: Sequence[Answer], response_type: str) -> list[tuple[dict, float]]:
    """(document, latency in seconds) of each answer of type `response_type`; anything else is skipped."""
    documents = []
    for answer in answers:
        try:
            document = json.loads(answer.msg.payload)
        except ValueError:
            continue
        if isinstance(document, dict) and document.get("type") == response_type:
            documents.append((document, answer.latency))
    return documents


class DuplicateDeviceError(Exception):
    """Another live bridge already runs with this device id."""


@defer.inlineCallbacks
def check_device_id_free(client, device_id: str, instance_id: str, reactor, window: float = DUPLICATE_WINDOW):
    """Ask `$SRV.PING.bridge`; fail with `DuplicateDeviceError` when another instance reports
    `device_id`. Two bridges that start within the same window do not see each other."""
    answers = yield gather(client, f"$SRV.PING.{SERVICE_NAME}", reactor, timeout=window)
    for other in decode_answers(answers, PING_RESPONSE):
        metadata = other.get("metadata") or {}
        if metadata.get("device") == device_id and other.get("id") != instance_id:
            where = metadata.get("host") or "an unknown host"
            raise DuplicateDeviceError(
                f"device id {device_id!r} is already used by a running bridge on {where} "
                f"(instance {other.get('id')}), so this one does not start: give it another device.id"
            )
