"""Publishes the discovery documents at the moments Home Assistant needs them, on the reactor clock.

HA keeps no discovery of its own across restarts, and NATS publishes are not retained for MQTT
subscribers: so the documents go out on every (re)connect and whenever HA's birth message
(`<prefix>/status` = `online`) arrives, each Pi after a random part of `JITTER` so a fleet does
not answer at once, at most one burst per `MIN_BURST_INTERVAL`. HA subscribes to an entity's
state topics only once it has set the entity up, so the status and one current reading of every
sensor follow `STATE_DELAY` later. A reload publishes what changed at once, and an empty document
for each entity it removed (HA deletes it).
"""

from __future__ import annotations

import json
import random
from typing import Callable

from twisted.internet import defer
from twisted.logger import Logger

from bridge.nats import NatsError

log = Logger(namespace="bridge")

JITTER = 1.0
MIN_BURST_INTERVAL = 5.0
# HA set entities up 0.12 s after their configs on a 2-core machine; 1.5 s leaves room for a busy HA
# taking a fleet's configs at once, and with JITTER keeps birth-to-state within 3 s.
STATE_DELAY = 1.5
ONLINE = b"online"


class Announcer:
    """One bridge's link to Home Assistant.

    `documents()`: {discovery subject: document} for the running config ({} without a
    `homeassistant:` block); `birth_subject()`: where HA says it is online, None without the block;
    `send_states()`: publish the status and one reading of every sensor now.
    """

    def __init__(self, client, reactor, *, documents: Callable[[], dict[str, dict]],
                 birth_subject: Callable[[], str | None], send_states: Callable[[], None],
                 random: Callable[[], float] = random.random):
        self._client = client
        self._reactor = reactor
        self._documents = documents
        self._birth_subject = birth_subject
        self._send_states = send_states
        self._random = random
        self.announced: dict[str, bytes] = {}  # what HA was last told, by discovery subject
        self.bursts = 0
        self._burst_call = None
        self._states_call = None
        self._last_burst_at: float | None = None
        self._birth = None  # (subject, subscription)
        self._stopped = False

    # -- what the bridge calls -----------------------------------------------------------

    def apply(self) -> None:
        """At start and after each reload: follow the config's `homeassistant:` block and entities."""
        self._follow_birth_subject()
        if self._birth is None:  # no block: HA forgets what it was told
            self._cancel()
            self._publish_changes({})
            return
        if not self.announced:
            self.request()
        elif self._publish_changes(self._encoded()):
            self._schedule_states()

    def connected(self) -> None:
        """On every reconnect: the server (and HA behind it) may have restarted."""
        if self._birth is not None:
            self.request()

    def request(self) -> None:
        """A burst soon: after a random part of JITTER, and not within MIN_BURST_INTERVAL of the last."""
        if self._stopped or (self._burst_call is not None and self._burst_call.active()):
            return
        delay = self._random() * JITTER
        if self._last_burst_at is not None:
            delay = max(delay, self._last_burst_at + MIN_BURST_INTERVAL - self._reactor.seconds())
        self._burst_call = self._reactor.callLater(delay, self._burst)

    def stop(self) -> None:
        self._stopped = True
        self._cancel()
        if self._birth is not None:
            self._client.unsubscribe(self._birth[1])
            self._birth = None

    # -- inside --------------------------------------------------------------------------

    def _follow_birth_subject(self) -> None:
        wanted = None if self._stopped else self._birth_subject()
        if self._birth is not None and self._birth[0] == wanted:
            return
        if self._birth is not None:
            self._client.unsubscribe(self._birth[1])
            self._birth = None
        if wanted is not None:
            self._birth = (wanted, self._client.subscribe(wanted, self._on_birth))

    def _on_birth(self, msg) -> None:
        if msg.data.strip() == ONLINE:
            self.request()

    def _encoded(self) -> dict[str, bytes]:
        return {subject: json.dumps(document, ensure_ascii=False).encode()
                for subject, document in self._documents().items()}

    def _burst(self) -> None:
        self._burst_call = None
        if not self._client.is_connected:
            return  # the reconnect asks again
        self._last_burst_at = self._reactor.seconds()
        self.bursts += 1
        documents = self._encoded()
        self._publish_removed(documents)
        for subject, payload in documents.items():
            self._publish(subject, payload)
        self.announced = documents
        self._schedule_states()

    def _publish_removed(self, documents: dict[str, bytes]) -> None:
        for subject in sorted(self.announced.keys() - documents.keys()):
            self._publish(subject, b"")

    def _publish_changes(self, documents: dict[str, bytes]) -> bool:
        """Publish the documents that changed and an empty one for each removed; True when any is new."""
        self._publish_removed(documents)
        changed = {subject: payload for subject, payload in documents.items() if self.announced.get(subject) != payload}
        for subject, payload in changed.items():
            self._publish(subject, payload)
        self.announced = documents
        return bool(changed)

    def _schedule_states(self) -> None:
        if self._states_call is not None and self._states_call.active():
            self._states_call.cancel()
        self._states_call = self._reactor.callLater(STATE_DELAY, self._states)

    def _states(self) -> None:
        self._states_call = None
        if self._client.is_connected:
            self._send_states()

    def _publish(self, subject: str, payload: bytes) -> None:
        try:
            self._client.publish(subject, payload)
        except NatsError as error:
            log.warn("could not announce {subject} to Home Assistant: {error}", subject=subject, error=str(error))

    def _cancel(self) -> None:
        for call in (self._burst_call, self._states_call):
            if call is not None and call.active():
                call.cancel()
        self._burst_call = self._states_call = None


def send_current_readings(publications) -> defer.Deferred:
    """One reading of every polled publication, deadband ignored, so HA has a state at once."""
    sent = []
    for publication in publications:
        if publication.config.sensor == "joystick":
            continue
        reading = publication.send_current()
        reading.addErrback(lambda failure, sensor=publication.config.sensor: log.warn(
            "reading {sensor} for Home Assistant failed: {error}", sensor=sensor, error=failure.getErrorMessage()))
        sent.append(reading)
    return defer.gatherResults(sent)
