"""What the matrix shows and until when: the whole display policy, as plain decisions over time.

`Layers` holds the state (the showing notification and those waiting, the app loop, the
indicators) and changes only through methods that take `now`; `decide(layers, now)` reads it and
answers what shows and when that next changes. No reactor, no threads, no drawing here: the
caller (`bridge.display.layers.Display`) calls `layers.advance(now)` whenever it wakes, draws
what `decide` says and sleeps until the time it gives.

Theory of operation:
- Notifications: one shows, the others wait, highest priority first, in arrival order within a
  priority. A higher priority takes over at once and the one it interrupts goes back to the head
  of its priority, to be shown again from frame 0; an equal one queues behind (stack) or replaces
  the showing one (no stack); a lower one waits. One that ended or was dismissed never returns.
- How long one shows: `hold` until dismissed; else `duration` exactly (scroll passes repeat, or
  after `repeat` passes the last frame stays); else `repeat` (default 1) passes, a still one 5 s.
- Below them the idle layer: the app loop (each app its `duration`, in order, from its first frame
  each time it comes up; the base when there are no apps), a blank matrix, or the base frame.
- Indicators are on top of everything; a blinking one is lit in the first half of each period
  counted from when it was set.
- Times are floats in seconds; frame k of a scroll starts `k × scroll_speed` after its start.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, NamedTuple

from bridge.display.model import MAX_APPS, App, Content, DisplayConfig, Indicator, Notification

STILL_SECONDS = 5.0  # a still notification without duration or hold
SHORTEST_APP = 0.1  # seconds an app shows at least, so the loop always moves on
TOLERANCE = 1e-6  # seconds: a wake-up this close before a boundary counts as on it (float sums of steps)


class DisplayRefused(ValueError):
    """A display request the policy turns down; str() is one sentence for the reply."""


class Accepted(NamedTuple):
    id: str
    position: int  # 0: showing now; n: n-th in line


class Showing(NamedTuple):
    """What the matrix shows at one moment. `indicators`: the ones lit now, in number order."""

    layer: str  # notification | app | base | blank
    key: str | None  # the notification's id or the app's name
    content: Content | None
    frame: int
    stale: bool
    indicators: tuple[Indicator, ...]


@dataclass
class Held:
    """A notification the display holds (showing or waiting), with its scroll's frame count."""

    notification: Notification
    id: str
    frames: int
    started: float | None = None  # set while it shows

    @property
    def priority(self) -> int:
        return self.notification.priority

    def ends_at(self) -> float | None:
        notification = self.notification
        if notification.hold:
            return None
        if notification.duration is not None:
            return self.started + notification.duration
        if self.frames == 1:
            return self.started + STILL_SECONDS
        return self.started + (notification.repeat or 1) * self.frames * notification.content.scroll_speed

    def passes(self) -> int | None:
        """How many passes of the scroll run before the last frame stays (None: they repeat)."""
        notification = self.notification
        if notification.duration is None and not notification.hold:
            return notification.repeat or 1
        return notification.repeat


@dataclass
class AppEntry:
    app: App
    set_at: float
    runtime: bool
    stale: bool = False

    @property
    def shown_for(self) -> float:
        return max(self.app.duration, SHORTEST_APP)

    def expires_at(self) -> float | None:
        if self.stale or self.app.lifetime is None:
            return None
        return self.set_at + self.app.lifetime


