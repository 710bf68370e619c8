"""The display layer at run time: `Display` on the reactor thread decides (through
`bridge.display.policy`) and times the frames; `LayeredDevice` on the display worker's thread keeps
the base frame and puts pictures on the hardware.

    notify / dismiss / indicator / app → Display → policy.Layers → decide → render → worker.call(layered.draw)
    set_pixel(s) / clear / show_letter / show_message / flips → worker → LayeredDevice → the base frame
"""

from __future__ import annotations

import re
import string
import threading
import time
from dataclasses import replace
from typing import Any, Callable, Iterable, Sequence

from twisted.logger import Logger

from bridge.actions import MAX_TEXT_LENGTH
from bridge.devices import scroll
from bridge.devices.base import Colour, Device
from bridge.devices.worker import Dropped
from bridge.display import render
from bridge.display.model import BLACK, App, Content, DisplayConfig, Indicator, Notification, Picture
from bridge.display.policy import TOLERANCE, Accepted, DisplayRefused, Layers, Showing, decide
from bridge.display.store import AppStore

__all__ = ["Accepted", "Display", "DisplayRefused", "LayeredDevice"]

log = Logger(namespace="bridge.display")

BLANK: Picture = (BLACK,) * 64
STALE_DIMMING = 4  # a stale app is drawn at a quarter of its brightness


