"""What each action's payload looks like, and how a parsed command runs on a device.

The one place that knows payload formats: the runtime parses messages with `parse_command`, the
config loader checks subscription `args` with `check_defaults`/`normalise_defaults`, and the device
worker runs the result with `execute`. Payload values override the subscription's `args`.
"""

from __future__ import annotations

import difflib
import json
import math
import re
import threading
from types import MappingProxyType
from typing import Any, Callable, Mapping, NamedTuple

from bridge.display import icons as builtin_icons
from bridge.display.colours import Invalid as _Invalid
from bridge.display.colours import describe as _describe
from bridge.display.colours import parse_colour
from bridge.display.font import transliterate
from bridge.display.model import (
    DEFAULT_PRIORITY,
    INDICATORS,
    MAX_DRAW_OPS,
    PRIORITIES,
    App,
    Content,
    DrawOp,
    Indicator,
    Notification,
    Picture,
)
from bridge.names import DISPLAY_ACTIONS, POLLED_SENSORS

MAX_TEXT_LENGTH = 1000
ROTATIONS = (0, 90, 180, 270)
WHITE = (255, 255, 255)
BLACK = (0, 0, 0)


class PayloadError(ValueError):
    """A message (or a config default) the action cannot use; str() starts with the action name."""


class ActionFailed(RuntimeError):
    """The device refused or failed a well-formed command; str() starts with the action name."""


class Command(NamedTuple):
    """A validated action ready for a device: `args` are the device method's positional arguments.

    `cheap` actions finish in microseconds to milliseconds, so the worker may run a run of them
    back to back and report them together.
    """

    action: str
    args: tuple
    cheap: bool


class Limits(NamedTuple):
    """What one subscription lets a single message ask for; None or empty means no cap.

    `max_payload` bytes (checked before anything is decoded), `max_scroll` seconds one scroll may
    take at most (see `scroll_seconds`), `locked` keys a payload may not set (the subscription's
    args, or the fallback, hold for them), `icons` the config's named icons a display payload may
    use besides the built-in ones.
    """

    max_payload: int | None = None
    max_scroll: float | None = None
    locked: frozenset = frozenset()
    icons: Mapping[str, Picture] = MappingProxyType({})


NO_LIMITS = Limits()


def scroll_seconds(text: str, scroll_speed: float) -> float:
    """The longest `show_message(text)` can take: the drivers step 8 + Σ(glyph width + 1) columns,
    one per `scroll_speed`, over the text's characters once transliterated (`bridge.display.font`:
    "œ" scrolls as "oe"), and no glyph is wider than 5."""
    return (8 + 6 * len(transliterate(text))) * scroll_speed


# Command(...) goes through a Python-level __new__; this skips it on the hot path.
_new_command = tuple.__new__


def _coordinate(value: Any) -> int:
    if type(value) is int and 0 <= value <= 7:
        return value
    raise _Invalid(f"must be an integer 0..7, got {_describe(value)}")


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise _Invalid(f"must be a string, got {_describe(value)}")
    if not value:
        raise _Invalid("must not be empty")
    if len(value) > MAX_TEXT_LENGTH:
        raise _Invalid(f"must be at most {MAX_TEXT_LENGTH} characters, got {len(value)}")
    return value


def _letter(value: Any) -> str:
    if isinstance(value, str) and len(value) == 1:
        return value
    raise _Invalid(f"must be exactly one character, got {_describe(value)}")


def _scroll_speed(value: Any) -> float:
    if type(value) in (int, float) and 0 < value <= 1:
        return float(value)
    raise _Invalid(f"must be seconds per column, more than 0 and at most 1, got {_describe(value)}")


def _pixels(value: Any) -> tuple[tuple[int, int, int], ...]:
    if not isinstance(value, (list, tuple)) or len(value) != 64:
        count = f"a list of {len(value)}" if isinstance(value, (list, tuple)) else _describe(value)
        raise _Invalid(f"must be a list of exactly 64 colours, got {count}")
    pixels = []
    for index, colour in enumerate(value):
        try:
            pixels.append(parse_colour(colour))
        except _Invalid as error:
            raise _Invalid(f"[{index}] {error}") from None
    return tuple(pixels)


