"""The display actions at run time: parsed by the subscription, handed to the bridge's Display on
the reactor thread and answered at once; the joystick's middle press reaches the display first;
a reload reconfigures it. A synchronous worker on a task.Clock puts every frame on the memory
device at once, so the tests read the screen."""

from __future__ import annotations

import json

from twisted.internet import defer, task

from bridge.config.model import BridgeConfig, PublicationConfig, SubscriptionConfig
from bridge.devices.memory import MemoryDevice
from bridge.display.layers import Display, LayeredDevice
from bridge.display.model import App, Content, DisplayConfig
from bridge.nats.protocol import Msg
from bridge.runtime.bridge import Bridge, BridgeState
from tests.harness.fake_nats import FakeClient, memory_bridge_config

RED, BLUE = (255, 0, 0), (0, 0, 255)


class InlineWorker:
    """The display worker, run at once on the calling thread; records what base actions it got."""

    idle = True

    def __init__(self, device):
        self.device = device
        self.enqueued = []

    def call(self, fn, *args):
        try:
            return defer.succeed(fn(*args))
        except Exception as error:
            return defer.fail(error)

    def interrupt_running(self, why):
        pass

    def enqueue(self, key, command, pending_limit, overflow, done, context, size=0, pending_bytes=None):
        self.enqueued.append(command.action)
        done(context, True, None)

    def pending(self, key):
        return 0


SUBSCRIPTIONS = tuple(SubscriptionConfig(subject=f"t.{action}", action=action)
                      for action in ("notify", "dismiss", "indicator", "app"))


def running_bridge(config: BridgeConfig | None = None) -> Bridge:
    config = config or memory_bridge_config(*SUBSCRIPTIONS)
    clock = task.Clock()
    device = MemoryDevice()
    bridge = Bridge(config, clock, device)
    bridge.client = FakeClient()
    layered = LayeredDevice(device)
    bridge.worker = InlineWorker(layered)
    bridge.display = Display(bridge.worker, layered, clock, config.display)
    bridge.display.start()
    bridge._apply_subscriptions(config.subscriptions)
    bridge._apply_publications(config.publications)
    bridge.state = BridgeState.RUNNING
    return bridge


def send(bridge: Bridge, action: str, payload) -> dict:
    if not isinstance(payload, (bytes, str)):
        payload = json.dumps(payload)
    if isinstance(payload, str):
        payload = payload.encode()
    bridge.client.replies.clear()
    bridge.client.callbacks[f"t.{action}"](Msg(f"t.{action}", 1, "inbox.1", payload))
    [(subject, reply)] = bridge.client.replies
    assert subject == "inbox.1"
    return reply


def subscription(bridge: Bridge, action: str):
    return next(item for item in bridge.subscriptions if item.config.action == action)


def test_notify_is_answered_when_accepted_with_its_id_and_place_in_the_queue():
    bridge = running_bridge()
    assert send(bridge, "notify", {"text": "first", "id": "one", "hold": True}) == {"ok": True, "id": "one", "position": 0}
    second = send(bridge, "notify", {"text": "second"})
    assert second["ok"] is True and second["position"] == 1 and second["id"] != "one"
    assert bridge.worker.enqueued == []  # nothing went to the device worker's queue
    assert subscription(bridge, "notify").info()["applied"] == 2


def test_a_full_queue_is_an_error_reply_counted_like_any_error():
    config = memory_bridge_config(*SUBSCRIPTIONS)
    config = BridgeConfig(device=config.device, nats=config.nats, subscriptions=config.subscriptions,
                          display=DisplayConfig(queue_limit=1))
    bridge = running_bridge(config)
    send(bridge, "notify", {"text": "showing", "hold": True})
    reply = send(bridge, "notify", {"text": "one too many"})
    assert reply["ok"] is False and "\n" not in reply["error"] and reply["error"]
    info = subscription(bridge, "notify").info()
    assert (info["applied"], info["errors"]) == (1, 1)
    assert subscription(bridge, "notify").last_error == reply["error"]


def test_a_bad_payload_is_an_error_reply_naming_the_action():
    bridge = running_bridge()
    assert send(bridge, "notify", {"text": "x", "priority": 11}) == {
        "ok": False, "error": "notify: priority must be an integer 0..9, got 11"}


