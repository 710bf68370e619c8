"""The `BRIDGE_STATUS` stream: the last `bridge.<device>.status` message of every device id, which
`bridge fleet` reads to list the bridges that stopped answering with when they were last seen.
`bridge deploy` creates it with the config bucket (`ensure_status_stream`). Every bridge publishes
its status on connect, on changes and as a heartbeat (`StatusHeartbeat`, every `nats.status_interval`,
30 s by default), so that last message is at most that much older than the last moment the bridge
was alive."""

from __future__ import annotations

import base64
import binascii
import json

from typing import Callable

from twisted.internet import defer, task

from bridge import timestamps
from bridge.nats.errors import JetStreamNotEnabledError, NoMessageFoundError, StreamNameInUseError, StreamNotFoundError

STATUS_STREAM = "BRIDGE_STATUS"
STATUS_SUBJECTS = "bridge.*.status"


class StatusHeartbeat:
    """Calls `publish()` every `interval` seconds of `clock` between `start()` and `stop()`;
    `publish` handles its own errors (a raise would end the heartbeat)."""

    def __init__(self, publish: Callable[[], object], clock, interval: float):
        if interval <= 0:
            raise ValueError("the status heartbeat interval must be more than 0")
        self.interval = interval
        self._loop = task.LoopingCall(publish)
        self._loop.clock = clock

    def start(self) -> None:
        if not self._loop.running:
            self._loop.start(self.interval, now=False)  # the status was just published on connect

    def stop(self) -> None:
        if self._loop.running:
            self._loop.stop()


def status_stream_config(replicas: int = 1) -> dict:
    """The stream keeping the last `bridge.<device>.status` message of every device id."""
    return {
        "name": STATUS_STREAM,
        "description": "the last status message of every bridge (bridge fleet: last seen)",
        "subjects": [STATUS_SUBJECTS],
        "max_msgs_per_subject": 1,
        "discard": "old",
        "storage": "file",
        "num_replicas": replicas,
    }


def ensure_status_stream(js, replicas: int = 1):
    """Create `BRIDGE_STATUS` unless it exists (whatever its config then); fires with its info.
    Idempotent: safe to call on every deploy, and from two places at once."""
    @defer.inlineCallbacks
    def ensure():
        try:
            info = yield js.stream_info(STATUS_STREAM)
            return info
        except StreamNotFoundError:
            pass
        try:
            info = yield js.add_stream(status_stream_config(replicas))
        except StreamNameInUseError:  # created meanwhile by someone else, with another config
            info = yield js.stream_info(STATUS_STREAM)
        return info

    return ensure()


def read_last_statuses(js):
    """Fires with {device id: {"last_seen": RFC 3339 (server time), "last_status": str|None,
    "document": dict|None}} from `BRIDGE_STATUS`; None when there is no JetStream or no such stream."""
    @defer.inlineCallbacks
    def read():
        try:
            info = yield defer.ensureDeferred(js.api(f"STREAM.INFO.{STATUS_STREAM}",
                                                     {"subjects_filter": STATUS_SUBJECTS}))
        except (JetStreamNotEnabledError, StreamNotFoundError):
            return None
        subjects = sorted((info.get("state") or {}).get("subjects") or {})
        answers = yield defer.gatherResults([
            defer.ensureDeferred(js.api(f"STREAM.MSG.GET.{STATUS_STREAM}", {"last_by_subj": subject}))
            .addErrback(lambda failure: failure.trap(NoMessageFoundError) and None)
            for subject in subjects
        ], consumeErrors=True)
        found = {}
        for subject, answer in zip(subjects, answers):
            message = (answer or {}).get("message")
            if not message:
                continue
            device = subject.split(".")[1]
            found[device] = status_from_message(message)
        return found

    return read()


def status_from_message(message: dict) -> dict:
    """A `STREAM.MSG.GET` message (base64 `data`, server `time`) as last seen / last status."""
    document = None
    try:
        document = json.loads(base64.b64decode(message.get("data") or ""))
    except (ValueError, binascii.Error):
        pass
    if not isinstance(document, dict):
        document = None
    status = document.get("status") if document else None
    return {"last_seen": _short_time(message.get("time")), "last_status": status if isinstance(status, str) else None,
            "document": document}


def _short_time(value: str | None) -> str | None:
    """RFC 3339 with nanoseconds (the server's) cut to milliseconds, UTC with a Z."""
    if not value:
        return None
    moment = timestamps.parse(value)
    return value if moment is None else timestamps.format_utc(moment)