class Display:
    """What the matrix shows above the base frame: notifications, the app loop, indicators.

    Wiring (everything on the reactor thread)::

        layered = LayeredDevice(device)
        worker = DeviceWorker(WatchedDevice(layered, "display"), reactor)
        display = Display(worker, layered, reactor, config.display, readings=latest_readings,
                          store=AppStore(state_directory()))
        worker.start(); display.start()      # display.stop() before worker.stop(); a reload: reconfigure()

    Base-layer actions (set_pixel(s), clear, show_letter, show_message, flips) go through the same
    worker to `LayeredDevice`, which keeps them in the base while a notification or an app covers
    it. Frames are `worker.device.draw` / `show_base` calls: the hang watchdog sees them once its
    WatchedDevice.WATCHED names them. `notify`, `dismiss`, `set_app` raise `DisplayRefused` (a
    ValueError whose str() is the reply's sentence). `on_joystick` returns True when the
    event was the middle press that dismissed a held notification (then it is not published).
    `readings()` gives the latest sensor values by name, for apps' `{sensor:format}` fields.
    There is one pending reactor call at a time: the next frame, end, blink or app turn.
    """

    def __init__(self, worker, layered: LayeredDevice, reactor, config: DisplayConfig, *,
                 readings: Callable[[], dict[str, Any]] = dict, store: AppStore | None = None):
        self._worker = worker
        # Frames go through the worker's own device (the layered one, watched for hangs when the
        # watchdog wraps it), so a frame that hangs is seen as a device hang.
        self._screen = getattr(worker, "device", layered)
        self._layered = layered
        self._reactor = reactor
        self._readings = readings
        self._store = store
        self._layers = Layers(config, render.frame_count, self._resolve)
        self._wake = None
        self._drawn: Any = None  # the last picture drawn, or ("base", indicators) for the base
        self._running = False

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        self._running = True
        if self._store is not None:
            self._worker.call(self._store.load).addCallbacks(self._restore, self._failed,
                                                             errbackArgs=("loading the runtime apps",))
        self._update()

    def stop(self) -> None:
        self._running = False
        if self._wake is not None and self._wake.active():
            self._wake.cancel()
        self._wake = None

    def reconfigure(self, config: DisplayConfig) -> None:
        self._layers.reconfigure(config, self._reactor.seconds())
        self._update()

    def _restore(self, apps: list[App]) -> None:
        for app in apps:
            try:
                self._layers.set_app(app, self._reactor.seconds())
            except DisplayRefused as refused:
                log.warn("display: runtime app {name!r} not restored: {why}", name=app.name, why=str(refused))
        self._update()

    # -- requests -----------------------------------------------------------------------

    def notify(self, notification: Notification) -> Accepted:
        accepted = self._layers.notify(notification, self._reactor.seconds())
        self._update()
        return accepted

    def dismiss(self, target: str = "current") -> int:
        count = self._layers.dismiss(target, self._reactor.seconds())
        self._update()
        return count

    def set_indicator(self, indicator: Indicator) -> None:
        self._layers.set_indicator(indicator, self._reactor.seconds())
        self._update()

    def clear_indicator(self, number: int) -> None:
        self._layers.clear_indicator(number)
        self._update()

    def set_app(self, app: App) -> None:
        self._layers.set_app(app, self._reactor.seconds(), runtime=app.persistent)
        if app.persistent:
            self._save()
        self._update()

    def remove_app(self, name: str) -> bool:
        removed = self._layers.remove_app(name, self._reactor.seconds())
        if removed:
            self._save()
            self._update()
        return removed

    def on_joystick(self, direction: str, action: str) -> bool:
        if direction != "middle" or action != "pressed":
            return False
        if not self._layers.press_middle(self._reactor.seconds()):
            return False
        self._update()
        return True

    def info(self) -> dict:
        layers = self._layers
        showing, _ = decide(layers, self._reactor.seconds())
        shown: dict[str, Any] = {"layer": showing.layer}
        if showing.layer == "notification":
            shown["id"] = showing.key
        elif showing.layer == "app":
            shown["name"] = showing.key
        return {
            "showing": shown,
            "queued": [{"id": held.id, "priority": held.priority, "hold": held.notification.hold,
                        "text": held.notification.content.text} for held in layers.waiting],
            "apps": [{"name": name, "stale": entry.stale, "runtime": entry.runtime}
                     for name, entry in layers.apps.items()],
            "indicators": {str(number): {"colour": list(indicator.colour), "blink": indicator.blink}
                           for number, (indicator, _) in sorted(layers.indicators.items())},
        }

    # -- frames -------------------------------------------------------------------------

    def _update(self) -> None:
        """Catch the policy up with now, draw what it says if that changed, sleep until its next change."""
        if not self._running:
            return
        now = self._reactor.seconds()
        self._layers.advance(now)
        showing, next_change = decide(self._layers, now)
        self._draw(showing)
        if self._wake is not None and self._wake.active():
            self._wake.cancel()
        self._wake = None
        if next_change is not None:
            self._wake = self._reactor.callLater(max(0.0, next_change - now - TOLERANCE / 2), self._update)

    def _draw(self, showing: Showing) -> None:
        if showing.layer == "base":
            shown = ("base", showing.indicators)
            if shown != self._drawn:
                self._drawn = shown
                self._call(self._screen.show_base, showing.indicators, what="showing the base frame")
            return
        if showing.layer == "blank":
            picture = BLANK
        else:
            picture = render.frame(showing.content, showing.frame)
            if showing.stale:
                picture = dimmed(picture)
        picture = render.overlay(picture, showing.indicators, True)
        if picture == self._drawn:
            return
        if self._drawn is None or self._drawn[0] == "base":
            # The base may be scrolling a show_message, and more may wait behind it: cut the running
            # one short and let the waiting ones skip their scroll, so this frame shows at once.
            self._layered.request_cover()  # a flag, not a device call: safe from this thread
            self._worker.interrupt_running(f"the display shows a {showing.layer}")
        self._drawn = picture
        self._call(self._screen.draw, picture, what="drawing a frame")

    def _call(self, method: Callable, *args: Any, what: str) -> None:
        self._worker.call(method, *args).addErrback(self._failed, what)

    @staticmethod
    def _failed(failure, what: str) -> None:
        if failure.check(Dropped):
            return  # the worker is stopping: nothing more to show
        log.warn("display: {what} failed: {why}", what=what, why=failure.getErrorMessage())

    def _save(self) -> None:
        if self._store is not None:
            self._call(self._store.save, self._layers.runtime_apps(), what="saving the runtime apps")

    def _resolve(self, app: App, at: float) -> Content:
        """The content an app shows from `at`: its clock or its `{sensor:format}` fields filled."""
        content = app.content
        if app.clock is not None:
            return _with_text(content, time.strftime(app.clock, time.localtime(at)))
        if content.text and "{" in content.text:
            return _with_text(content, fill_fields(content.text, self._readings()))
        return content


