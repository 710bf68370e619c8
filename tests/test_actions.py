"""Payload formats of every action: good and bad messages, config defaults, execution and replies."""

from __future__ import annotations

import json
import re
import sys
import threading

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from bridge import actions
from bridge.actions import (
    NO_LIMITS,
    ActionFailed,
    Command,
    Limits,
    PayloadError,
    args_parser,
    check_defaults,
    check_locked,
    execute,
    execute_batch,
    is_batchable,
    normalise_defaults,
    parse_colour,
    parse_command,
    read_sensors,
    reply_payload,
    scroll_seconds,
)
from bridge.config.model import ACTIONS, POLLED_SENSORS
from bridge.devices.memory import MemoryDevice

RED = (255, 0, 0)
WHITE = (255, 255, 255)
BLACK = (0, 0, 0)
GRID = [[i, 2 * i, 3 * i] for i in range(64)]


def parse(action, payload, defaults=None):
    if isinstance(payload, str):
        payload = payload.encode()
    return parse_command(action, payload, defaults or {})


GOOD = [
    ("show_message", "hello world", {}, ("hello world", WHITE, BLACK, 0.1)),
    ("show_message", "hello\n", {}, ("hello", WHITE, BLACK, 0.1)),
    ("show_message", "  spaced  ", {}, ("  spaced  ", WHITE, BLACK, 0.1)),
    ("show_message", "{not json", {}, ("{not json", WHITE, BLACK, 0.1)),
    ("show_message", "héllo ☃", {}, ("héllo ☃", WHITE, BLACK, 0.1)),
    (
        "show_message",
        '{"text": "hi", "text_colour": "#00ff00", "back_colour": [1, 2, 3], "scroll_speed": 0.05}',
        {},
        ("hi", (0, 255, 0), (1, 2, 3), 0.05),
    ),
    ("show_message", "x" * 1000, {}, ("x" * 1000, WHITE, BLACK, 0.1)),
    ("show_letter", "A", {}, ("A", WHITE, BLACK)),
    ("show_letter", "{", {}, ("{", WHITE, BLACK)),
    ("show_letter", '{"letter": "Z", "back_colour": "#0000FF"}', {}, ("Z", WHITE, (0, 0, 255))),
    ("set_pixel", '{"x": 0, "y": 7, "color": [255, 0, 0]}', {}, (0, 7, RED)),
    ("set_pixel", '{"x": 7, "y": 0, "color": "#ff0000"}', {}, (7, 0, RED)),
    ("set_pixels", json.dumps(GRID), {}, (tuple(tuple(c) for c in GRID),)),
    ("set_pixels", json.dumps({"pixels": ["#ffffff"] * 64}), {}, ((WHITE,) * 64,)),
    ("clear", "", {}, (BLACK,)),
    ("clear", '{"color": [0, 0, 255]}', {}, ((0, 0, 255),)),
    ("set_rotation", "90", {}, (90,)),
    ("set_rotation", " 270\n", {}, (270,)),
    ("set_rotation", '{"rotation": 180}', {}, (180,)),
    ("flip_h", "", {}, ()),
    ("flip_v", "{}", {}, ()),
    ("low_light", "true", {}, (True,)),
    ("low_light", "False\n", {}, (False,)),
    ("low_light", '{"enabled": true}', {}, (True,)),
    ("get_pixels", "", {}, ()),
    ("read_sensors", "", {}, ()),
]


@pytest.mark.parametrize("action,payload,defaults,args", GOOD, ids=[f"{g[0]}:{g[1][:20]}" for g in GOOD])
def test_good_payloads_become_commands(action, payload, defaults, args):
    command = parse(action, payload, defaults)
    assert command.action == action
    assert command.args == args


def test_every_action_of_the_config_model_has_a_payload_format():
    assert sorted({g[0] for g in GOOD}) == sorted(ACTIONS)