def parse_picture(value: Any) -> Picture:
    """64 colours (each as parse_colour takes it) -> a Picture; ValueError otherwise."""
    return _pixels(value)


def _rotation(value: Any) -> int:
    if type(value) is int and value in ROTATIONS:
        return value
    raise _Invalid(f"must be one of 0, 90, 180, 270, got {_describe(value)}")


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise _Invalid(f"must be true or false, got {_describe(value)}")



# Display payloads (notify, dismiss, indicator, app): each key is checked alone (so config `args`
# are checked the same way), then the action's builder turns the keys into a model value.

MAX_SHORT_TEXT = 64  # a clock format, a draw op's text
MAX_DURATION = 86400.0  # a day: longer is a mistake (hold: true keeps a notification up)
MAX_REPEAT = 100
BLINK_ON_TRUE = 0.5
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}\Z")
_RESERVED_IDS = ("all", "current")


class IndicatorOff(NamedTuple):
    """An `indicator` payload with `color: null`: that corner goes dark."""

    number: int


class AppRemoval(NamedTuple):
    """An `app` payload with `remove: true`."""

    name: str


def _seconds(value: Any) -> float:
    if type(value) in (int, float) and 0 < value <= MAX_DURATION:
        return float(value)
    raise _Invalid(f"must be seconds, more than 0 and at most {MAX_DURATION:g}, got {_describe(value)}")


