"""Content to frames, against pictures drawn by hand."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.devices import scroll
from bridge.display import font, render
from bridge.display.model import Content, DrawOp, Indicator

K, W, R, G, B, Y = (0, 0, 0), (255, 255, 255), (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)
LETTERS = {".": K, "w": W, "r": R, "g": G, "b": B, "y": Y}


def picture(*rows: str) -> tuple:
    assert len(rows) == 8 and all(len(row) == 8 for row in rows)
    return tuple(LETTERS[letter] for row in rows for letter in row)


def rows_of(frame) -> list[str]:
    """A frame as letters, for readable failures."""
    names = {colour: letter for letter, colour in LETTERS.items()}
    return ["".join(names.get(frame[y * 8 + x], "?") for x in range(8)) for y in range(8)]


ICON = picture(
    "rrrrrrrr",
    "r......r",
    "r......r",
    "r......r",
    "r......r",
    "r......r",
    "r......r",
    "rrrrrrrr",
)


def test_an_empty_content_is_one_frame_of_its_back_colour():
    content = Content(back_colour=B)
    assert render.frame_count(content) == 1
    assert render.frame(content, 0) == (B,) * 64


def test_pixels_cover_the_back_colour():
    pixels = (R,) * 32 + (G,) * 32
    assert render.frame(Content(pixels=pixels, back_colour=B), 0) == pixels


def test_text_scrolls_exactly_as_show_message():
    content = Content(text="Hi°!", text_colour=Y, back_colour=B)
    expected = list(scroll.frames("Hi°!", Y, B))
    assert render.frame_count(content) == len(expected) == len(font.text_columns("Hi°!")) - 8
    assert [render.frame(content, index) for index in range(len(expected))] == [tuple(f) for f in expected]


def test_the_text_enters_from_the_right():
    content = Content(text="I", text_colour=W)
    # frame 3 shows columns 3..10: the glyph "I" (3 columns) starts at column 8, so at x = 5
    assert rows_of(render.frame(content, 3)) == [
        "........",
        ".....www",
        "......w.",
        "......w.",
        "......w.",
        "......w.",
        "......w.",
        ".....www",
    ]


def test_an_icon_alone_is_a_still_frame():
    content = Content(icon=ICON, back_colour=B)
    assert render.frame_count(content) == 1
    assert render.frame(content, 0) == ICON


def test_an_icon_with_text_shows_first_then_scrolls_away_before_the_text():
    content = Content(text="I", icon=ICON, text_colour=W, back_colour=B)
    # icon (8) + blank (1) + "I" (3) + blank (1) + 8 blank = 21 columns, 13 frames
    assert render.frame_count(content) == 13
    assert render.frame(content, 0) == ICON
    assert rows_of(render.frame(content, 7)) == [
        "rbbbbbbb",
        "rbwwwbbb",
        "rbbwbbbb",
        "rbbwbbbb",
        "rbbwbbbb",
        "rbbwbbbb",
        "rbbwbbbb",
        "rbwwwbbb",
    ]
    assert render.frame(content, 12) == (B,) * 64


def test_frames_past_the_last_start_the_scroll_again():
    content = Content(text="ab")
    count = render.frame_count(content)
    assert render.frame(content, count + 5) == render.frame(content, 5)


def test_unlit_text_pixels_let_the_pixels_below_show():
    content = Content(text="I", pixels=(G,) * 64, text_colour=W, back_colour=B)
    assert rows_of(render.frame(content, 3))[1:3] == [
        "gggggwww",
        "ggggggwg",
    ]


def test_pixel_line_rect_and_filled_rect():
    content = Content(draw=(
        DrawOp("line", (0, 0, 7, 3), W),
        DrawOp("rect", (0, 4, 4, 4), R),
        DrawOp("fill_rect", (5, 5, 3, 2), G),
        DrawOp("pixel", (7, 7), Y),
    ))
    assert render.frame_count(content) == 1
    assert rows_of(render.frame(content, 0)) == [
        "ww......",
        "..ww....",
        "....ww..",
        "......ww",
        "rrrr....",
        "r..r.ggg",
        "r..r.ggg",
        "rrrr...y",
    ]


def test_a_steep_line_backwards_is_the_same_line():
    ahead = Content(draw=(DrawOp("line", (1, 0, 3, 7), W),))
    back = Content(draw=(DrawOp("line", (3, 7, 1, 0), W),))
    assert rows_of(render.frame(ahead, 0)) == rows_of(render.frame(back, 0)) == [
        ".w......",
        ".w......",
        "..w.....",
        "..w.....",
        "..w.....",
        "..w.....",
        "...w....",
        "...w....",
    ]


def test_text_at_a_position_is_clipped_at_the_edges():
    content = Content(draw=(DrawOp("text", (5, -1, "T°"), Y),))
    assert rows_of(render.frame(content, 0)) == [
        ".....yyy",  # the T's top (row 1 of its cell) at row 0; its right two columns are cut off
        ".......y",
        ".......y",
        ".......y",
        ".......y",
        ".......y",
        ".......y",
        "........",
    ]


def test_bar_fills_a_share_of_the_bottom_row_and_leaves_the_rest():
    content = Content(pixels=(B,) * 64, draw=(DrawOp("bar", (40,), R),))
    assert rows_of(render.frame(content, 0))[6:] == ["bbbbbbbb", "rrrbbbbb"]  # 40 % of 8 = 3.2


@pytest.mark.parametrize("progress, lit", [(0, 0), (6, 0), (7, 1), (50, 4), (94, 8), (93, 7), (100, 8)])
def test_progress_bar(progress, lit):
    content = Content(back_colour=B, progress=progress, progress_colour=G, progress_back_colour=R)
    frame = render.frame(content, 0)
    assert frame[:56] == (B,) * 56
    assert frame[56:] == (G,) * lit + (R,) * (8 - lit)


def test_the_layers_stack_back_pixels_strip_draw_progress():
    content = Content(
        text="I", pixels=(G,) * 64, text_colour=W, back_colour=B,
        draw=(DrawOp("line", (0, 1, 7, 1), Y),), progress=100, progress_colour=R,
    )
    assert rows_of(render.frame(content, 3)) == [
        "gggggggg",
        "yyyyyyyy",  # the draw ops over the text
        "ggggggwg",
        "ggggggwg",
        "ggggggwg",
        "ggggggwg",
        "ggggggwg",
        "rrrrrrrr",  # the progress bar over everything
    ]


def test_overlay_puts_the_indicators_in_their_corners():
    base = (K,) * 64
    solid = [Indicator(1, R), Indicator(2, G), Indicator(3, B), Indicator(4, Y)]
    assert rows_of(render.overlay(base, solid, lit=False)) == [
        "r......g",
        "........",
        "........",
        "........",
        "........",
        "........",
        "........",
        "y......b",
    ]


def test_a_blinking_indicator_shows_only_while_lit():
    base = (K,) * 64
    blinking = [Indicator(2, G, blink=0.5), Indicator(4, Y)]
    assert render.overlay(base, blinking, lit=True)[7] == G
    off = render.overlay(base, blinking, lit=False)
    assert off[7] == K and off[56] == Y
    assert render.overlay(base, [], lit=True) == base


colours = st.tuples(st.integers(0, 255), st.integers(0, 255), st.integers(0, 255))
coordinates = st.integers(0, 7)
draw_ops = st.one_of(
    st.builds(DrawOp, st.just("pixel"), st.tuples(coordinates, coordinates), colours),
    st.builds(DrawOp, st.just("line"), st.tuples(coordinates, coordinates, coordinates, coordinates), colours),
    st.builds(DrawOp, st.sampled_from(["rect", "fill_rect"]),
              st.tuples(coordinates, coordinates, st.integers(1, 8), st.integers(1, 8)), colours),
    st.builds(DrawOp, st.just("text"), st.tuples(st.integers(-8, 8), st.integers(-8, 8), st.text(max_size=10)), colours),
    st.builds(DrawOp, st.just("bar"), st.tuples(st.integers(0, 100)), colours),
)
contents = st.builds(
    Content,
    text=st.none() | st.text(max_size=20),
    icon=st.none() | st.tuples(*[colours] * 64),
    draw=st.lists(draw_ops, max_size=5).map(tuple),
    progress=st.none() | st.integers(0, 100),
)


@settings(deadline=None, max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(contents, st.integers(0, 1000))
def test_any_content_renders_64_colours(content, index):
    count = render.frame_count(content)
    assert count >= 1
    frame = render.frame(content, index)
    assert len(frame) == 64 and all(len(colour) == 3 for colour in frame)
