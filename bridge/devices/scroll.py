"""Text on the LED matrix as the sense_hat/sense_emu libraries draw it, in the bridge's font.

Their show_message sleeps between frames and cannot be stopped. Stepping the same frames here
lets a newer message (overflow latest) or a shutdown cut a scroll short at the next frame.

How the libraries draw: a message is a strip of columns (`font.text_columns`); frame i shows
columns i..i+7, lit pixels in the text colour, the rest in the back colour, and there are
(columns - 8) frames, each followed by one scroll_speed of sleep. show_letter shows one
character's 5-column cell from the second column. Both draw with the display turned 90° left,
which lands the same picture on the LEDs as these logical pictures through the plain set_pixels.
Characters of the libraries' own font come out pixel for pixel as theirs; the rest, which they
would draw as `?`, in the bridge's glyphs.
"""

from __future__ import annotations

from typing import Iterator, Sequence

from bridge.display import font

Colour = tuple[int, int, int]


def picture(columns: Sequence[font.Column], text_colour: Colour, back_colour: Colour) -> list[Colour]:
    """8 columns as a logical 64-pixel picture."""
    pixels = [back_colour] * 64
    for x, column in enumerate(columns):
        for y, lit in enumerate(column):
            if lit:
                pixels[y * 8 + x] = text_colour
    return pixels


def frames(text: str, text_colour: Colour, back_colour: Colour) -> Iterator[list[Colour]]:
    """The logical pictures of the scroll of `text`, in order."""
    columns = font.text_columns(text)
    for first in range(len(columns) - 8):
        yield picture(columns[first:first + 8], text_colour, back_colour)


def letter(char: str, text_colour: Colour, back_colour: Colour) -> list[Colour]:
    """The logical picture show_letter draws for `char`."""
    return picture(font.letter_columns(char), text_colour, back_colour)
