"""The Display service and the layered device on the memory driver, frames asserted by snapshot().

Most tests run the worker synchronously (`InlineWorker`) on a task.Clock, so every frame is on
the device the moment the clock reaches it; the last ones use the real DeviceWorker thread.
"""

from __future__ import annotations

import threading
from typing import NamedTuple

import pytest
import pytest_twisted
from twisted.internet import defer, reactor, task

from bridge.actions import MAX_TEXT_LENGTH, parse_command
from bridge.devices.memory import MemoryDevice
from bridge.devices.worker import DeviceWorker, Dropped
from bridge.display import render
from bridge.display.layers import Display, DisplayRefused, LayeredDevice, fill_fields
from bridge.display.model import App, Content, DisplayConfig, Indicator, Notification
from bridge.display.store import AppStore

RED, GREEN, BLUE, GREY = (255, 0, 0), (0, 255, 0), (0, 0, 255), (40, 40, 40)
PICTURE = tuple((index * 3, 255 - index * 3, index % 5) for index in range(64))
WAIT = 10.0  # only bounds a broken test; nothing asserts on time


class InlineWorker:
    """Runs each call at once on the calling thread; records what it was asked to do."""

    def __init__(self, device):
        self.device = device
        self.calls: list[str] = []
        self.interrupts: list[str] = []

    def call(self, fn, *args):
        self.calls.append(fn.__name__)
        try:
            return defer.succeed(fn(*args))
        except Exception as error:
            return defer.fail(error)

    def interrupt_running(self, why):
        self.interrupts.append(why)


class Rig:
    def __init__(self, config=DisplayConfig(), readings=dict, store=None):
        self.memory = MemoryDevice()
        self.layered = LayeredDevice(self.memory)
        self.worker = InlineWorker(self.layered)
        self.clock = task.Clock()
        self.display = Display(self.worker, self.layered, self.clock, config, readings=readings, store=store)
        self.display.start()

    def screen(self):
        return self.memory.snapshot()

    def draws(self):
        return self.worker.calls.count("draw")


@pytest.fixture
def rig():
    rig = Rig()
    yield rig
    rig.display.stop()
    assert not rig.clock.getDelayedCalls()


def scroll(text, colour=RED, speed=0.1):
    return Content(text=text, text_colour=colour, scroll_speed=speed)


def frame(content, index, indicators=()):
    return render.overlay(render.frame(content, index), indicators, True)


def test_a_higher_priority_shows_its_frame_0_at_once_and_the_lower_comes_back_from_its_start(rig):
    low, high = scroll("low"), scroll("HI!", GREEN)
    rig.display.notify(Notification(low, priority=1))
    rig.clock.advance(0.3)
    assert rig.screen() == frame(low, 3)
    assert rig.display.notify(Notification(high, priority=9)).position == 0
    assert rig.screen() == frame(high, 0)
    rig.clock.pump([0.1] * (render.frame_count(high) - 1))
    assert rig.screen() == frame(high, render.frame_count(high) - 1)
    rig.clock.advance(0.1)
    assert rig.screen() == frame(low, 0)
    rig.clock.pump([0.1] * render.frame_count(low))
    assert rig.screen() == ((0, 0, 0),) * 64


def test_a_set_pixels_picture_comes_back_pixel_for_pixel(rig):
    rig.worker.call(rig.layered.set_pixels, PICTURE)
    still = Content(pixels=(BLUE,) * 64)
    rig.display.notify(Notification(still))
    assert rig.screen() == (BLUE,) * 64
    rig.worker.call(rig.layered.set_pixel, 2, 3, GREEN)  # drawn under the notification
    assert rig.screen() == (BLUE,) * 64
    rig.clock.advance(5.0)
    expected = list(PICTURE)
    expected[3 * 8 + 2] = GREEN
    assert rig.screen() == tuple(expected)


def test_the_same_picture_is_never_drawn_twice_in_a_row():
    rig = Rig(DisplayConfig(apps=(App("still", Content(pixels=(BLUE,) * 64), duration=1.0),)))
    rig.clock.pump([1.0] * 10)  # the app comes up again every second
    rig.display.clear_indicator(3)  # none was set: nothing changes
    assert rig.draws() == 1
    rig.display.notify(Notification(Content(pixels=(GREEN,) * 64), duration=2.0))
    rig.clock.pump([1.0] * 2)
    assert rig.draws() == 3 and rig.screen() == (BLUE,) * 64
    rig.display.set_app(App("still", Content(pixels=(GREEN,) * 64), duration=1.0))
    assert rig.draws() == 4 and rig.screen() == (GREEN,) * 64
    rig.display.stop()


