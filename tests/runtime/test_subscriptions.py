"""Reloading subscriptions in memory: what a reload keeps, subscribes, unsubscribes and in which
order; what happens to a removed subscription's queued messages; `pending` per worker."""

from __future__ import annotations

from twisted.internet import task

from bridge.config.model import SubscriptionConfig
from bridge.devices.memory import MemoryDevice
from bridge.devices.worker import Dropped
from bridge.nats.protocol import Msg
from bridge.runtime.bridge import Bridge, BridgeState
from bridge.runtime.subscriptions import plan_reload
from tests.harness.fake_nats import FakeClient, memory_bridge_config


class HoldingWorker:
    """Keeps every enqueued item until the test finishes it."""

    idle = False

    def __init__(self):
        self.queued = []

    def enqueue(self, key, command, pending_limit, overflow, done, context, size=0, pending_bytes=None):
        self.queued.append((key, command, done, context))

    def pending(self, key):
        return sum(1 for item in self.queued if item[0] is key)

    def finish_all(self, ok=True, value=None):
        queued, self.queued = self.queued, []
        for _, command, done, context in queued:
            done(context, ok, value if value is not None or ok else Dropped("x"))
        return [command for _, command, _, _ in queued]


def running_bridge(*subscriptions: SubscriptionConfig):
    bridge = Bridge(memory_bridge_config(*subscriptions), task.Clock(), MemoryDevice())
    bridge.client = FakeClient()
    bridge.worker = HoldingWorker()
    bridge.sensor_worker = HoldingWorker()
    bridge._apply_subscriptions(bridge.config.subscriptions)
    bridge.state = BridgeState.RUNNING
    return bridge


def message(subject, payload=b"", reply="inbox.1"):
    return Msg(subject, 1, reply, payload)


CLEAR_RED = SubscriptionConfig(subject="t.clear", action="clear", args={"color": (255, 0, 0)})
CLEAR_BLUE = SubscriptionConfig(subject="t.clear", action="clear", args={"color": (0, 0, 255)})


def test_plan_keeps_the_nats_subscription_when_only_args_change():
    bridge = running_bridge(CLEAR_RED)
    plan = plan_reload(bridge.subscriptions, [CLEAR_BLUE])
    assert plan.kept == [] and plan.added == [] and plan.removed == []
    assert [(item.config, new) for item, new in plan.replaced] == [(CLEAR_RED, CLEAR_BLUE)]


def test_args_only_reload_neither_subscribes_nor_unsubscribes_and_keeps_counts():
    bridge = running_bridge(CLEAR_RED)
    bridge.client.callbacks["t.clear"](message("t.clear"))
    before = bridge.client.log[:]
    bridge.reload(memory_bridge_config(CLEAR_BLUE))
    assert bridge.client.log == before
    (subscription,) = bridge.subscriptions
    assert subscription.stats.received == 1
    bridge.client.callbacks["t.clear"](message("t.clear"))
    commands = bridge.worker.finish_all()
    assert [command.args for command in commands] == [((255, 0, 0),), ((0, 0, 255),)]  # queued kept the old args
    assert subscription.info()["applied"] == 2


def test_a_changed_subject_is_subscribed_before_the_old_one_is_drained():
    bridge = running_bridge(CLEAR_RED)
    bridge.client.log.clear()
    moved = SubscriptionConfig(subject="t.clear2", action="clear")
    bridge.reload(memory_bridge_config(moved))
    assert bridge.client.log == [("sub", "t.clear2"), ("drain", "t.clear")]


def test_queued_messages_of_a_removed_subscription_run_and_reply_and_are_counted():
    bridge = running_bridge(CLEAR_RED)
    for _ in range(3):
        bridge.client.callbacks["t.clear"](message("t.clear"))
    bridge.reload(memory_bridge_config())
    assert bridge.info()["removed_subscriptions"]["pending"] == 3
    bridge.worker.finish_all()
    assert bridge.client.replies == [("inbox.1", {"ok": True})] * 3
    assert bridge.info()["removed_subscriptions"] == {"received": 3, "applied": 3, "errors": 0, "dropped": 0, "pending": 0}


def test_pending_of_read_sensors_asks_the_sensor_worker():
    sensors = SubscriptionConfig(subject="t.sensors", action="read_sensors")
    bridge = running_bridge(sensors)
    bridge.client.callbacks["t.sensors"](message("t.sensors"))
    assert bridge.info()["subscriptions"][0]["pending"] == 1
    assert bridge.worker.queued == [] and len(bridge.sensor_worker.queued) == 1
