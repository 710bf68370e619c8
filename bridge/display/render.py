"""Content to frames: the pictures a notification or an app shows, one per scroll step.

A frame is drawn from layers, bottom to top (as documented on `Content`): the back colour, the
content's `pixels`, the scrolling strip, the draw ops, the progress bar. The strip is the icon's 8
columns and one blank column, then the text's glyphs (each followed by a blank column), then 8
blank columns; without an icon it starts with 8 blank columns instead, as show_message does. Frame
i shows the strip's columns i..i+7, so there are (columns − 8) frames and frame 0 shows the icon.
Unlit text pixels let the layers below show through; an icon covers them.

Everything but the strip's window is the same in every frame, so the layers are worked out once
per content (contents are frozen values) and each frame is a few passes over 64 pixels.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Iterable, Optional, Sequence

from bridge.display import font
from bridge.display.model import Colour, Content, DrawOp, Indicator, Picture

Layer = tuple[Optional[Colour], ...]  # 64 pixels, None: what is below shows through
StripColumn = tuple[Optional[Colour], ...]  # 8 pixels, top to bottom

# Indicator number -> its corner pixel: 1 top-left, 2 top-right, 3 bottom-right, 4 bottom-left.
CORNERS = {1: 0, 2: 7, 3: 63, 4: 56}
_CLEAR_COLUMN: StripColumn = (None,) * 8


def frame_count(content: Content) -> int:
    """How many frames one pass of the content takes: its scroll's steps, or 1 when it is still."""
    return len(_strip(content)) - 8 if content.text else 1


def frame(content: Content, index: int) -> Picture:
    """Frame `index` of the content (counted modulo `frame_count`, so repeated passes just count on)."""
    picture = list(_still(content))
    strip = _strip(content)
    if content.text:
        first = index % (len(strip) - 8)
    else:
        first = 0
    for x, column in enumerate(strip[first:first + 8]):
        for y, colour in enumerate(column):
            if colour is not None:
                picture[y * 8 + x] = colour
    for position, colour in enumerate(_on_top(content)):
        if colour is not None:
            picture[position] = colour
    return tuple(picture)


def overlay(picture: Picture, indicators: Iterable[Indicator], lit: bool) -> Picture:
    """The picture with the indicators' corner pixels on top; a blinking one only while `lit`."""
    pixels = list(picture)
    for indicator in indicators:
        if indicator.blink is None or lit:
            pixels[CORNERS[indicator.number]] = indicator.colour
    return tuple(pixels)


@lru_cache(maxsize=64)
def _still(content: Content) -> Picture:
    """The back colour with the content's pixels over it."""
    if content.pixels is not None:
        return tuple(content.pixels)
    return (content.back_colour,) * 64


@lru_cache(maxsize=64)
def _strip(content: Content) -> tuple[StripColumn, ...]:
    """The columns the content scrolls through (see the top); the icon alone for a still content."""
    columns: list[StripColumn] = []
    if content.icon is not None:
        icon = content.icon
        columns.extend(tuple(icon[y * 8 + x] for y in range(8)) for x in range(8))
        if not content.text:
            return tuple(columns)
        columns.append(_CLEAR_COLUMN)
        text = font.text_columns(content.text)[8:]
    elif content.text:
        text = font.text_columns(content.text)
    else:
        return ()
    on = content.text_colour
    columns.extend(tuple(on if lit else None for lit in column) for column in text)
    return tuple(columns)


@lru_cache(maxsize=64)
def _on_top(content: Content) -> Layer:
    """The draw ops, then the progress bar."""
    layer: list[Optional[Colour]] = [None] * 64
    for op in content.draw:
        _draw(layer, op)
    if content.progress is not None:
        lit = _eighths(content.progress)
        for x in range(8):
            layer[56 + x] = content.progress_colour if x < lit else content.progress_back_colour
    return tuple(layer)


def _eighths(percent: float) -> int:
    """How many of the 8 pixels of a bar `percent` fills, rounded half up."""
    return max(0, min(8, int(percent * 8 / 100 + 0.5)))


def _plot(layer: list, x: int, y: int, colour: Colour) -> None:
    if 0 <= x < 8 and 0 <= y < 8:
        layer[y * 8 + x] = colour


def _draw(layer: list, op: DrawOp) -> None:
    kind, values, colour = op.kind, op.values, op.colour
    if kind == "pixel":
        _plot(layer, values[0], values[1], colour)
    elif kind == "line":
        for x, y in _line(*values[:4]):
            _plot(layer, x, y, colour)
    elif kind in ("rect", "fill_rect"):
        left, top, width, height = values[:4]
        for y in range(max(top, 0), min(top + height, 8)):
            for x in range(max(left, 0), min(left + width, 8)):
                edge = x in (left, left + width - 1) or y in (top, top + height - 1)
                if kind == "fill_rect" or edge:
                    layer[y * 8 + x] = colour
    elif kind == "text":
        _text(layer, values[0], values[1], values[2], colour)
    elif kind == "bar":
        for x in range(_eighths(values[0])):
            layer[56 + x] = colour
    else:
        raise ValueError(f"unknown draw op {kind!r}")


def _line(x0: int, y0: int, x1: int, y1: int) -> Iterable[tuple[int, int]]:
    """Bresenham's line from (x0, y0) to (x1, y1), both ends included."""
    dx, dy = abs(x1 - x0), -abs(y1 - y0)
    step_x = 1 if x0 < x1 else -1
    step_y = 1 if y0 < y1 else -1
    error = dx + dy
    while True:
        yield x0, y0
        if x0 == x1 and y0 == y1:
            return
        doubled = 2 * error
        if doubled >= dy:
            error += dy
            x0 += step_x
        if doubled <= dx:
            error += dx
            y0 += step_y


def _text(layer: list, left: int, top: int, text: str, colour: Colour) -> None:
    """The text's glyphs from column `left`, the top of their cells at row `top`, one blank column
    apart; clipped, and stops at the right edge."""
    x = left
    for char in font.transliterate(text):
        if x > 7:
            return
        columns: Sequence[font.Column] = font.glyph(char)
        for column in columns:
            for row, lit in enumerate(column):
                if lit:
                    _plot(layer, x, top + row, colour)
            x += 1
        x += 1
