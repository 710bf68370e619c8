"""paho-mqtt playing Home Assistant against nats-server's MQTT listener (tests and bench).

Blocking, with paho's network thread: call it from a test thread (`deferToThread`), never from
the reactor thread.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Callable, TypeVar

import paho.mqtt.client as mqtt

T = TypeVar("T")


@dataclass(frozen=True)
class Received:
    at: float  # time.monotonic()
    topic: str
    payload: bytes

    def json(self):
        return json.loads(self.payload)


class PlaysHomeAssistant:
    """Subscribes to `<prefix>/#` like HA's MQTT integration, says `online` on `<prefix>/status`
    like HA's birth message, and records everything it receives."""

    def __init__(self, port: int, prefix: str = "homeassistant"):
        self.port = port
        self.prefix = prefix
        self.received: list[Received] = []
        self._changed = threading.Condition()
        self._acknowledged: dict[int, threading.Event] = {}
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"ha-{uuid.uuid4().hex[:8]}")
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe

    def start(self, timeout: float = 10.0) -> "PlaysHomeAssistant":
        self.client.connect("127.0.0.1", self.port)
        self.client.loop_start()
        self.subscribe([f"{self.prefix}/#"], timeout)
        return self

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def subscribe(self, topics: list[str], timeout: float = 10.0) -> None:
        """Subscribe and wait for the server's acknowledgement."""
        done = threading.Event()
        with self._changed:
            result, mid = self.client.subscribe([(topic, 0) for topic in topics])
            if result != mqtt.MQTT_ERR_SUCCESS:
                raise AssertionError(f"subscribing to {topics} failed: {mqtt.error_string(result)}")
            self._acknowledged[mid] = done
        if not done.wait(timeout):
            raise AssertionError(f"no SUBACK for {topics} within {timeout}s")

    def publish(self, topic: str, payload: str | bytes, timeout: float = 10.0) -> None:
        self.client.publish(topic, payload, qos=0).wait_for_publish(timeout)

    def birth(self) -> float:
        """HA's birth message; returns when it was sent (time.monotonic())."""
        sent = time.monotonic()
        self.publish(f"{self.prefix}/status", "online")
        return sent

    def wait_for(self, found: Callable[[list[Received]], T], timeout: float, what: str) -> T:
        """Wait until `found(received)` is truthy and return it; fail naming `what` after `timeout` s."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                result = found(list(self.received))
                if result:
                    return result
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"Home Assistant never saw {what} within {timeout}s")
                self._changed.wait(left)

    def configs(self, since: float = 0.0) -> dict[str, dict | None]:
        """The latest discovery document of each topic received since `since` (None: deleted)."""
        found: dict[str, dict | None] = {}
        for message in self.received:
            if message.at >= since and message.topic.endswith("/config") and message.topic.startswith(self.prefix + "/"):
                found[message.topic] = message.json() if message.payload else None
        return found

    def on(self, topic: str, since: float = 0.0) -> list[Received]:
        return [message for message in self.received if message.topic == topic and message.at >= since]

    def _on_message(self, client, userdata, message) -> None:
        with self._changed:
            self.received.append(Received(time.monotonic(), message.topic, bytes(message.payload)))
            self._changed.notify_all()

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        with self._changed:
            done = self._acknowledged.pop(mid, None)
        if done is not None:
            done.set()