def _with_text(content: Content, text: str) -> Content:
    return replace(content, text=text)


# What an app's text may ask of a reading: a sensor, optionally one component ({orientation[yaw]});
# never an attribute ({temperature.__class__} would read the process's objects), and a format
# spec without a width of thousands of characters.
_FIELD = re.compile(r"(?P<sensor>[a-z_]{1,40})(?:\[(?P<component>[a-z]{1,10})\])?\Z")
_FORMAT_SPEC = re.compile(r"(?:.?[<>^=])?[+ -]?0?\d{0,2}[,_]?(?:\.\d{1,2})?[eEfFgGn%d]?\Z")


class _Fields(string.Formatter):
    """str.format on the latest readings, for text the config or any publisher wrote: "--" for a
    sensor without a reading or a field it may not ask for, the plain value for a format that does
    not fit it, so one missing reading never blanks an app."""

    _MISSING = object()

    def get_field(self, field_name, args, kwargs):
        field = _FIELD.match(field_name)
        if field is None:
            return self._MISSING, field_name
        value = kwargs.get(field["sensor"], self._MISSING)
        if field["component"] is not None:
            value = value.get(field["component"], self._MISSING) if isinstance(value, dict) else self._MISSING
        return value, field_name

    def format_field(self, value, format_spec):
        if value is self._MISSING:
            return "--"
        if _FORMAT_SPEC.match(format_spec):
            try:
                return format(value, format_spec)
            except (ValueError, TypeError):
                pass
        return str(value)


def fill_fields(text: str, readings: dict[str, Any]) -> str:
    """`{temperature:.0f}` and the like filled from `readings`; text with unbalanced braces as it is.
    At most MAX_TEXT_LENGTH characters, like any text the display scrolls."""
    try:
        filled = _Fields().vformat(text, (), readings)
    except ValueError:
        filled = text
    return filled[:MAX_TEXT_LENGTH]