@dataclass
class Layers:
    """The display's state; see the module docstring for the rules its methods apply.

    `frame_count(content)` gives the scroll frames of one pass (1 for a still content);
    `resolve(app, now)` the content an app shows when it comes up (sensor fields, clock filled).
    """

    config: DisplayConfig
    frame_count: Callable[[Content], int]
    resolve: Callable[[App, float], Content] = lambda app, now: app.content
    current: Held | None = None
    waiting: list[Held] = field(default_factory=list)
    apps: dict[str, AppEntry] = field(default_factory=dict)
    indicators: dict[int, tuple[Indicator, float]] = field(default_factory=dict)  # number: (indicator, set at)
    app_name: str | None = None  # the app the loop is on
    app_started: float | None = None  # None: the loop is not on screen
    app_content: Content | None = None
    app_frames: int = 1
    _serial: int = 0

    def __post_init__(self) -> None:
        for app in self.config.apps:
            self.apps[app.name] = AppEntry(app, 0.0, runtime=False)

    # -- notifications ------------------------------------------------------------------

    def held(self) -> list[Held]:
        return ([self.current] if self.current else []) + self.waiting

    def notify(self, notification: Notification, now: float) -> Accepted:
        """Take a notification: show it now, queue it, or refuse it (DisplayRefused)."""
        self.advance(now)
        if notification.id is not None and any(held.id == notification.id for held in self.held()):
            raise DisplayRefused(f"notify: refused, a notification with id {notification.id!r} is already queued")
        current = self.current
        replaces = (current is not None and not notification.stack and notification.priority == current.priority)
        self._check_room(notification, replaces)
        if notification.id is None:
            self._serial += 1
            identifier = f"n{self._serial}"
        else:
            identifier = notification.id
        new = Held(notification, identifier, max(1, self.frame_count(notification.content)))
        if current is None or replaces:
            self._show(new, now)
            return Accepted(identifier, 0)
        if notification.priority > current.priority:
            current.started = None
            self._insert(current, at_head=True)
            self._show(new, now)
            return Accepted(identifier, 0)
        return Accepted(identifier, self._insert(new, at_head=False) + 1)

    def _check_room(self, notification: Notification, replaces: bool) -> None:
        held = self.held()
        if replaces:
            held = held[1:]
        limit, limit_bytes = self.config.queue_limit, self.config.queue_bytes
        if len(held) >= limit:
            raise DisplayRefused(f"notify: refused, the display already holds {len(held)} notifications "
                                 f"(queue_limit {limit})")
        held_bytes = sum(item.notification.size for item in held)
        if held_bytes and held_bytes + notification.size > limit_bytes:
            raise DisplayRefused(f"notify: refused, the display already holds {held_bytes} bytes of notifications "
                                 f"and this one's {notification.size} would pass queue_bytes {limit_bytes}")

    def _insert(self, held: Held, at_head: bool) -> int:
        """Put `held` in line (at the head of its priority, or behind it); its index in line."""
        index = 0
        for index, other in enumerate(self.waiting):
            if other.priority < held.priority or (at_head and other.priority == held.priority):
                break
        else:
            index = len(self.waiting)
        self.waiting.insert(index, held)
        return index

    def _show(self, held: Held | None, now: float) -> None:
        self.current = held
        if held is not None:
            held.started = now
            self.app_started = None

    def _next(self, now: float) -> None:
        """The showing notification is over: the first in line shows, or the idle layer comes back."""
        self._show(self.waiting.pop(0) if self.waiting else None, now)

    def dismiss(self, target: str, now: float) -> int:
        """"current", "all" or an id: how many went. DisplayRefused for an id the display does not hold."""
        self.advance(now)
        if target == "all":
            count = len(self.held())
            self.waiting.clear()
            self._show(None, now)
            return count
        if target == "current":
            if self.current is None:
                return 0
            self._next(now)
            return 1
        if self.current is not None and self.current.id == target:
            self._next(now)
            return 1
        for index, held in enumerate(self.waiting):
            if held.id == target:
                del self.waiting[index]
                return 1
        raise DisplayRefused(f"dismiss: no notification with id {target!r} is showing or queued")

    def press_middle(self, now: float) -> bool:
        """The joystick's middle press dismisses a held notification; False when none shows."""
        self.advance(now)
        if self.current is None or not self.current.notification.hold:
            return False
        self._next(now)
        return True

    # -- apps ---------------------------------------------------------------------------

    def set_app(self, app: App, now: float, runtime: bool = True) -> None:
        """Add an app at the end of the loop, or replace the one of that name where it is."""
        self.advance(now)
        if app.name not in self.apps and len(self.apps) >= MAX_APPS:
            raise DisplayRefused(f"app: refused, the loop already has {MAX_APPS} apps (the most it takes)")
        self.apps[app.name] = AppEntry(app, now, runtime)
        if app.name == self.app_name and self.app_started is not None:
            self.app_started = now
            self._come_up(now)

    def remove_app(self, name: str, now: float) -> bool:
        self.advance(now)
        if self.apps.pop(name, None) is None:
            return False
        if name == self.app_name:
            self.app_name = None
            self.app_started = None
        return True

    def reconfigure(self, config: DisplayConfig, now: float) -> None:
        """A reload: the config's apps replace the old config's, runtime apps stay (and win a name)."""
        self.advance(now)
        runtime = {name: entry for name, entry in self.apps.items() if entry.runtime}
        self.config = config
        self.apps = {app.name: AppEntry(app, now, runtime=False) for app in config.apps if app.name not in runtime}
        self.apps.update(runtime)
        if self.app_name not in self.apps:
            self.app_name = None
            self.app_started = None
        self.advance(now)

    def runtime_apps(self) -> list[App]:
        return [entry.app for entry in self.apps.values() if entry.runtime]

    # -- indicators ---------------------------------------------------------------------

    def set_indicator(self, indicator: Indicator, now: float) -> None:
        self.indicators[indicator.number] = (indicator, now)

    def clear_indicator(self, number: int) -> None:
        self.indicators.pop(number, None)

    # -- time ---------------------------------------------------------------------------

    def advance(self, now: float) -> None:
        """Apply what happened up to `now`: ended notifications, expired apps, the loop's turns."""
        self._expire_apps(now)
        while self.current is not None:
            ends = self.current.ends_at()
            if ends is None or ends > now + TOLERANCE:
                break
            self._next(ends)
        if self.current is not None or not self._loop_on_screen():
            self.app_started = None
            return
        self._turn_loop(now)

    def _loop_on_screen(self) -> bool:
        return self.config.idle == "loop" and bool(self.apps)

    def _expire_apps(self, now: float) -> None:
        for name, entry in list(self.apps.items()):
            expires = entry.expires_at()
            if expires is None or expires > now + TOLERANCE:
                continue
            if entry.app.lifetime_mode == "stale":
                entry.stale = True
            else:
                del self.apps[name]
                if name == self.app_name:
                    self.app_name = None
                    self.app_started = None

    def _turn_loop(self, now: float) -> None:
        names = list(self.apps)
        if self.app_name not in self.apps or self.app_started is None:
            if self.app_name not in self.apps:
                self.app_name = names[0]
            self.app_started = now
            self._come_up(now)
            return
        started, index = self.app_started, names.index(self.app_name)
        cycle = sum(self.apps[name].shown_for for name in names)
        if now - started > 2 * cycle:  # asleep for whole loops: skip them
            started += math.floor((now - started) / cycle - 1) * cycle
        moved = False
        while started + self.apps[names[index]].shown_for <= now + TOLERANCE:
            started += self.apps[names[index]].shown_for
            index = (index + 1) % len(names)
            moved = True
        self.app_name = names[index]
        self.app_started = started
        if moved:
            self._come_up(started)

    def _come_up(self, at: float) -> None:
        app = self.apps[self.app_name].app
        self.app_content = self.resolve(app, at)
        self.app_frames = max(1, self.frame_count(self.app_content))