BAD = [
    ("show_message", b"\xff\xfe", "show_message: payload is not valid UTF-8"),
    ("show_message", b"", "show_message: text is missing"),
    ("show_message", b"x" * 1001, "show_message: text must be at most 1000 characters, got 1001"),
    ("show_message", b'{"text": "hi", "colour": [1, 2, 3]}', "show_message: unknown key 'colour' (did you mean 'text_colour'?)"),
    # sense_hat checks colours only mid-scroll, after turning its rotation: parsing must catch them.
    ("show_message", b'{"text": "hi", "text_colour": [256, 0, 0]}', "show_message: text_colour must be [r, g, b]"),
    ("show_message", b'{"text": "hi", "back_colour": "red"}', "show_message: back_colour must be [r, g, b]"),
    ("show_message", b'{"text": "hi", "scroll_speed": 0}', "show_message: scroll_speed must be seconds per column"),
    ("show_message", b'{"text": "hi", "scroll_speed": "fast"}', "show_message: scroll_speed must be"),
    ("show_message", b'{"text": 5}', "show_message: text must be a string, got 5"),
    ("show_message", b'{"text": "hi",}', "show_message: payload is not valid JSON"),
    ("show_letter", b"AB", "show_letter: letter must be exactly one character, got 'AB'"),
    ("show_letter", b'{"letter": ""}', "show_letter: letter must be exactly one character"),
    ("set_pixel", b'{"x": 9, "y": 0, "color": [0, 0, 0]}', "set_pixel: x must be an integer 0..7, got 9"),
    ("set_pixel", b'{"x": 0, "y": -1, "color": [0, 0, 0]}', "set_pixel: y must be an integer 0..7, got -1"),
    ("set_pixel", b'{"x": 1.5, "y": 0, "color": [0, 0, 0]}', "set_pixel: x must be an integer 0..7, got 1.5"),
    ("set_pixel", b'{"x": true, "y": 0, "color": [0, 0, 0]}', "set_pixel: x must be an integer 0..7, got true"),
    ("set_pixel", b'{"x": 0, "y": 0, "color": [0, 0]}', "set_pixel: color must be [r, g, b]"),
    ("set_pixel", b'{"x": 0, "y": 0, "color": [0, 0, 300]}', "set_pixel: color must be [r, g, b] with each 0..255"),
    ("set_pixel", b'{"x": 0, "y": 0, "color": "#ff00"}', "set_pixel: color must be [r, g, b]"),
    ("set_pixel", b'{"x": 0, "y": 0, "colour": [0, 0, 0]}', "set_pixel: unknown key 'colour' (did you mean 'color'?)"),
    ("set_pixel", b'{"x": 0, "y": 0}', "set_pixel: color is missing; the payload should be"),
    ("set_pixel", b"[0, 0, [1, 2, 3]]", "set_pixel: payload must be a JSON object"),
    ("set_pixel", b"not json", "set_pixel: payload is not valid JSON"),
    ("set_pixels", json.dumps(GRID[:63]).encode(), "set_pixels: pixels must be a list of exactly 64 colours, got a list of 63"),
    ("set_pixels", json.dumps(GRID + [[0, 0, 0]]).encode(), "set_pixels: pixels must be a list of exactly 64 colours, got a list of 65"),
    ("set_pixels", json.dumps(GRID[:10] + [[0, 0, 256]] + GRID[11:]).encode(), "set_pixels: pixels [10] must be [r, g, b]"),
    ("set_pixels", b'"red"', "set_pixels: payload must be a JSON list of 64 colours"),
    ("set_pixels", b"", "set_pixels: pixels is missing"),
    ("set_pixels", b"[" * 200000, "set_pixels: payload is not valid JSON: nested too deeply"),
    ("show_message", b'{"text": ' + b"[" * 200000 + b"}", "show_message: payload is not valid JSON: nested too deeply"),
    ("clear", b"red", "clear: payload is not valid JSON"),
    ("clear", b'{"color": [1, 2, 3, 4]}', "clear: color must be [r, g, b]"),
    ("set_rotation", b"45", "set_rotation: rotation must be one of 0, 90, 180, 270, got 45"),
    ("set_rotation", b"left", "set_rotation: payload must be 0, 90, 180 or 270, got 'left'"),
    ("set_rotation", b'{"rotation": "90"}', "set_rotation: rotation must be one of 0, 90, 180, 270, got '90'"),
    ("set_rotation", b"", "set_rotation: rotation is missing"),
    ("flip_h", b"now", "flip_h: takes no payload, got 'now'"),
    ("flip_v", b'{"x": 1}', "flip_v: takes no payload"),
    ("low_light", b"on", "low_light: payload must be true or false, got 'on'"),
    ("low_light", b'{"enabled": 1}', "low_light: enabled must be true or false, got 1"),
    ("get_pixels", b"please", "get_pixels: takes no payload"),
    ("read_sensors", b"all", "read_sensors: takes no payload"),
    ("clera", b"", "clera: unknown action (did you mean 'clear'?)"),
]