def test_hold_until_the_joystick_middle_press(rig):
    rig.worker.call(rig.layered.set_pixels, PICTURE)
    rig.display.notify(Notification(scroll("hold"), hold=True))
    rig.clock.pump([0.1] * 500)
    assert rig.screen() != PICTURE
    assert rig.display.on_joystick("up", "pressed") is False
    assert rig.display.on_joystick("middle", "released") is False
    assert rig.display.on_joystick("middle", "pressed") is True
    assert rig.screen() == PICTURE
    assert rig.display.on_joystick("middle", "pressed") is False


def test_indicators_sit_on_the_base_and_on_a_scroll(rig):
    rig.worker.call(rig.layered.set_pixels, PICTURE)
    red = Indicator(1, RED)
    rig.display.set_indicator(red)
    assert rig.screen() == (RED,) + PICTURE[1:]
    rig.worker.call(rig.layered.set_pixel, 0, 0, GREY)  # under the indicator
    rig.worker.call(rig.layered.set_pixel, 1, 0, GREY)
    assert rig.screen()[:2] == (RED, GREY)
    content = scroll("on top", BLUE)
    rig.display.notify(Notification(content))
    rig.clock.advance(0.2)
    assert rig.screen() == frame(content, 2, [red])
    rig.display.clear_indicator(1)
    assert rig.screen() == frame(content, 2)
    rig.display.dismiss()
    assert rig.screen() == (GREY, GREY) + PICTURE[2:]


def test_a_letter_drawn_on_the_shown_base_keeps_the_indicator_on_top_and_comes_back_whole(rig):
    letter = MemoryDevice()
    letter.show_letter("W", GREEN, GREY)
    rig.display.set_indicator(Indicator(3, RED))
    rig.worker.call(rig.layered.show_letter, "W", GREEN, GREY)
    assert rig.screen() == letter.snapshot()[:63] + (RED,)
    assert rig.layered.base == letter.snapshot()
    rig.display.clear_indicator(3)
    assert rig.screen() == letter.snapshot()


def test_a_blinking_indicator_goes_on_and_off_by_the_clock(rig):
    rig.worker.call(rig.layered.clear, GREY)
    rig.display.set_indicator(Indicator(2, GREEN, blink=0.5))
    assert rig.screen()[7] == GREEN
    rig.clock.advance(0.5)
    assert rig.screen()[7] == GREY
    rig.clock.advance(0.5)
    assert rig.screen()[7] == GREEN
    rig.worker.call(rig.layered.flip_h)  # a whole-base change keeps the lit indicator on top
    assert rig.screen()[7] == GREEN and rig.screen()[0] == GREY


def test_stack_false_replaces_and_the_replaced_one_is_gone(rig):
    first, second = scroll("first"), scroll("second", GREEN)
    rig.display.notify(Notification(first))
    rig.clock.advance(0.2)
    rig.display.notify(Notification(second, stack=False))
    assert rig.screen() == frame(second, 0)
    rig.clock.pump([0.1] * render.frame_count(second))
    assert rig.display.info()["showing"] == {"layer": "base"}


def test_a_full_queue_refuses_with_one_sentence():
    rig = Rig(DisplayConfig(queue_limit=2))
    rig.display.notify(Notification(scroll("a")))
    rig.display.notify(Notification(scroll("b")))
    with pytest.raises(DisplayRefused) as refused:
        rig.display.notify(Notification(scroll("c")))
    assert str(refused.value) == "notify: refused, the display already holds 2 notifications (queue_limit 2)"
    assert isinstance(refused.value, ValueError)


def test_dismiss_by_id_and_an_unknown_id(rig):
    first = rig.display.notify(Notification(scroll("a")))
    second = rig.display.notify(Notification(scroll("b"), hold=True))
    assert second.position == 1
    assert rig.display.info()["queued"] == [{"id": second.id, "priority": 5, "hold": True, "text": "b"}]
    assert rig.display.dismiss(first.id) == 1
    assert rig.display.info()["showing"] == {"layer": "notification", "id": second.id}
    with pytest.raises(DisplayRefused, match="no notification with id 'nope'"):
        rig.display.dismiss("nope")
    assert rig.display.dismiss("all") == 1


def test_leaving_the_base_interrupts_a_running_scroll_once(rig):
    rig.display.notify(Notification(scroll("one")))
    rig.clock.advance(0.1)
    assert rig.worker.interrupts == ["the display shows a notification"]


def test_frames_go_through_the_workers_own_device_so_the_hang_watchdog_can_see_them():
    memory = MemoryDevice()
    layered = LayeredDevice(memory)
    seen = []

    class Watched:
        def __getattr__(self, name):
            seen.append(name)
            return getattr(layered, name)

    display = Display(InlineWorker(Watched()), layered, task.Clock(), DisplayConfig())
    display.start()
    display.notify(Notification(Content(pixels=(BLUE,) * 64), hold=True))
    display.dismiss()
    assert seen == ["show_base", "draw", "show_base"] and memory.snapshot() == ((0, 0, 0),) * 64


