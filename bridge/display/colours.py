"""Colours as payloads and configs write them, read in one place: bridge.actions (payloads) and
bridge.display.icons (icon lists) both use it, so actions may import icons without a cycle."""

from __future__ import annotations

import json
import re
from typing import Any

from bridge.display.model import Colour

_HEX_COLOUR = re.compile(r"#([0-9a-fA-F]{6})\Z")
_COLOUR_RULE = 'must be [r, g, b] with each 0..255, or "#rrggbb"'


class Invalid(ValueError):
    """A rule broken by one value; the caller adds which action and key."""


def describe(value: Any) -> str:
    if isinstance(value, (list, dict, bool)) or value is None:
        try:
            text = json.dumps(value)
        except RecursionError:  # nested just shallower than a payload may be, but deeper than dumps allows
            return f"a JSON {'list' if isinstance(value, list) else 'object'} nested too deeply to show"
    else:
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def parse_colour(value: Any) -> Colour:
    """[r, g, b] with ints 0..255 (list or tuple) or "#rrggbb" -> (r, g, b); ValueError otherwise."""
    if isinstance(value, str):
        match = _HEX_COLOUR.match(value)
        if match:
            number = int(match.group(1), 16)
            return (number >> 16, (number >> 8) & 0xFF, number & 0xFF)
    elif isinstance(value, (list, tuple)) and len(value) == 3:
        r, g, b = value
        if (
            type(r) is int and type(g) is int and type(b) is int
            and 0 <= r <= 255 and 0 <= g <= 255 and 0 <= b <= 255
        ):
            return (r, g, b)
    raise Invalid(f"{_COLOUR_RULE}, got {describe(value)}")