def dimmed(picture: Picture) -> Picture:
    return tuple((red // STALE_DIMMING, green // STALE_DIMMING, blue // STALE_DIMMING)
                 for red, green, blue in picture)


class LayeredDevice(Device):
    """The device as the base layer sees it, wrapping the real driver.

    Runs only on the display worker's thread (every method but `snapshot` and `poll_joystick`),
    so its state needs no lock. Base-layer calls update the base picture; they reach the hardware
    only while the base shows (with the lit indicators drawn again on top). While a notification
    or an app covers the base (`draw`), they only change the base picture, and show_message does
    not scroll: the base ends as its back colour at once. `show_base` uncovers it. Rotation, low
    light, sensors and the joystick always pass through.
    """

    def __init__(self, device: Device):
        self._device = device
        self.driver = device.driver
        self._base: list[Colour] = list(device.snapshot())
        self._covered = False
        # Set from the reactor thread when a cover is on its way through the worker's queue.
        self._cover_requested = threading.Event()
        self._lit: dict[int, Colour] = {}  # pixel index: the colour of the indicator lit there

    def __getattr__(self, name: str) -> Any:
        if name == "_device":
            raise AttributeError(name)
        return getattr(self._device, name)  # a driver's extras (a memory device's joystick pushes)

    @property
    def base(self) -> Picture:
        return tuple(self._base)

    @property
    def covered(self) -> bool:
        return self._covered

    # -- the layers ---------------------------------------------------------------------

    def request_cover(self) -> None:
        """Any thread: a `draw` is queued, so a show_message that runs before it need not scroll."""
        self._cover_requested.set()

    def draw(self, picture: Sequence[Colour]) -> None:
        """Cover the base with a notification's or an app's picture."""
        self._covered = True
        self._cover_requested.clear()
        self._device.set_pixels(picture)

    def show_base(self, indicators: Iterable[Indicator] = ()) -> None:
        """Show the base again, with these (lit) indicators on top."""
        self._covered = False
        self._lit = {render.CORNERS[indicator.number]: indicator.colour for indicator in indicators}
        self._device.set_pixels(self._with_indicators())

    def _with_indicators(self) -> list[Colour]:
        picture = list(self._base)
        for index, colour in self._lit.items():
            picture[index] = colour
        return picture

    def _show_whole_base(self, plain: Callable[[], None]) -> None:
        """The base changed as a whole: `plain()` when no indicator is lit, else one set_pixels."""
        if self._lit:
            self._device.set_pixels(self._with_indicators())
        else:
            plain()

    # -- base-layer drawing -------------------------------------------------------------

    def show_message(self, text: str, text_colour: Colour, back_colour: Colour, scroll_speed: float,
                     interrupt=None) -> None:
        self._base = [back_colour] * 64
        if self._covered or self._cover_requested.is_set():
            return
        self._device.show_message(text, text_colour, back_colour, scroll_speed, interrupt=interrupt)
        if self._lit:
            self._device.set_pixels(self._with_indicators())

    def show_letter(self, letter: str, text_colour: Colour, back_colour: Colour) -> None:
        if self._covered:
            self._base = scroll.letter(letter, text_colour, back_colour)
            return
        self._device.show_letter(letter, text_colour, back_colour)
        self._base = list(self._device.snapshot())
        if self._lit:
            self._device.set_pixels(self._with_indicators())

    def set_pixel(self, x: int, y: int, colour: Colour) -> None:
        index = y * 8 + x
        self._base[index] = colour
        if not self._covered and index not in self._lit:
            self._device.set_pixel(x, y, colour)

    def set_pixels(self, pixels: Sequence[Colour]) -> None:
        self._base = list(pixels)
        if not self._covered:
            self._show_whole_base(lambda: self._device.set_pixels(pixels))

    def clear(self, colour: Colour) -> None:
        self._base = [colour] * 64
        if not self._covered:
            self._show_whole_base(lambda: self._device.clear(colour))

    def flip_h(self) -> None:
        base = self._base
        self._base = [colour for row in range(8) for colour in reversed(base[row * 8:row * 8 + 8])]
        if not self._covered:
            self._show_whole_base(self._device.flip_h)

    def flip_v(self) -> None:
        base = self._base
        self._base = [colour for row in reversed(range(8)) for colour in base[row * 8:row * 8 + 8]]
        if not self._covered:
            self._show_whole_base(self._device.flip_v)

    # -- passed through -----------------------------------------------------------------

    def get_pixels(self) -> list[list[int]]:
        return self._device.get_pixels()

    def set_rotation(self, rotation: int) -> None:
        self._device.set_rotation(rotation)

    def set_low_light(self, enabled: bool) -> None:
        self._device.set_low_light(enabled)

    @property
    def rotation(self) -> int:
        return self._device.rotation

    @property
    def low_light(self) -> bool:
        return self._device.low_light

    @low_light.setter
    def low_light(self, enabled: bool) -> None:
        self.set_low_light(enabled)

    def read(self, sensor: str) -> tuple[Any, str]:
        return self._device.read(sensor)

    def poll_joystick(self) -> list[tuple[str, str]]:
        return self._device.poll_joystick()

    def snapshot(self) -> tuple[Colour, ...]:
        return self._device.snapshot()

    def close(self) -> None:
        self._device.close()