@pytest.mark.parametrize("action,payload,message", BAD, ids=[f"{b[0]}:{b[2][len(b[0]) + 2:][:30]}" for b in BAD])
def test_bad_payloads_say_which_action_and_what_is_wrong(action, payload, message):
    with pytest.raises(PayloadError) as raised:
        parse_command(action, payload, {})
    assert str(raised.value).startswith(message)
    assert "\n" not in str(raised.value)


def test_nesting_around_the_recursion_limit_gives_a_payload_error():
    # Past the limit the JSON scanner gives up; just short of it json.dumps, which shows the wrong
    # value in the error, may give up instead. Neither may escape as a RecursionError.
    limit = sys.getrecursionlimit()
    for depth in range(limit - 300, limit + 10):
        nested = "[" * depth + "]" * depth
        for action, payload in (("set_pixel", nested), ("set_pixel", f'{{"x": {nested}}}'), ("show_message", f'{{"text": {nested}}}')):
            with pytest.raises(PayloadError, match=rf"^{action}: "):
                parse(action, payload)


def test_every_action_rejects_something():
    assert sorted({b[0] for b in BAD} - {"clera"}) == sorted(ACTIONS)


def test_payload_values_override_defaults_and_defaults_fill_the_rest():
    defaults = normalise_defaults("show_message", {"text_colour": "#ff0000", "scroll_speed": 0.05, "text": "doorbell"})
    assert parse("show_message", "", defaults).args == ("doorbell", RED, BLACK, 0.05)
    assert parse("show_message", "visitor", defaults).args == ("visitor", RED, BLACK, 0.05)
    assert parse("show_message", '{"scroll_speed": 0.2}', defaults).args == ("doorbell", RED, BLACK, 0.2)


def test_defaults_can_supply_a_whole_set_pixel():
    defaults = normalise_defaults("set_pixel", {"x": 3, "y": 4, "color": [0, 255, 0]})
    assert parse("set_pixel", "", defaults).args == (3, 4, (0, 255, 0))
    assert parse("set_pixel", '{"y": 5}', defaults).args == (3, 5, (0, 255, 0))


def test_defaults_from_the_config_are_validated_again_with_the_payload():
    # Raw (not normalised) defaults still go through the same rules.
    with pytest.raises(PayloadError, match=r"^clear: color must be"):
        parse("clear", "", {"color": [1, 2]})


def test_cheap_flag_separates_quick_display_ops_from_slow_ones():
    cheap = {action for action in ACTIONS if parse(action, next(g[1] for g in GOOD if g[0] == action)).cheap}
    assert cheap == {"show_letter", "set_pixel", "set_pixels", "clear", "set_rotation", "flip_h", "flip_v", "low_light", "get_pixels"}


def test_commands_are_immutable():
    command = parse("clear", "")
    with pytest.raises(AttributeError):
        command.action = "flip_h"


@pytest.mark.parametrize(
    "value,expected",
    [([1, 2, 3], (1, 2, 3)), ((0, 0, 0), (0, 0, 0)), ("#0a0B0c", (10, 11, 12)), ([255, 255, 255], WHITE)],
)
def test_parse_colour_accepts_lists_tuples_and_hex(value, expected):
    assert parse_colour(value) == expected


