"""Scrolling text frame by frame, exactly as the sense_hat/sense_emu libraries' show_message draws it.

Their show_message sleeps between frames and cannot be stopped. Stepping the same frames here
lets a newer message (overflow latest) or a shutdown cut a scroll short at the next frame.

How the libraries draw: a glyph of their font is columns of 8 pixels; a message is 8 blank
columns, each glyph's columns (blank edge columns trimmed) plus one blank, and 8 blank columns;
frame i shows columns i..i+7, lit pixels in the text colour, the rest in the back colour, and
there are (columns - 8) frames, each followed by one scroll_speed of sleep. They set each frame
with the display turned 90° left of the current rotation (a column of the text is a row of
their frame); `frame_order` maps a frame index to the logical pixel that lands on the same LED
under the current rotation, so the plain set_pixels shows the same picture.
"""

from __future__ import annotations

from typing import Callable, Iterator, Sequence

Colour = tuple[int, int, int]
Column = tuple[bool, ...]  # 8 pixels, lit or not
BLANK: Column = (False,) * 8
_WHITE = [255, 255, 255]


def glyph_columns(pixels: Sequence) -> list[Column]:
    """A trimmed glyph from the library (its `_trim_whitespace(_get_char_pixels(c))`) as columns."""
    lit = [list(pixel) == _WHITE for pixel in pixels]
    return [tuple(lit[start:start + 8]) for start in range(0, len(lit), 8)]


def message_columns(text: str, glyph: Callable[[str], list[Column]]) -> list[Column]:
    columns = [BLANK] * 8
    for char in text:
        columns.extend(glyph(char))
        columns.append(BLANK)
    columns.extend([BLANK] * 8)
    return columns


def frame_order(rotation_maps: dict[int, Sequence[int]], rotation: int) -> tuple[int, ...]:
    """For each index of a text frame, the logical pixel index under `rotation` (see the top)."""
    logical_at = {led: index for index, led in enumerate(rotation_maps[rotation])}
    turned = rotation_maps[(rotation - 90) % 360]
    return tuple(logical_at[turned[index]] for index in range(64))


def frames(columns: list[Column], text_colour: Colour, back_colour: Colour,
           order: Sequence[int]) -> Iterator[list[Colour]]:
    """The logical 64-pixel pictures of the scroll, in order."""
    for first in range(len(columns) - 8):
        picture = [back_colour] * 64
        index = 0
        for column in columns[first:first + 8]:
            for lit in column:
                if lit:
                    picture[order[index]] = text_colour
                index += 1
        yield picture
