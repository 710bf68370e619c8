"""A stand-in for our NATS client, for Bridge tests in memory: it records subscribe, unsubscribe,
drain and publish instead of talking to a server."""

from __future__ import annotations

import json

from twisted.internet import defer

from bridge.config.model import BridgeConfig, DeviceConfig, NatsConfig, SubscriptionConfig


class Handle:
    """What FakeClient.subscribe returns: draining it is logged too."""

    def __init__(self, client, subject, queue):
        self.client, self.subject, self.queue = client, subject, queue

    def drain(self):
        self.client.log.append(("drain", self.subject))
        return defer.succeed(None)

    def set_callback(self, callback, batches=False):
        self.client.set_callback(self.subject, callback, batches)


class FakeClient:
    """Records subscribe/unsubscribe/publish in one ordered log."""

    connected_url = "nats://x:1"
    is_connected = True

    def __init__(self):
        self.log = []
        self.replies = []
        self.callbacks = {}
        self.batched = {}

    def subscribe(self, subject, callback, queue=None, batches=False):
        handle = Handle(self, subject, queue)
        self.log.append(("sub", subject))
        self.set_callback(subject, callback, batches)
        return handle

    def set_callback(self, subject, callback, batches):
        """`callbacks[subject](msg)` delivers one message, as one read of it would; `batched`
        says which subjects' callbacks take lists."""
        self.callbacks[subject] = (lambda msg: callback([msg])) if batches else callback
        self.batched[subject] = batches

    def unsubscribe(self, handle):
        self.log.append(("unsub", handle.subject))

    def publish(self, subject, payload, headers=None):
        self.replies.append((subject, json.loads(payload)))


def memory_bridge_config(*subscriptions: SubscriptionConfig) -> BridgeConfig:
    """Device pi1 on the memory driver, with these subscriptions; the server is never dialled."""
    return BridgeConfig(device=DeviceConfig(id="pi1", driver="memory"), nats=NatsConfig(servers=("nats://x:1",)),
                        subscriptions=subscriptions)