@pytest.mark.parametrize("value", [[1, 2], [1, 2, 3, 4], [-1, 0, 0], [256, 0, 0], [0, 256, 0], [0, 0, 256], [1.0, 2, 3], [True, 0, 0], "red", "#12345", "#1234567", None, 7])
def test_parse_colour_rejects_everything_else(value):
    with pytest.raises(ValueError, match=r'must be \[r, g, b\] with each 0..255, or "#rrggbb"'):
        parse_colour(value)


def test_check_defaults_reports_every_bad_key_with_a_suggestion():
    problems = check_defaults("set_pixel", {"colour": [1, 2, 3], "x": 8, "y": 2})
    assert problems == [
        ("colour", "unknown key for set_pixel (did you mean 'color'?); allowed: x, y, color"),
        ("x", "must be an integer 0..7, got 8"),
    ]


@pytest.mark.parametrize(
    "action,args,key,message",
    [
        ("show_message", {"text_colour": [1, 2, 300]}, "text_colour", "must be [r, g, b]"),
        ("show_message", {"scroll_speed": 5}, "scroll_speed", "must be seconds per column"),
        ("show_message", {"text": "x" * 1001}, "text", "must be at most 1000 characters"),
        ("set_rotation", {"rotation": 45}, "rotation", "must be one of 0, 90, 180, 270"),
        ("low_light", {"enabled": "yes"}, "enabled", "must be true or false"),
        ("flip_h", {"speed": 1}, "speed", "unknown key for flip_h; allowed: none"),
        ("clear", {"colour": "#000000"}, "colour", "unknown key for clear (did you mean 'color'?)"),
    ],
)
def test_check_defaults_per_action(action, args, key, message):
    [(reported_key, reported)] = check_defaults(action, args)
    assert reported_key == key
    assert reported.startswith(message)


def test_check_defaults_accepts_good_args_and_leaves_unknown_actions_to_the_config():
    assert check_defaults("show_message", {"text": "hi", "text_colour": "#ffffff", "scroll_speed": 0.05}) == []
    assert check_defaults("clear", {}) == []
    assert check_defaults("no_such_action", {"x": 1}) == []


def test_normalise_defaults_turns_colours_into_tuples():
    assert normalise_defaults("show_letter", {"text_colour": "#010203", "back_colour": [4, 5, 6]}) == {
        "text_colour": (1, 2, 3),
        "back_colour": (4, 5, 6),
    }
    with pytest.raises(PayloadError, match="args were not checked"):
        normalise_defaults("clear", {"color": "nope"})


def test_execute_runs_each_action_on_a_device():
    device = MemoryDevice()
    assert execute(device, parse("set_pixel", '{"x": 1, "y": 0, "color": [9, 9, 9]}')) is None
    assert execute(device, parse("get_pixels", ""))[1] == [9, 9, 9]
    execute(device, parse("flip_h", ""))
    assert device.get_pixels()[6] == [9, 9, 9]
    execute(device, parse("low_light", "true"))
    assert device.low_light is True
    execute(device, parse("show_message", "hi"))
    assert device.messages == ["hi"]
    readings = execute(device, parse("read_sensors", ""))
    assert sorted(readings) == sorted(POLLED_SENSORS)
    assert set(readings["orientation"]) == {"pitch", "roll", "yaw"}


class RefusingDevice(MemoryDevice):
    def set_pixel(self, x, y, colour):
        raise ValueError("X position must be between 0 and 7")


def test_device_errors_become_action_failed_naming_the_action():
    with pytest.raises(ActionFailed, match=r"^set_pixel: X position must be between 0 and 7$") as raised:
        execute(RefusingDevice(), Command("set_pixel", (9, 0, RED), True))
    assert isinstance(raised.value.__cause__, ValueError)


def test_reply_payloads():
    assert json.loads(reply_payload(None)) == {"ok": True}
    assert json.loads(reply_payload([[1, 2, 3]])) == [[1, 2, 3]]
    assert json.loads(reply_payload({"temperature": 20.5})) == {"temperature": 20.5}
    error = PayloadError("set_pixel: x must be an integer 0..7, got 9")
    assert json.loads(reply_payload(error)) == {"ok": False, "error": "set_pixel: x must be an integer 0..7, got 9"}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-300, 300) | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.sampled_from(["x", "y", "color", "text", "rotation", "enabled", "pixels", "letter", "z"]), children, max_size=4),
    max_leaves=12,
)


