"""The display layer's data: what a notification, an app and an indicator are, once a payload or
the config has been validated (`bridge.actions` parses payloads into these; `bridge.config` the
`display:` block). Plain frozen values: the policy decides from them, the renderer draws them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Colour = tuple[int, int, int]
Picture = tuple[Colour, ...]  # 64 colours, row by row, logical orientation (as get_pixels)

WHITE: Colour = (255, 255, 255)
BLACK: Colour = (0, 0, 0)

MAX_APPS = 32
MAX_DRAW_OPS = 64
PRIORITIES = range(10)
DEFAULT_PRIORITY = 5
INDICATORS = (1, 2, 3, 4)  # corners: 1 top-left, 2 top-right, 3 bottom-right, 4 bottom-left


@dataclass(frozen=True)
class DrawOp:
    """One bounded draw primitive, coordinates already checked against the 8×8 matrix.

    kind: "pixel" (x, y), "line" (x0, y0, x1, y1), "rect" / "fill_rect" (x, y, width, height),
    "text" (x, y, text: drawn with the bridge's font, clipped), "bar" (percent 0..100 on the bottom row).
    `values` holds those numbers (and the text) in that order.
    """

    kind: str
    values: tuple[Any, ...]
    colour: Colour = WHITE


@dataclass(frozen=True)
class Content:
    """What one notification or app draws. Any of text / icon / pixels / draw may be absent.

    Drawn bottom to top: back colour, `pixels`, the scrolling strip (the icon's 8 columns, then the
    text), the draw ops, then the progress bar on the bottom row. Text scrolls like show_message
    (one column per `scroll_speed`); without text the content is one still frame.
    """

    text: str | None = None
    icon: Picture | None = None
    pixels: Picture | None = None
    draw: tuple[DrawOp, ...] = ()
    text_colour: Colour = WHITE
    back_colour: Colour = BLACK
    scroll_speed: float = 0.1
    progress: int | None = None  # 0..100
    progress_colour: Colour = (0, 255, 0)
    progress_back_colour: Colour = (32, 32, 32)


@dataclass(frozen=True)
class Notification:
    """A `notify` request: interrupts the app loop and the base frame for a while.

    `duration` caps how long it shows (None: one pass of its scroll, or 5 s for a still frame);
    `repeat` passes of the scroll (None: as many as fit in `duration`); `hold` keeps it until
    dismissed (action or joystick middle); `stack` queues behind an equal priority (False replaces it).
    `size` is the payload's bytes, counted against the queue's byte limit.
    """

    content: Content
    priority: int = DEFAULT_PRIORITY
    duration: float | None = None
    repeat: int | None = None
    hold: bool = False
    stack: bool = True
    id: str | None = None  # None: the display assigns one
    size: int = 0


@dataclass(frozen=True)
class App:
    """One entry of the idle loop. `text` may hold `{sensor:format}` fields filled from the latest
    readings, `clock` a strftime format instead of text. `lifetime` (seconds, set at run time) after
    which an app that was not set again is dropped (`lifetime_mode: "drop"`) or shown as stale."""

    name: str
    content: Content
    duration: float = 5.0
    clock: str | None = None
    lifetime: float | None = None
    lifetime_mode: str = "drop"  # drop | stale
    persistent: bool = False  # set at run time (kept in the state directory), not from the config


@dataclass(frozen=True)
class Indicator:
    number: int  # 1..4, see INDICATORS
    colour: Colour
    blink: float | None = None  # seconds per on/off half-period; None: solid


@dataclass(frozen=True)
class DisplayConfig:
    """The config's `display:` block."""

    apps: tuple[App, ...] = ()
    idle: str = "loop"  # loop: the app loop (the base frame when there are no apps) | blank | base
    queue_limit: int = 16  # notifications waiting, at most
    queue_bytes: int = 64 * 1024  # their payload bytes, at most
    icons: tuple[tuple[str, Picture], ...] = ()  # custom icons from the config, by name
