"""Reloading subscriptions in memory: what a reload keeps, subscribes, unsubscribes and in which
order; what happens to a removed subscription's queued messages; `pending` per worker."""

from __future__ import annotations

from twisted.internet import task

from bridge.actions import ActionFailed
from bridge.config.model import SubscriptionConfig
from bridge.devices.memory import MemoryDevice
from bridge.devices.worker import Dropped
from bridge.nats.protocol import Msg
from bridge.runtime.bridge import Bridge, BridgeState
from bridge.runtime.subscriptions import plan_reload
from tests.harness.fake_nats import FakeClient, memory_bridge_config


class HoldingWorker:
    """Keeps every enqueued item (a single command or a batch) until the test finishes it."""

    idle = False

    def __init__(self):
        self.queued = []  # (key, argument tuples, finish(ok, error))

    def enqueue(self, key, command, pending_limit, overflow, done, context, size=0, pending_bytes=None):
        self.queued.append((key, [command.args], lambda ok, error: done(context, ok, error)))

    def enqueue_batch(self, key, action, calls, sizes, pending_limit, pending_bytes, done, context):
        indices = range(len(calls))
        self.queued.append((key, calls, lambda ok, error: done(context, indices, ok, [] if ok else error)))

    def pending(self, key):
        return sum(len(calls) for queued_key, calls, _ in self.queued if queued_key is key)

    def finish_all(self, ok=True):
        """Run everything queued; returns the argument tuples in order."""
        queued, self.queued = self.queued, []
        for _, _, finish in queued:
            finish(ok, None if ok else Dropped("x"))
        return [args for _, calls, _ in queued for args in calls]


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
    assert bridge.worker.finish_all() == [((255, 0, 0),), ((0, 0, 255),)]  # queued kept the old args
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


# --- a read's run of messages as one batch ----------------------------------------------------

PIXEL = SubscriptionConfig(subject="t.pixel", action="set_pixel")


def pixel_message(x, reply=None):
    return message("t.pixel", b'{"x": %d, "y": 0, "color": [1, 2, 3]}' % x, reply)


def test_a_bad_message_inside_a_run_gets_its_error_reply_and_the_rest_are_applied():
    bridge = running_bridge(PIXEL)
    (subscription,) = bridge.subscriptions
    subscription.on_messages([pixel_message(0, "r.0"), message("t.pixel", b"{", "r.1"), pixel_message(1, "r.2")])
    ((reply, answer),) = bridge.client.replies
    assert reply == "r.1" and answer["ok"] is False and answer["error"].startswith("set_pixel: ")
    assert subscription.stats.processing_ns > 0  # the bad one's, counted as it is answered
    assert len(bridge.worker.queued) == 1  # the two good ones, as one batch
    assert bridge.worker.finish_all() == [(0, 0, (1, 2, 3)), (1, 0, (1, 2, 3))]
    assert bridge.client.replies[1:] == [("r.0", {"ok": True}), ("r.2", {"ok": True})]
    assert (subscription.stats.received, subscription.stats.applied, subscription.stats.errors) == (3, 2, 1)


def test_a_device_failure_inside_a_batch_fails_only_its_message_with_counts_and_replies_per_message():
    bridge = running_bridge(PIXEL)
    (subscription,) = bridge.subscriptions
    subscription.on_messages([pixel_message(0, "r.0"), pixel_message(1, "r.1"), pixel_message(2)])
    assert len(bridge.worker.queued) == 1
    subscription._batch_finished((["t.pixel"] * 3, ["r.0", "r.1", None], 0), range(3), True,
                                 [(1, ActionFailed("set_pixel: this LED is broken"))])
    assert bridge.client.replies == [("r.0", {"ok": True}),
                                     ("r.1", {"ok": False, "error": "set_pixel: this LED is broken"})]
    stats = subscription.stats
    assert (stats.received, stats.applied, stats.errors, stats.dropped) == (3, 2, 1, 0)
    assert subscription.last_error == "set_pixel: this LED is broken"


def test_a_device_failure_inside_a_batch_without_replies_is_still_counted_and_logged():
    bridge = running_bridge(PIXEL)
    (subscription,) = bridge.subscriptions
    subscription._batch_finished((["t.pixel"] * 2, None, 0), range(2), True, [(0, ActionFailed("set_pixel: no"))])
    stats = subscription.stats
    assert (stats.applied, stats.errors, subscription.last_error) == (1, 1, "set_pixel: no")
    assert stats.processing_ns > 0 and bridge.client.replies == []


def test_a_batch_dropped_whole_counts_each_message_dropped():
    bridge = running_bridge(PIXEL)
    (subscription,) = bridge.subscriptions
    subscription.on_messages([pixel_message(0, "r.0"), pixel_message(1)])
    bridge.worker.finish_all(ok=False)
    assert bridge.client.replies == [("r.0", {"ok": False, "error": "x"})]
    assert (subscription.stats.applied, subscription.stats.dropped) == (0, 2)


def test_a_reload_between_two_runs_keeps_the_queued_batch_and_parses_the_next_with_the_new_config():
    bridge = running_bridge(PIXEL)
    (subscription,) = bridge.subscriptions
    subscription.on_messages([pixel_message(0), pixel_message(1)])
    bridge.reload(memory_bridge_config(SubscriptionConfig(subject="t.pixel", action="set_pixel",
                                                          args={"color": (9, 9, 9)}, locked=("color",))))
    assert bridge.subscriptions == [subscription]
    subscription.on_messages([pixel_message(2), message("t.pixel", b'{"x": 3, "y": 0}')])
    assert subscription.info()["pending"] == 3
    assert bridge.worker.finish_all() == [(0, 0, (1, 2, 3)), (1, 0, (1, 2, 3)), (3, 0, (9, 9, 9))]
    stats = subscription.stats
    assert (stats.received, stats.applied, stats.errors) == (4, 3, 1)
    assert "color is locked" in subscription.last_error


def test_only_actions_that_batch_are_subscribed_for_runs_and_a_reload_switches_the_kept_subscription():
    scroll = SubscriptionConfig(subject="t.text", action="show_message")
    latest = SubscriptionConfig(subject="t.pixel", action="set_pixel", overflow="latest")
    bridge = running_bridge(scroll, latest, CLEAR_RED)
    assert bridge.client.batched == {"t.text": False, "t.pixel": False, "t.clear": True}
    bridge.reload(memory_bridge_config(scroll, PIXEL, SubscriptionConfig(subject="t.clear", action="get_pixels")))
    assert bridge.client.log.count(("sub", "t.pixel")) == 1  # the NATS subscription was kept
    assert bridge.client.batched == {"t.text": False, "t.pixel": True, "t.clear": False}
    bridge.client.callbacks["t.pixel"](pixel_message(0))
    bridge.client.callbacks["t.text"](message("t.text", b"hi"))
    assert [calls for _, calls, _ in bridge.worker.queued] == [[(0, 0, (1, 2, 3))], [("hi", (255, 255, 255),
                                                                                       (0, 0, 0), 0.1)]]