def _text_payloads():
    """Arbitrary text (any code point, surrogates aside), also wrapped the ways the readers look at."""
    text = st.text(max_size=40)
    digits = st.one_of(  # "²" and "٩٠" are isdigit(), 5,000 digits are more than int() takes
        st.text(st.characters(categories=["Nd", "No"]), min_size=1, max_size=8),
        st.builds(lambda digit, count: digit * count, st.sampled_from("19²"), st.integers(1, 6000)),
    )
    return st.one_of(
        text,
        digits,
        st.builds(lambda t: "{" + t + "}", text),
        st.builds(lambda t, ws: ws + t + ws, text, st.sampled_from(["", " ", "\u00a0", "\n", "\u2028"])),
        st.builds(lambda key, value: json.dumps({key: value}), st.sampled_from(["x", "text", "rotation", "letter", "enabled", "pixels"]), text),
    ).map(lambda t: t.encode("utf-8", "surrogatepass"))


@settings(max_examples=300, deadline=None)
@given(action=st.sampled_from(ACTIONS),
       payload=st.binary(max_size=60) | _text_payloads() | json_values.map(lambda v: json.dumps(v).encode()))
def test_any_payload_gives_a_command_or_a_payload_error(action, payload):
    # Bad payloads must never crash the subscription with anything but a clear PayloadError.
    try:
        command = parse_command(action, payload, {})
    except PayloadError as error:
        assert str(error).startswith(f"{action}: ")
    else:
        assert command.action == action
        json.dumps(execute(MemoryDevice(), command))  # and it runs, with a JSON-able result


@pytest.mark.parametrize("payload", ["²", "٩٠", "9" * 5000, "0" * 4301])
def test_set_rotation_text_that_is_digits_but_not_an_int_is_a_payload_error(payload):
    with pytest.raises(PayloadError, match=r"^set_rotation: "):
        parse("set_rotation", payload)


@settings(max_examples=300, deadline=None)
@given(text=st.text(st.sampled_from(' \t\n\r\u00a0\u2028{}[]"0a:,'), max_size=12))
@example(text="0\u00a0")  # whitespace to str.strip(), not to JSON
@example(text="{}\u2028")
def test_loads_agrees_with_json_loads(text):
    # actions._loads is a faster json.loads: it must accept exactly what json.loads accepts.
    from bridge.actions import _Invalid, _loads

    try:
        expected = json.loads(text)
    except ValueError:
        with pytest.raises(_Invalid):
            _loads(text)
    else:
        assert _loads(text) == expected


def test_max_payload_rejects_a_larger_payload_unread():
    limits = Limits(max_payload=10)
    assert parse_command("show_message", b"0123456789", {}, limits).args[0] == "0123456789"
    with pytest.raises(PayloadError, match=r"^show_message: payload is 11 bytes, more than this subscription's max_payload of 10$"):
        parse_command("show_message", b"\xff" * 11, {}, limits)  # not UTF-8 either: never decoded


def test_locked_args_cannot_be_set_by_a_payload():
    limits = Limits(locked=frozenset({"scroll_speed"}))
    assert parse_command("show_message", b"hi", {"scroll_speed": 0.05}, limits).args[3] == 0.05
    with pytest.raises(PayloadError, match=r"^show_message: scroll_speed is locked by this subscription's config"):
        parse_command("show_message", b'{"text": "hi", "scroll_speed": 1}', {"scroll_speed": 0.05}, limits)