def _integer_in(low: int, high: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if type(value) is int and low <= value <= high:
            return value
        raise _Invalid(f"must be an integer {low}..{high}, got {_describe(value)}")

    return check


_priority = _integer_in(PRIORITIES[0], PRIORITIES[-1])
_repeat = _integer_in(1, MAX_REPEAT)
_percent = _integer_in(0, 100)
_indicator_number = _integer_in(INDICATORS[0], INDICATORS[-1])


def _name(value: Any) -> str:
    if isinstance(value, str) and _NAME.match(value):
        return value
    raise _Invalid(f"must be 1 to 64 letters, digits, '_', '.' or '-', got {_describe(value)}")


def _notification_id(value: Any) -> str:
    name = _name(value)
    if name in _RESERVED_IDS:
        raise _Invalid(f"{name!r} is reserved (dismiss uses it); pick another id")
    return name


def _dismiss_target(value: Any) -> str:
    if isinstance(value, str) and value in _RESERVED_IDS:
        return value
    return _name(value)


def _icon(value: Any) -> str | Picture:
    """A name (resolved by the builder, which knows the config's icons) or 64 colours."""
    if isinstance(value, str):
        return _name(value)
    if isinstance(value, (list, tuple)):
        return _pixels(value)
    raise _Invalid(f"must be an icon name or a list of 64 colours, got {_describe(value)}")


def _optional_colour(value: Any) -> tuple[int, int, int] | None:
    return None if value is None else parse_colour(value)


def _blink(value: Any) -> float | None:
    if value is True:
        return BLINK_ON_TRUE
    if value is False:
        return None
    if type(value) in (int, float) and 0.05 <= value <= 10:
        return float(value)
    raise _Invalid(f"must be true, false or seconds per half-period 0.05..10, got {_describe(value)}")


def _clock_format(value: Any) -> str:
    if isinstance(value, str) and 0 < len(value) <= MAX_SHORT_TEXT:
        return value
    raise _Invalid(f"must be a strftime format such as \"%H:%M\" of at most {MAX_SHORT_TEXT} characters, "
                   f"got {_describe(value)}")


def _lifetime_mode(value: Any) -> str:
    if value in ("drop", "stale"):
        return value
    raise _Invalid(f"must be \"drop\" or \"stale\", got {_describe(value)}")


def _true(value: Any) -> bool:
    if value is True:
        return True
    raise _Invalid(f"must be true (leave it out to set the app), got {_describe(value)}")


def _point(value: Any, what: str) -> tuple[int, ...]:
    if isinstance(value, list) and len(value) == 2 and all(type(v) is int and 0 <= v <= 7 for v in value):
        return tuple(value)
    raise _Invalid(f"{what} must be [x, y] with each 0..7, got {_describe(value)}")


def _draw_values(kind: str, value: Any, op: dict) -> tuple:
    if kind == "line":
        if isinstance(value, list) and len(value) == 4 and all(type(v) is int and 0 <= v <= 7 for v in value):
            return tuple(value)
        raise _Invalid(f"line must be [x0, y0, x1, y1] with each 0..7, got {_describe(value)}")
    if kind in ("rect", "fill_rect"):
        if (isinstance(value, list) and len(value) == 4 and all(type(v) is int for v in value)
                and 0 <= value[0] <= 7 and 0 <= value[1] <= 7
                and 1 <= value[2] <= 8 - value[0] and 1 <= value[3] <= 8 - value[1]):
            return tuple(value)
        raise _Invalid(f"{kind} must be [x, y, width, height] inside the 8x8 matrix, got {_describe(value)}")
    if kind == "pixel":
        return _point(value, "pixel")
    if kind == "text":
        if not isinstance(value, str) or not 0 < len(value) <= MAX_SHORT_TEXT:
            raise _Invalid(f"text must be 1 to {MAX_SHORT_TEXT} characters, got {_describe(value)}")
        return _point(op.get("at", [0, 0]), "at") + (value,)
    return (_percent(value),)  # bar


_DRAW_KINDS = ("line", "rect", "fill_rect", "pixel", "text", "bar")


def _draw_op(op: Any) -> DrawOp:
    if not isinstance(op, dict):
        raise _Invalid(f"must be an object such as {{\"pixel\": [0, 0]}}, got {_describe(op)}")
    kinds = [key for key in op if key in _DRAW_KINDS]
    if len(kinds) != 1:
        raise _Invalid(f"must hold exactly one of {', '.join(_DRAW_KINDS)}, got {_describe(op)}")
    kind = kinds[0]
    allowed = {kind, "color", "colour"} | ({"at"} if kind == "text" else set())
    extra = next((key for key in op if key not in allowed), None)
    if extra is not None:
        raise _Invalid(f"unknown key {extra!r} for {kind}; allowed: {', '.join(sorted(allowed))}")
    if "color" in op and "colour" in op:
        raise _Invalid("give color or colour, not both")
    colour = op.get("color", op.get("colour"))
    return DrawOp(kind, _draw_values(kind, op[kind], op), WHITE if colour is None else parse_colour(colour))


def _draw(value: Any) -> tuple[DrawOp, ...]:
    if not isinstance(value, list):
        raise _Invalid(f"must be a list of draw operations, got {_describe(value)}")
    if len(value) > MAX_DRAW_OPS:
        raise _Invalid(f"must hold at most {MAX_DRAW_OPS} operations, got {len(value)}")
    ops = []
    for index, op in enumerate(value):
        try:
            ops.append(_draw_op(op))
        except _Invalid as error:
            raise _Invalid(f"[{index}] {error}") from None
    return tuple(ops)


def _icon_picture(name_or_picture: str | Picture, limits: Limits) -> Picture:
    if not isinstance(name_or_picture, str):
        return name_or_picture
    picture = limits.icons.get(name_or_picture) or builtin_icons.BUILTIN.get(name_or_picture)
    if picture is None:
        names = sorted(set(builtin_icons.BUILTIN) | set(limits.icons))
        raise _Invalid(f"icon {name_or_picture!r} is neither built in nor in the config's display.icons"
                       f"{_suggestion(name_or_picture, names)}")
    return picture


_CONTENT_KEYS = ("text", "icon", "pixels", "draw", "progress")


def _content(values: Mapping[str, Any], limits: Limits, extra: tuple[str, ...] = ()) -> Content:
    if not any(key in values for key in _CONTENT_KEYS + extra):
        raise _Invalid(f"needs something to show: one of {', '.join(_CONTENT_KEYS + extra)}")
    text = values.get("text")
    speed = values.get("scroll_speed", 0.1)
    if text is not None and limits.max_scroll is not None:
        seconds = scroll_seconds(text, speed)
        if seconds > limits.max_scroll:
            raise _Invalid(
                f"{len(text)} characters at scroll_speed {speed:g} may scroll for {seconds:.0f} s, more than this "
                f"subscription's max_scroll of {limits.max_scroll:g} s; send less text or a smaller scroll_speed")
    icon = values.get("icon")
    return Content(
        text=text,
        icon=None if icon is None else _icon_picture(icon, limits),
        pixels=values.get("pixels"),
        draw=values.get("draw", ()),
        text_colour=values.get("text_colour", WHITE),
        back_colour=values.get("back_colour", BLACK),
        scroll_speed=speed,
        progress=values.get("progress"),
        progress_colour=values.get("progress_colour", Content.progress_colour),
    )


def _build_notification(values: Mapping[str, Any], limits: Limits, size: int) -> Notification:
    return Notification(
        content=_content(values, limits),
        priority=values.get("priority", DEFAULT_PRIORITY),
        duration=values.get("duration"),
        repeat=values.get("repeat"),
        hold=values.get("hold", False),
        stack=values.get("stack", True),
        id=values.get("id"),
        size=size,
    )


def _build_dismiss(values: Mapping[str, Any], limits: Limits, size: int) -> str:
    return values.get("id", "current")


def _build_indicator(values: Mapping[str, Any], limits: Limits, size: int) -> Indicator | IndicatorOff:
    if "n" not in values:
        raise _Invalid('n is missing; the payload should be {"n": 1, "color": [255, 0, 0]}')
    if "color" in values and "colour" in values:
        raise _Invalid("give color or colour, not both")
    if "color" not in values and "colour" not in values:
        raise _Invalid('color is missing; give [r, g, b], "#rrggbb", or null to turn the indicator off')
    colour = values.get("color", values.get("colour"))
    if colour is None:
        return IndicatorOff(values["n"])
    return Indicator(values["n"], colour, values.get("blink"))


def _build_app(values: Mapping[str, Any], limits: Limits, size: int) -> App | AppRemoval:
    if "name" not in values:
        raise _Invalid('name is missing; the payload should be {"name": "weather", "text": "21°C"}')
    if values.get("remove"):
        return AppRemoval(values["name"])
    if "clock" in values and "text" in values:
        raise _Invalid("give text or clock, not both")
    return App(
        name=values["name"],
        content=_content(values, limits, extra=("clock",)),
        duration=values.get("duration", App.duration),
        clock=values.get("clock"),
        lifetime=values.get("lifetime"),
        lifetime_mode=values.get("lifetime_mode", App.lifetime_mode),
        persistent=True,
    )


_CONTENT_VALIDATORS = {
    "text": _text,
    "icon": _icon,
    "pixels": _pixels,
    "draw": _draw,
    "text_colour": parse_colour,
    "back_colour": parse_colour,
    "scroll_speed": _scroll_speed,
    "progress": _percent,
    "progress_colour": parse_colour,
}


# The C scanner behind json.loads, without its per-call wrapping: a third of parse_command's time
# on the busiest path (a stream of set_pixel messages). Errors are worded by json.loads itself.
_scan_json = json.JSONDecoder().scan_once


_JSON_WHITESPACE = " \t\n\r"  # what json.loads skips; str.strip() would also skip e.g. U+00A0


def _loads(text: str) -> Any:
    start = len(text) - len(text.lstrip(_JSON_WHITESPACE))
    try:
        value, end = _scan_json(text, start)
    except (StopIteration, ValueError):
        end = -1
    except RecursionError:  # e.g. b"[" * 200000: the scanner recurses once per level
        raise _Invalid("payload is not valid JSON: nested too deeply") from None
    if end == -1 or text[end:].strip(_JSON_WHITESPACE):
        try:
            json.loads(text)
        except ValueError as error:
            raise _Invalid(f"payload is not valid JSON: {error}") from None
    return value


def _json_object(text: str) -> dict:
    value = _loads(text)
    if not isinstance(value, dict):
        raise _Invalid(f"payload must be a JSON object, got {_describe(value)}")
    return value


def _looks_like_object(text: str) -> bool:
    return text[:1] == "{" and text[-1:] == "}"


def _strip_line_end(text: str) -> str:
    # `echo hello | bridge send SUBJECT -` adds a newline nobody wants scrolled.
    return text.rstrip("\r\n")


# Plain-text readings of each payload: text -> dict of keys to validate.


def _text_or_object(key: str) -> Callable[[str], dict]:
    def read(text: str) -> dict:
        if _looks_like_object(text.strip()):
            return _json_object(text)
        text = _strip_line_end(text)
        return {key: text} if text else {}

    return read


def _letter_or_object(text: str) -> dict:
    text = _strip_line_end(text)
    if len(text) == 1:  # even "{" is a letter
        return {"letter": text}
    if _looks_like_object(text.strip()):
        return _json_object(text)
    return {"letter": text} if text else {}


def _object_only(text: str) -> dict:
    return {} if not text or text.isspace() else _json_object(text)


def _pixels_list_or_object(text: str) -> dict:
    if not text.strip():
        return {}
    value = _loads(text)
    if isinstance(value, list):
        return {"pixels": value}
    if isinstance(value, dict):
        return value
    raise _Invalid(f"payload must be a JSON list of 64 colours or {{\"pixels\": [...]}}, got {_describe(value)}")


def _rotation_text_or_object(text: str) -> dict:
    stripped = text.strip()
    if not stripped:
        return {}
    if _looks_like_object(stripped):
        return _json_object(stripped)
    # ASCII digits only, and few: "²".isdigit() is true but int() refuses it, and int() refuses
    # more than 4300 digits; neither may escape as anything but a PayloadError.
    if stripped.isascii() and stripped.isdigit() and len(stripped) <= 4:
        return {"rotation": int(stripped)}
    raise _Invalid(f"payload must be 0, 90, 180 or 270, got {_describe(stripped)}")


def _boolean_text_or_object(text: str) -> dict:
    stripped = text.strip()
    if not stripped:
        return {}
    if _looks_like_object(stripped):
        return _json_object(stripped)
    lowered = stripped.lower()
    if lowered in ("true", "false"):
        return {"enabled": lowered == "true"}
    raise _Invalid(f"payload must be true or false, got {_describe(stripped)}")


def _dismiss_text_or_object(text: str) -> dict:
    stripped = text.strip()
    if not stripped:
        return {}
    if _looks_like_object(stripped):
        return _json_object(stripped)
    return {"id": stripped}


def _nothing(text: str) -> dict:
    stripped = text.strip()
    if stripped and stripped != "{}":
        raise _Invalid(f"takes no payload, got {_describe(stripped)}")
    return {}


class _Spec(NamedTuple):
    read_text: Callable[[str], dict]
    keys: Mapping[str, Callable[[Any], Any]]  # key -> validator/normaliser, in device argument order
    fallbacks: Mapping[str, Any]  # values used when neither payload nor args give the key
    cheap: bool
    example: str  # shown with "missing" errors
    # Display actions: (checked keys, limits, payload bytes) -> the one value the display takes.
    build: Callable[[Mapping[str, Any], Limits, int], Any] | None = None


_SPECS: dict[str, _Spec] = {
    "show_message": _Spec(
        _text_or_object("text"),
        {"text": _text, "text_colour": parse_colour, "back_colour": parse_colour, "scroll_speed": _scroll_speed},
        {"text_colour": WHITE, "back_colour": BLACK, "scroll_speed": 0.1},
        False,
        'plain text or {"text": "hello"}',
    ),
    "show_letter": _Spec(
        _letter_or_object,
        {"letter": _letter, "text_colour": parse_colour, "back_colour": parse_colour},
        {"text_colour": WHITE, "back_colour": BLACK},
        True,
        'one character or {"letter": "A"}',
    ),
    "set_pixel": _Spec(
        _object_only,
        {"x": _coordinate, "y": _coordinate, "color": parse_colour},
        {},
        True,
        '{"x": 0, "y": 0, "color": [255, 0, 0]}',
    ),
    "set_pixels": _Spec(_pixels_list_or_object, {"pixels": _pixels}, {}, True, "a JSON list of 64 colours"),
    "clear": _Spec(_object_only, {"color": parse_colour}, {"color": BLACK}, True, '{"color": [0, 0, 0]}'),
    "set_rotation": _Spec(_rotation_text_or_object, {"rotation": _rotation}, {}, True, "0, 90, 180 or 270"),
    "flip_h": _Spec(_nothing, {}, {}, True, "no payload"),
    "flip_v": _Spec(_nothing, {}, {}, True, "no payload"),
    "low_light": _Spec(_boolean_text_or_object, {"enabled": _boolean}, {}, True, "true or false"),
    "get_pixels": _Spec(_nothing, {}, {}, True, "no payload"),
    "read_sensors": _Spec(_nothing, {}, {}, False, "no payload"),
    "notify": _Spec(
        _text_or_object("text"),
        {**_CONTENT_VALIDATORS, "duration": _seconds, "repeat": _repeat, "priority": _priority, "hold": _boolean,
         "stack": _boolean, "id": _notification_id},
        {},
        False,
        'plain text or {"text": "hello", "priority": 7}',
        _build_notification,
    ),
    "dismiss": _Spec(_dismiss_text_or_object, {"id": _dismiss_target}, {}, False,
                     'nothing (the current one), "all", or an id', _build_dismiss),
    "indicator": _Spec(
        _object_only,
        {"n": _indicator_number, "color": _optional_colour, "colour": _optional_colour, "blink": _blink},
        {},
        False,
        '{"n": 1, "color": [255, 0, 0], "blink": true}',
        _build_indicator,
    ),
    "app": _Spec(
        _object_only,
        {"name": _name, **_CONTENT_VALIDATORS, "clock": _clock_format, "duration": _seconds, "lifetime": _seconds,
         "lifetime_mode": _lifetime_mode, "remove": _true},
        {},
        False,
        '{"name": "weather", "text": "{temperature:.0f}°C", "duration": 6}',
        _build_app,
    ),
}


def _spec(action: str) -> _Spec:
    try:
        return _SPECS[action]
    except KeyError:
        raise PayloadError(f"{action}: unknown action{_suggestion(action, _SPECS)}") from None


def _suggestion(word: str, choices) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _unknown_key_message(action: str, key: str, spec: _Spec) -> str:
    allowed = ", ".join(spec.keys) if spec.keys else "none"
    return f"unknown key for {action}{_suggestion(key, spec.keys)}; allowed: {allowed}"


def parse_command(action: str, payload: bytes, defaults: Mapping[str, Any], limits: Limits = NO_LIMITS) -> Command:
    """Turn one message into a device command, or raise PayloadError saying what is wrong."""
    spec = _spec(action)
    if limits.max_payload is not None and len(payload) > limits.max_payload:
        raise PayloadError(f"{action}: payload is {len(payload)} bytes, more than this subscription's "
                           f"max_payload of {limits.max_payload}")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as error:
        raise PayloadError(f"{action}: payload is not valid UTF-8 ({error.reason} at byte {error.start})") from None
    try:
        given = spec.read_text(text)
    except _Invalid as error:
        raise PayloadError(f"{action}: {error}") from None
    if limits.locked and not limits.locked.isdisjoint(given):
        key = next(key for key in given if key in limits.locked)
        raise PayloadError(f"{action}: {key} is locked by this subscription's config; leave it out of the payload")
    if defaults:
        merged = dict(defaults)
        merged.update(given)
    else:
        merged = given
    validators = spec.keys
    if not merged.keys() <= validators.keys():
        key = next(key for key in merged if key not in validators)
        raise PayloadError(f"{action}: unknown key {key!r}{_suggestion(str(key), validators)}")
    if spec.build is not None:
        return _new_command(Command, (action, (_build(action, spec, merged, limits, len(payload)),), spec.cheap))
    args = []
    fallbacks = spec.fallbacks
    try:
        for key, validate in validators.items():
            if key in merged:
                args.append(validate(merged[key]))
            elif key in fallbacks:
                args.append(fallbacks[key])
            else:
                raise PayloadError(f"{action}: {key} is missing; the payload should be {spec.example}")
    except _Invalid as error:
        raise PayloadError(f"{action}: {key} {error}") from None
    if action == "show_message" and limits.max_scroll is not None:
        text, _, _, speed = args
        seconds = scroll_seconds(text, speed)
        if seconds > limits.max_scroll:
            raise PayloadError(
                f"show_message: {len(text)} characters at scroll_speed {speed:g} may scroll for {seconds:.0f} s, "
                f"more than this subscription's max_scroll of {limits.max_scroll:g} s; send less text or a "
                f"smaller scroll_speed")
    return _new_command(Command, (action, tuple(args), spec.cheap))


def _build(action: str, spec: _Spec, merged: Mapping[str, Any], limits: Limits, size: int) -> Any:
    values = {}
    try:
        for key, validate in spec.keys.items():
            if key in merged:
                values[key] = validate(merged[key])
    except _Invalid as error:
        raise PayloadError(f"{action}: {key} {error}") from None
    try:
        return spec.build(values, limits, size)
    except _Invalid as error:
        raise PayloadError(f"{action}: {error}") from None


def is_display_action(action: str) -> bool:
    """Handled by the display layer on the reactor thread: its command's one argument is the model value."""
    return action in DISPLAY_ACTIONS


def args_parser(action: str, defaults: Mapping[str, Any], limits: Limits = NO_LIMITS) -> Callable[[bytes], tuple]:
    """`payload -> parse_command(action, payload, defaults, limits).args` for one subscription.

    For set_pixel without defaults or locked keys, the usual payload (`{"x": 0, "y": 0,
    "color": [r, g, b]}`, nothing around it) is read without parse_command's general steps;
    anything else goes to parse_command, so errors and every other form read the same.
    """
    if action == "set_pixel" and not defaults and not limits.locked:
        return _set_pixel_parser(limits)

    def parse(payload: bytes) -> tuple:
        return parse_command(action, payload, defaults, limits).args

    return parse


def _set_pixel_parser(limits: Limits) -> Callable[[bytes], tuple]:
    max_payload = limits.max_payload

    def parse(payload: bytes) -> tuple:
        if max_payload is None or len(payload) <= max_payload:
            try:
                text = payload.decode("utf-8")
                value, end = _scan_json(text, 0)
            except (UnicodeDecodeError, StopIteration, ValueError, RecursionError):
                value = None
            if type(value) is dict and len(value) == 3 and end == len(text):
                x, y, colour = value.get("x"), value.get("y"), value.get("color")
                if (type(x) is int and type(y) is int and 0 <= x <= 7 and 0 <= y <= 7
                        and type(colour) is list and len(colour) == 3):
                    r, g, b = colour
                    if (type(r) is int and type(g) is int and type(b) is int
                            and 0 <= r <= 255 and 0 <= g <= 255 and 0 <= b <= 255):
                        return (x, y, (r, g, b))
        return parse_command("set_pixel", payload, {}, limits).args

    return parse


def check_defaults(action: str, args: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(key, message) for every subscription `args` entry the action cannot use; [] when all fine."""
    spec = _SPECS.get(action)
    if spec is None:
        return []  # the action itself is reported by the config checks
    problems = []
    for key, value in args.items():
        validate = spec.keys.get(key)
        if validate is None:
            problems.append((key, _unknown_key_message(action, str(key), spec)))
            continue
        try:
            validate(value)
        except _Invalid as error:
            problems.append((key, str(error)))
    return problems


def check_locked(action: str, names: list) -> list[tuple[int, str]]:
    """(index, message) for every `locked` entry that is not a key of the action; [] when all fine."""
    spec = _SPECS.get(action)
    if spec is None:
        return []
    return [(index, _unknown_key_message(action, str(name), spec))
            for index, name in enumerate(names) if isinstance(name, str) and name not in spec.keys]


def normalise_defaults(action: str, args: Mapping[str, Any]) -> dict[str, Any]:
    """Args in the form commands use (colours as tuples); call only after check_defaults found nothing."""
    spec = _spec(action)
    try:
        return {key: spec.keys[key](value) for key, value in args.items()}
    except (KeyError, _Invalid) as error:
        raise PayloadError(f"{action}: args were not checked: {error}") from None


# The sense_hat library returns 0 for a humidity or pressure read that failed (typically the first),
# the temperature either sensor measures included.
ZERO_MEANS_FAILED = ("humidity", "pressure", "temperature_from_humidity", "temperature_from_pressure")


def is_valid_reading(sensor: str, value: Any) -> bool:
    """False for what a failed read returns: 0 from humidity/pressure, NaN or infinity anywhere."""
    if sensor in ZERO_MEANS_FAILED and value == 0:
        return False
    numbers = value.values() if isinstance(value, dict) else (value,)
    return not any(isinstance(number, float) and not math.isfinite(number) for number in numbers)


def read_sensors(device) -> dict[str, Any]:
    """Every polled sensor's current value, keyed by sensor name; null for a read that failed."""
    readings = {}
    for sensor in POLLED_SENSORS:
        value = device.read(sensor)[0]
        readings[sensor] = value if is_valid_reading(sensor, value) else None
    return readings


# Actions whose device method is not named after the action; the rest call device.<action>(*args).
_SPECIAL_RUNNERS: dict[str, Callable[..., Any]] = {
    "low_light": lambda device, enabled: device.set_low_light(enabled),
    "read_sensors": read_sensors,
}


def execute(device, command: Command, interrupt: threading.Event | None = None) -> Any:
    """Run a command on the device (blocking): None for plain actions, the data for queries.

    `interrupt`, once set, ends a scrolling show_message early (the device returns at its next
    frame); the other actions are quick and ignore it.
    """
    try:
        run = _SPECIAL_RUNNERS.get(command.action)
        if run is not None:
            return run(device, *command.args)
        if interrupt is not None and command.action == "show_message":
            return device.show_message(*command.args, interrupt=interrupt)
        return getattr(device, command.action)(*command.args)
    except Exception as error:
        raise ActionFailed(f"{command.action}: {error}") from error


# Cheap actions whose device method is not named after the action.
_BATCH_METHODS = {"low_light": "set_low_light"}


def is_batchable(action: str) -> bool:
    """A cheap action that answers nothing: a run of its messages may go to the device as one call."""
    spec = _SPECS.get(action)
    return spec is not None and spec.cheap and action != "get_pixels"


def execute_batch(device, action: str, calls: list) -> list[tuple[int, ActionFailed]]:
    """Run `action` once per argument tuple as one device call (`Device.run_batch`, blocking):
    the (position, ActionFailed) of each call that failed; the others were applied."""
    failures = device.run_batch(_BATCH_METHODS.get(action, action), calls)
    return [(position, ActionFailed(f"{action}: {error}")) for position, error in failures]


def reply_payload(result: Any) -> bytes:
    """The reply body: {"ok": true}, the query's data, or {"ok": false, "error": ...} for an exception."""
    if isinstance(result, BaseException):
        return json.dumps({"ok": False, "error": str(result)}).encode()
    if result is None:
        return b'{"ok": true}'
    return json.dumps(result).encode()