def test_show_message_under_a_notification_does_not_scroll():
    memory = MemoryDevice()
    layered = LayeredDevice(memory)
    layered.draw((BLUE,) * 64)
    layered.show_message("hidden", RED, GREY, 0.1)
    layered.show_letter("A", RED, GREY)
    assert memory.messages == [] and memory.letters == []
    assert memory.snapshot() == (BLUE,) * 64
    drawn_by_the_driver = MemoryDevice()
    drawn_by_the_driver.show_letter("A", RED, GREY)
    assert layered.base == drawn_by_the_driver.snapshot()
    layered.show_message("hidden", RED, GREY, 0.1)
    layered.show_base()
    assert memory.snapshot() == (GREY,) * 64


def test_the_layered_device_passes_the_rest_through():
    memory = MemoryDevice()
    layered = LayeredDevice(memory)
    layered.draw((BLUE,) * 64)
    layered.set_rotation(180)
    layered.set_low_light(True)
    assert (memory.rotation, layered.rotation, layered.low_light) == (180, 180, True)
    memory.set_sensor("temperature", 19.5)
    assert layered.read("temperature") == (19.5, "°C")
    layered.push_joystick("middle")
    assert layered.poll_joystick() == [("middle", "pressed")]
    assert layered.get_pixels() == [list(BLUE)] * 64
    assert layered.run_batch("set_pixel", [(0, 0, RED), (9, 9, RED)])[0][0] == 1
    assert layered.base[0] == RED
    layered.close()
    assert memory.closed


def test_apps_loop_with_their_fields_filled_when_they_come_up():
    readings = {"temperature": 21.4}
    apps = (App("temp", Content(text="{temperature:.0f}C", scroll_speed=0.1), duration=3.0),
            App("still", Content(pixels=(GREEN,) * 64), duration=2.0))
    rig = Rig(DisplayConfig(apps=apps), readings=lambda: readings)
    assert rig.screen() == frame(Content(text="21C", scroll_speed=0.1), 0)
    readings["temperature"] = 30.0
    rig.clock.advance(0.2)
    assert rig.screen() == frame(Content(text="21C", scroll_speed=0.1), 2)
    rig.clock.pump([0.1] * 28)
    assert rig.screen() == (GREEN,) * 64
    rig.clock.pump([1.0, 1.0])
    assert rig.screen() == frame(Content(text="30C", scroll_speed=0.1), 0)
    assert rig.display.info()["apps"] == [{"name": "temp", "stale": False, "runtime": False},
                                          {"name": "still", "stale": False, "runtime": False}]


def test_fields_without_a_reading_or_with_a_wrong_format_stay_readable():
    assert fill_fields("{temperature:.1f}° {humidity:.0f}%", {"temperature": 21.25}) == "21.2° --%"
    assert fill_fields("{orientation[yaw]:.0f}", {"orientation": {"yaw": 90.4}}) == "90"
    assert fill_fields("{temperature:d}", {"temperature": 21.5}) == "21.5"
    assert fill_fields("{unbalanced", {}) == "{unbalanced"


def test_a_stale_app_is_dimmed():
    rig = Rig()
    rig.display.set_app(App("old", Content(pixels=(GREY,) * 64), lifetime=10.0, lifetime_mode="stale",
                            persistent=True))
    assert rig.screen() == (GREY,) * 64
    rig.clock.advance(10.0)
    assert rig.screen() == ((10, 10, 10),) * 64
    assert rig.display.info()["apps"] == [{"name": "old", "stale": True, "runtime": True}]
    assert rig.display.remove_app("old") is True
    assert rig.display.info()["showing"] == {"layer": "base"}


def test_runtime_apps_are_saved_and_come_back_after_a_restart(tmp_path):
    app = App("note", Content(text="hi", icon=PICTURE), persistent=True)
    first = Rig(store=AppStore(tmp_path))
    first.display.set_app(app)
    first.display.set_app(App("from config", Content(text="x")))  # not persistent: not saved
    first.display.stop()
    second = Rig(store=AppStore(tmp_path))
    assert second.display.info()["apps"] == [{"name": "note", "stale": False, "runtime": True}]
    assert second.display.info()["showing"] == {"layer": "app", "name": "note"}


def test_reconfigure_keeps_runtime_apps(rig):
    rig.display.set_app(App("runtime", Content(text="r"), persistent=True))
    rig.display.reconfigure(DisplayConfig(apps=(App("configured", Content(text="c")),), idle="loop"))
    assert [app["name"] for app in rig.display.info()["apps"]] == ["configured", "runtime"]