def test_max_scroll_rejects_text_that_would_scroll_too_long():
    limits = Limits(max_scroll=30.0)
    # (8 + 6 * 32) columns at 0.15 s = 30 s: allowed; one more character is not.
    assert scroll_seconds("x" * 32, 0.15) == pytest.approx(30.0)
    parse_command("show_message", json.dumps({"text": "x" * 32, "scroll_speed": 0.15}).encode(), {}, limits)
    with pytest.raises(PayloadError, match=r"^show_message: 33 characters at scroll_speed 0.15 may scroll for 31 s, more than this subscription's max_scroll of 30 s"):
        parse_command("show_message", json.dumps({"text": "x" * 33, "scroll_speed": 0.15}).encode(), {}, limits)
    # the longest text at the slowest speed, allowed without a cap, would hold the display 100 minutes
    assert scroll_seconds("x" * 1000, 1.0) / 60 == pytest.approx(100.13, abs=0.01)


def test_scroll_seconds_is_an_upper_bound_of_the_drivers_frames():
    from bridge.display.font import CELLS, text_columns

    every = "".join(CELLS) + "œﬃ①中\u0301"  # transliterated to several characters, one, "?", none
    for char in every:
        assert len(text_columns(char)) - 8 <= scroll_seconds(char, 1.0), char
    # "œ" scrolls as "oe", 10 columns: 6 a character as typed would be no bound
    assert len(text_columns("œ" * 10)) - 8 > 8 + 6 * 10


def test_read_sensors_reports_a_failed_read_as_null_not_as_a_value():
    class FailedFirstReads:
        """What the sense_hat library returns when a humidity or pressure read fails: 0."""

        def read(self, sensor):
            value = {"orientation": {"pitch": 1.0, "roll": 2.0, "yaw": 3.0}}.get(sensor, 0.0)
            return value, "unit"

    readings = read_sensors(FailedFirstReads())
    assert readings["humidity"] is None and readings["pressure"] is None
    assert readings["temperature"] == 0.0  # 0 °C is a real temperature
    assert readings["orientation"] == {"pitch": 1.0, "roll": 2.0, "yaw": 3.0}


def test_check_locked_names_every_entry_that_is_no_key_of_the_action():
    allowed = "allowed: text, text_colour, back_colour, scroll_speed"
    assert check_locked("show_message", ["text", "colour", 5, "scroll_speed", "speed"]) == [
        (1, f"unknown key for show_message (did you mean 'text_colour'?); {allowed}"),
        (4, f"unknown key for show_message; {allowed}"),  # 5 is no name at all: the schema reports it
    ]
    assert check_locked("flip_h", ["x"]) == [(0, "unknown key for flip_h; allowed: none")]
    assert check_locked("clear", ["color"]) == []
    assert check_locked("no_such_action", ["x"]) == []  # the action itself is reported by the config checks


def test_a_long_value_is_shown_cut_to_sixty_characters():
    shown_whole, cut = "x" * 58, "x" * 59  # their repr is 60 and 61 characters
    with pytest.raises(PayloadError) as raised:
        parse("show_letter", shown_whole)
    assert str(raised.value) == f"show_letter: letter must be exactly one character, got '{shown_whole}'"
    with pytest.raises(PayloadError) as raised:
        parse("show_letter", cut)
    assert str(raised.value) == f"show_letter: letter must be exactly one character, got '{'x' * 56}..."


def test_a_value_nested_too_deeply_to_show_is_described_not_shown():
    deep_list, deep_object = [], {}
    for _ in range(100_000):
        deep_list, deep_object = [deep_list], {"a": deep_object}
    with pytest.raises(ValueError, match=r", got a JSON list nested too deeply to show$"):
        parse_colour(deep_list)
    with pytest.raises(ValueError, match=r", got a JSON object nested too deeply to show$"):
        parse_colour(deep_object)


class RecordingDevice(MemoryDevice):
    """Records the keyword options each display call got."""

    def __init__(self):
        super().__init__()
        self.options = []

    def show_message(self, *args, **options):
        self.options.append(("show_message", options))
        super().show_message(*args, **options)

    def show_letter(self, *args, **options):
        self.options.append(("show_letter", options))
        super().show_letter(*args, **options)


def test_only_a_scroll_is_handed_the_interrupt_event():
    interrupt = threading.Event()
    device = RecordingDevice()
    execute(device, parse("show_message", "hi"), interrupt)
    execute(device, parse("show_letter", "A"), interrupt)
    execute(device, parse("show_message", "ho"))
    assert device.options == [("show_message", {"interrupt": interrupt}), ("show_letter", {}), ("show_message", {})]
    assert device.messages == ["hi", "ho"]