def test_a_notification_covers_the_base_and_dismiss_gives_it_back():
    bridge = running_bridge()
    device = bridge.device
    picture = [[index, 0, 255 - index] for index in range(64)]
    bridge.worker.device.set_pixels([tuple(colour) for colour in picture])  # a set_pixels on the display worker
    send(bridge, "notify", {"pixels": [[255, 0, 0]] * 64, "hold": True, "id": "alarm"})
    assert device.get_pixels() == [[255, 0, 0]] * 64
    assert send(bridge, "dismiss", "alarm") == {"ok": True, "dismissed": 1}
    assert device.get_pixels() == picture
    assert send(bridge, "dismiss", "") == {"ok": True, "dismissed": 0}
    assert send(bridge, "dismiss", "nobody")["ok"] is False


def test_indicators_are_set_and_cleared():
    bridge = running_bridge()
    assert send(bridge, "indicator", {"n": 2, "color": [0, 0, 255]}) == {"ok": True}
    assert bridge.device.get_pixels()[7] == [0, 0, 255]
    assert bridge.display.info()["indicators"] == {"2": {"colour": [0, 0, 255], "blink": None}}
    assert send(bridge, "indicator", {"n": 2, "color": None}) == {"ok": True}
    assert bridge.display.info()["indicators"] == {}
    assert bridge.device.get_pixels()[7] == [0, 0, 0]


def test_apps_are_set_and_removed_by_name(tmp_path):
    bridge = running_bridge()
    assert send(bridge, "app", {"name": "weather", "text": "sunny"}) == {"ok": True}
    assert [app["name"] for app in bridge.display.info()["apps"]] == ["weather"]
    assert send(bridge, "app", {"name": "weather", "remove": True}) == {"ok": True, "removed": True}
    assert send(bridge, "app", {"name": "weather", "remove": True}) == {"ok": True, "removed": False}
    assert bridge.display.info()["apps"] == []


def test_a_middle_press_that_dismisses_a_held_notification_is_not_published():
    config = memory_bridge_config(*SUBSCRIPTIONS)
    config = BridgeConfig(device=config.device, nats=config.nats, subscriptions=config.subscriptions,
                          publications=(PublicationConfig(subject="t.stick", sensor="joystick"),))
    bridge = running_bridge(config)
    send(bridge, "notify", {"text": "door", "hold": True})
    bridge.client.replies.clear()
    bridge.device.push_joystick("middle", "pressed")
    bridge._poll_joystick()
    assert bridge.display.info()["showing"]["layer"] != "notification"
    assert bridge.client.replies == []
    bridge.device.push_joystick("middle", "pressed")  # nothing held now: an ordinary press
    bridge._poll_joystick()
    assert [subject for subject, _ in bridge.client.replies] == ["t.stick"]


def test_the_joystick_is_polled_for_the_display_without_a_joystick_publication():
    bridge = running_bridge()
    assert bridge._joystick_loop is not None
    send(bridge, "notify", {"text": "door", "hold": True})
    bridge.device.push_joystick("middle", "pressed")
    bridge.reactor.advance(0.1)
    assert bridge.display.info()["queued"] == [] and bridge.display.info()["showing"]["layer"] != "notification"


def test_a_reload_reconfigures_the_display_and_its_icons():
    bridge = running_bridge()
    assert send(bridge, "notify", {"icon": "door"})["ok"] is False
    base = memory_bridge_config(*SUBSCRIPTIONS)
    door = (BLUE,) * 64
    apps = (App("clock", Content(text="12:00")),)
    bridge.reload(BridgeConfig(device=base.device, nats=base.nats, subscriptions=base.subscriptions,
                               display=DisplayConfig(apps=apps, icons=(("door", door),))))
    assert [app["name"] for app in bridge.display.info()["apps"]] == ["clock"]
    assert bridge.config.display.icons == (("door", door),)
    assert send(bridge, "notify", {"icon": "door", "hold": True})["ok"] is True
    assert bridge.device.get_pixels() == [list(BLUE)] * 64


def test_info_has_the_display():
    bridge = running_bridge()
    send(bridge, "notify", {"text": "hello", "hold": True, "id": "hi"})
    info = bridge.info()
    assert info["display"]["showing"] == {"layer": "notification", "id": "hi"}
    assert json.loads(json.dumps(info)) == info