def test_idle_blank_draws_black_with_the_indicators():
    rig = Rig(DisplayConfig(idle="blank"))
    rig.worker.call(rig.layered.set_pixels, PICTURE)
    rig.display.set_indicator(Indicator(4, BLUE))
    expected = [(0, 0, 0)] * 64
    expected[56] = BLUE
    assert rig.screen() == tuple(expected)
    assert rig.display.info()["indicators"] == {"4": {"colour": list(BLUE), "blink": None}}


# -- the real worker thread ---------------------------------------------------------------------


class ScrollingDevice(MemoryDevice):
    """show_message scrolls until its interrupt is set (or WAIT passes), like the real drivers."""

    def __init__(self):
        super().__init__()
        self.scrolling = threading.Event()

    def show_message(self, text, text_colour, back_colour, scroll_speed, interrupt=None):
        self.scrolling.set()
        if interrupt is not None:
            interrupt.wait(WAIT)
        super().show_message(text, text_colour, back_colour, scroll_speed)


class Threaded(NamedTuple):
    device: ScrollingDevice
    layered: LayeredDevice
    worker: DeviceWorker
    display: Display

    def scroll(self, text: bytes) -> defer.Deferred:
        """Queue a show_message on the real worker: fires with (ok, value) when it ends."""
        done = defer.Deferred()
        self.worker.enqueue("k", parse_command("show_message", text, {}), 10, "queue",
                            lambda context, ok, value: done.callback((ok, value)), None)
        return done

    @defer.inlineCallbacks
    def until_shown(self, picture):
        for _ in range(int(WAIT / 0.01)):
            if self.device.snapshot() == picture:
                return
            yield task.deferLater(reactor, 0.01)
        assert self.device.snapshot() == picture


@pytest.fixture
def threaded():
    device = ScrollingDevice()
    layered = LayeredDevice(device)
    worker = DeviceWorker(layered, reactor)
    worker.start()
    display = Display(worker, layered, reactor, DisplayConfig())
    display.start()
    yield Threaded(device, layered, worker, display)
    display.stop()
    pytest_twisted.blockon(worker.stop(WAIT))


@pytest_twisted.inlineCallbacks
def test_a_notification_cuts_a_base_scroll_short_on_the_worker_thread(threaded):
    running = threaded.scroll(b"a long scroll")
    assert (yield task.deferLater(reactor, 0, threaded.device.scrolling.wait, WAIT))
    threaded.display.notify(Notification(Content(pixels=(GREEN,) * 64), hold=True))
    ok, value = yield running
    assert not ok and isinstance(value, Dropped) and str(value) == (
        "show_message: interrupted, the display shows a notification")
    yield threaded.until_shown((GREEN,) * 64)
    assert threaded.display.on_joystick("middle", "pressed") is True
    yield threaded.worker.call(lambda: None)  # show_base runs before this
    assert threaded.device.snapshot() == ((0, 0, 0),) * 64


@pytest_twisted.inlineCallbacks
def test_a_notification_also_spares_the_scrolls_waiting_behind_the_running_one(threaded):
    running, waiting = threaded.scroll(b"the running scroll"), threaded.scroll(b"the waiting scroll")
    assert (yield task.deferLater(reactor, 0, threaded.device.scrolling.wait, WAIT))
    threaded.display.notify(Notification(Content(pixels=(GREEN,) * 64), hold=True))
    first, second = yield defer.gatherResults([running, waiting])
    assert first[0] is False and second == (True, None)
    assert threaded.device.messages == ["the running scroll"]  # the waiting one never scrolled under it
    assert threaded.layered.base == ((0, 0, 0),) * 64  # its back colour, where its scroll would have ended
    yield threaded.until_shown((GREEN,) * 64)

def test_an_apps_fields_read_readings_only_and_stay_small():
    """App text comes from the config or any publisher: a field never reaches an object's
    attributes, and a format never pads a reading to megabytes."""
    readings = {"temperature": 21.456, "orientation": {"pitch": 1.25}}
    assert fill_fields("{temperature:.1f}°C {orientation[pitch]:.0f}", readings) == "21.5°C 1"
    assert fill_fields("{temperature.__class__} {temperature.__class__.__init__.__globals__}", readings) == "-- --"
    assert fill_fields("{0} {humidity} {orientation[roll]}", readings) == "-- -- --"
    assert fill_fields("{temperature:>99999999}", readings) == "21.456"
    assert fill_fields("{temperature:{temperature}}", readings) == "21.456"
    assert len(fill_fields("{orientation}" * 300, readings)) == MAX_TEXT_LENGTH