@pytest.mark.parametrize("action,payload,message", [
    ("set_pixel", b"[0, 0, [1, 2, 3]]", "set_pixel: payload must be a JSON object, got [0, 0, [1, 2, 3]]"),
    ("set_pixels", b'"red"', 'set_pixels: payload must be a JSON list of 64 colours or {"pixels": [...]}, got \'red\''),
    ("set_pixels", b'{"pixels": "red"}', 'set_pixels: pixels must be a list of exactly 64 colours, got \'red\''),
    ("set_pixels", b'{"pixels": 5}', "set_pixels: pixels must be a list of exactly 64 colours, got 5"),
    ("show_message", b'{"text": "hi", "scroll_speed": "fast"}',
     "show_message: scroll_speed must be seconds per column, more than 0 and at most 1, got 'fast'"),
    ("show_message", b'{"text": "hi", "scroll_speed": 1.5}',
     "show_message: scroll_speed must be seconds per column, more than 0 and at most 1, got 1.5"),
    ("clear", b'{"color": "red"}', 'clear: color must be [r, g, b] with each 0..255, or "#rrggbb", got \'red\''),
])
def test_an_error_shows_the_value_it_refused(action, payload, message):
    with pytest.raises(PayloadError) as raised:
        parse_command(action, payload, {})
    assert str(raised.value) == message


def test_the_slowest_scroll_speed_is_one_second_per_column():
    assert parse("show_message", '{"text": "hi", "scroll_speed": 1}').args == ("hi", WHITE, BLACK, 1.0)


def test_an_empty_letter_payload_or_object_takes_the_letter_from_the_args():
    defaults = normalise_defaults("show_letter", {"letter": "X"})
    assert parse("show_letter", "", defaults).args == ("X", WHITE, BLACK)
    assert parse("show_letter", "{}", defaults).args == ("X", WHITE, BLACK)
    assert parse("show_letter", "Y", defaults).args == ("Y", WHITE, BLACK)


def test_read_sensors_reports_an_orientation_with_a_failed_axis_as_null():
    class FailedPitch:
        def read(self, sensor):
            value = {"orientation": {"pitch": float("nan"), "roll": 2.0, "yaw": 3.0}}.get(sensor, 20.0)
            return value, "unit"

    readings = read_sensors(FailedPitch())
    assert readings["orientation"] is None
    assert readings["temperature"] == 20.0


def test_only_cheap_actions_that_answer_nothing_are_batchable():
    batchable = {action for action in ("show_message", "show_letter", "set_pixel", "set_pixels", "clear",
                                       "set_rotation", "flip_h", "flip_v", "low_light", "get_pixels",
                                       "read_sensors", "no_such_action") if is_batchable(action)}
    assert batchable == {"show_letter", "set_pixel", "set_pixels", "clear", "set_rotation", "flip_h", "flip_v",
                         "low_light"}


def test_execute_batch_runs_each_call_and_names_the_action_in_each_failure():
    device = MemoryDevice()
    failures = execute_batch(device, "set_pixel", [(0, 0, (1, 2, 3)), (0, 9, (1, 1, 1)), (1, 0, (4, 5, 6))])
    assert [(position, str(error)) for position, error in failures] == [(1, "set_pixel: list assignment index out of range")]
    assert all(isinstance(error, ActionFailed) for _, error in failures)
    assert device.get_pixels()[:2] == [[1, 2, 3], [4, 5, 6]]
    assert execute_batch(device, "low_light", [(True,)]) == [] and device.low_light