def frame_at(frames: int, step: float, elapsed: float, passes: int | None) -> tuple[int, float | None]:
    """The frame `elapsed` seconds into a scroll of `frames` frames per pass, and how long after the
    start the next frame comes (None: this one stays). After `passes` passes the last frame stays."""
    if frames <= 1 or step <= 0:
        return 0, None
    index = math.floor((elapsed + TOLERANCE) / step)
    if passes is not None and index >= passes * frames - 1:
        return frames - 1, None
    return index % frames, (index + 1) * step


def indicator_lit(indicator: Indicator, set_at: float, now: float) -> tuple[bool, float | None]:
    """Whether the indicator is lit at `now`, and when that next changes (None: never)."""
    if not indicator.blink:
        return True, None
    half_periods = math.floor((now - set_at + TOLERANCE) / indicator.blink)
    return half_periods % 2 == 0, set_at + (half_periods + 1) * indicator.blink


def _earliest(*times: float | None) -> float | None:
    given = [time for time in times if time is not None]
    return min(given) if given else None


def decide(layers: Layers, now: float) -> tuple[Showing, float | None]:
    """What shows at `now` (after `layers.advance(now)`) and when that next changes (None: not
    until something new arrives)."""
    lit, next_change = [], None
    for number in sorted(layers.indicators):
        indicator, set_at = layers.indicators[number]
        on, changes = indicator_lit(indicator, set_at, now)
        if on:
            lit.append(indicator)
        next_change = _earliest(next_change, changes)
    indicators = tuple(lit)
    for entry in layers.apps.values():
        next_change = _earliest(next_change, entry.expires_at())
    current = layers.current
    if current is not None:
        content = current.notification.content
        frame, after = frame_at(current.frames, content.scroll_speed, now - current.started, current.passes())
        next_frame = None if after is None else current.started + after
        showing = Showing("notification", current.id, content, frame, False, indicators)
        return showing, _earliest(next_change, next_frame, current.ends_at())
    if layers.app_started is not None:
        entry = layers.apps[layers.app_name]
        content = layers.app_content
        frame, after = frame_at(layers.app_frames, content.scroll_speed, now - layers.app_started, None)
        next_frame = None if after is None else layers.app_started + after
        ends = layers.app_started + entry.shown_for  # the next app, or this one again, freshly filled
        showing = Showing("app", layers.app_name, content, frame, entry.stale, indicators)
        return showing, _earliest(next_change, next_frame, ends)
    layer = "blank" if layers.config.idle == "blank" else "base"
    return Showing(layer, None, None, 0, False, indicators), next_change