def _pixel_payloads():
    """set_pixel payloads near the specialised parser's shape: each field valid, off by one, of
    another type, missing or extra; with whitespace, a trailing byte or a duplicate key."""
    number = st.integers(0, 7) | st.integers(-2, 300) | st.booleans() | st.floats(0, 8) | st.none() | st.text(max_size=2)
    colour = st.lists(number, min_size=2, max_size=4) | st.tuples(number, number, number).map(list) | st.just("#ff0000")
    fields = st.fixed_dictionaries({"x": number, "y": number, "color": colour},
                                   optional={"z": number, "text": st.just("hi")})
    shapes = st.sampled_from(["{}", " {}", "{}\n", "{}x", '{}'])
    objects = st.builds(lambda value, shape: shape.replace("{}", json.dumps(value)), fields, shapes)
    duplicate = st.builds(lambda value: json.dumps(value)[:-1] + ', "x": 1}', fields)
    return (objects | duplicate).map(str.encode) | st.binary(max_size=30) | _text_payloads()


@settings(max_examples=500, deadline=None)
@given(payload=_pixel_payloads(), max_payload=st.none() | st.integers(10, 60))
@example(payload=b'{"x": 1, "y": 2, "color": [3, 4, 5]}', max_payload=None)
@example(payload=b'{"x": 1, "y": 2, "color": [3, 4, 5]}', max_payload=20)
@example(payload=b'{"x": 1, "y": 2, "color": [3, 4, 5]} ', max_payload=None)
@example(payload=b'{"x": 1, "y": 2, "color": [3, 4, 5]}x', max_payload=None)
@example(payload=b'{"x": true, "y": 2, "color": [3, 4, 5]}', max_payload=None)
@example(payload=b'{"x": 1, "y": 2, "color": [3, 4, 256]}', max_payload=None)
@example(payload=b'{"x": 8, "y": 2, "color": [3, 4, 5]}', max_payload=None)
@example(payload=b'{"x": 1, "y": 8, "color": [3, 4, 5]}', max_payload=None)
@example(payload=b'{"x": 1, "y": 2, "color": [256, 4, 5]}', max_payload=None)
@example(payload=b'{"x": 1, "y": 2, "color": [3, 256, 5]}', max_payload=None)
@example(payload=b'\xff', max_payload=None)
def test_the_specialised_set_pixel_parser_agrees_with_parse_command(payload, max_payload):
    limits = Limits(max_payload=max_payload)
    try:
        expected = parse_command("set_pixel", payload, {}, limits).args
    except PayloadError as error:
        with pytest.raises(PayloadError) as raised:
            args_parser("set_pixel", {}, limits)(payload)
        assert str(raised.value) == str(error)
    else:
        assert args_parser("set_pixel", {}, limits)(payload) == expected


@pytest.mark.parametrize("payload, args", [
    (b'{"x": 0, "y": 7, "color": [0, 255, 0]}', (0, 7, (0, 255, 0))),
    (b'{"x": 7, "y": 0, "color": [255, 0, 255]}', (7, 0, (255, 0, 255))),
    (b'{"color": [1, 2, 3], "y": 5, "x": 6}', (6, 5, (1, 2, 3))),
])
@pytest.mark.parametrize("max_payload", [None, "exactly"])
def test_the_usual_set_pixel_payload_is_read_without_parse_command(payload, args, max_payload, monkeypatch):
    parse = args_parser("set_pixel", {}, Limits(max_payload=len(payload) if max_payload else None))
    monkeypatch.setattr(actions, "parse_command", lambda *_: pytest.fail("the usual payload reached parse_command"))
    assert parse(payload) == args


@pytest.mark.parametrize("action, defaults, limits, payload", [
    ("set_pixel", {"color": (1, 2, 3)}, NO_LIMITS, b'{"x": 1, "y": 2}'),
    ("set_pixel", {}, Limits(locked=frozenset({"color"})), b'{"x": 1, "y": 2, "color": [3, 4, 5]}'),
    ("clear", {"color": (9, 9, 9)}, NO_LIMITS, b""),
    ("show_message", {}, Limits(max_scroll=1.0), b"a long text"),
])
def test_args_parser_of_other_subscriptions_is_parse_command(action, defaults, limits, payload):
    try:
        expected = parse_command(action, payload, defaults, limits).args
    except PayloadError as error:
        with pytest.raises(PayloadError, match=f"^{re.escape(str(error))}$"):
            args_parser(action, defaults, limits)(payload)
    else:
        assert args_parser(action, defaults, limits)(payload) == expected
