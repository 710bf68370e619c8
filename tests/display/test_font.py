"""The bridge's font: the libraries' glyphs exactly, our own for Latin-1 and more, transliteration
for the rest, `?` only as the last resort."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import types

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.display import font

QUESTION = font.glyph("?")
# sense_hat loads its font with a Pillow call Pillow deprecates (sense_emu's is ignored in pyproject.toml).
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:sense_hat.*")


def drawn(columns) -> list[str]:
    """Columns as rows of '#' and '.', top to bottom, for readable expectations."""
    return ["".join("#" if column[y] else "." for column in columns) for y in range(8)]


@pytest.fixture(params=["sense_hat", "sense_emu"])
def library(request):
    """The library's SenseHat with only its font loaded (no framebuffer, no sensors)."""
    name = request.param
    if importlib.util.find_spec(name) is None:
        pytest.skip(f"{name} is not installed")
    imported = set(sys.modules)
    # sense_hat imports RTIMULib's binding at once, for sensors the font does not need.
    stubbed = "RTIMU" not in sys.modules
    if stubbed:
        sys.modules["RTIMU"] = types.ModuleType("RTIMU")
    try:
        module = importlib.import_module(f"{name}.sense_hat")
        hat = module.SenseHat.__new__(module.SenseHat)
        directory = os.path.dirname(module.__file__)
        hat._load_text_assets(os.path.join(directory, "sense_hat_text.png"),
                              os.path.join(directory, "sense_hat_text.txt"))
        yield hat
    finally:
        if stubbed:
            for added in set(sys.modules) - imported:
                if added == "RTIMU" or added.split(".")[0] == "sense_hat":
                    del sys.modules[added]


def library_columns(hat, char: str) -> list[tuple[bool, ...]]:
    """The library's trimmed glyph as top-to-bottom columns (it stores each column bottom to top)."""
    pixels = hat._trim_whitespace(hat._get_char_pixels(char))
    lit = [pixel == [255, 255, 255] for pixel in pixels]
    return [tuple(reversed(lit[start:start + 8])) for start in range(0, len(lit), 8)]


def test_the_91_library_glyphs_are_the_librarys_own(library):
    characters = [char for char in library._text_dict if char != "\n"]
    assert len(characters) == 91 == len(font.LIBRARY)
    assert set(characters) == set(font.LIBRARY)
    for char in characters:
        assert font.glyph(char) == library_columns(library, char), char


def test_what_the_library_draws_as_question_mark_we_draw_as_itself(library):
    for char in "°éÄß€":
        assert library_columns(library, char) == QUESTION
        assert font.glyph(char) != QUESTION, char


def test_the_degree_sign_is_a_small_ring_at_the_top():
    assert drawn(font.glyph("°")) == [
        "...",
        ".#.",
        "#.#",
        ".#.",
        "...",
        "...",
        "...",
        "...",
    ]


def test_an_umlaut_sits_over_its_letter():
    assert drawn(font.glyph("ä")) == [
        ".....",
        ".#.#.",
        ".....",
        ".###.",
        "....#",
        ".####",
        "#...#",
        ".####",
    ]
    assert drawn(font.glyph("a"))[3:] == drawn(font.glyph("ä"))[3:]


def test_every_printable_latin1_and_ascii_character_has_its_own_glyph():
    characters = [chr(code) for code in range(0x20, 0x7F)] + [chr(code) for code in range(0xA0, 0x100)]
    characters += list("€’‘“”–—…•")
    for char in characters:
        assert font.transliterate(char) == char
        columns = font.glyph(char)
        assert 1 <= len(columns) <= font.CELL_WIDTH, char
        assert all(len(column) == 8 for column in columns)
        if char != "?":
            assert columns != QUESTION, char


def test_letters_that_differ_only_by_their_accent_look_different():
    for group in ("AÀÁÂÃÄÅ", "aàáâãäå", "EÈÉÊË", "eèéêë", "OÒÓÔÕÖØ", "oòóôõöø", "UÙÚÛÜ", "uùúûü", "IÌÍÎÏ", "iìíîï",
                  "NÑ", "nñ", "CÇ", "cç", "YÝ", "yýÿ"):
        pictures = [tuple(font.glyph(char)) for char in group]
        assert len(set(pictures)) == len(group), group


@pytest.mark.parametrize("text, reading", [
    ("œuvre", "oeuvre"),
    ("Œ", "OE"),
    ("Łódź", "Lódz"),
    ("Győr Szőke", "Györ Szöke"),
    ("ﬁne", "fine"),
    ("①", "1"),
    ("Ａ", "A"),
    ("ẞ", "SS"),
    ("a\u0308", "ä"),  # composed first: keeps its own glyph
    ("q\u0301", "q"),  # a mark with no composed form is dropped
    ("x\u200by", "xy"),  # invisible format characters too
    ("tab\there", "tab here"),
    ("≤ 5 → ok", "<= 5 -> ok"),
    ("中文", "??"),
])
def test_transliteration(text, reading):
    assert font.transliterate(text) == reading


def test_every_transliteration_is_drawn_with_glyphs_of_its_own():
    for char, reading in font.TRANSLITERATIONS.items():
        assert char not in font.CELLS
        assert all(part in font.CELLS for part in reading), char
    assert font.transliterate("\ufdfa") == "?"  # a ligature whose decomposition is a whole phrase


def test_cyrillic_and_greek_look_alikes_are_drawn_as_the_latin_letter():
    assert font.transliterate("Москва") == "Moc??a"
    assert font.transliterate("ΑΒΓ") == "AB?"
    assert font.glyph("М") == font.glyph("M")


def test_a_character_transliterated_to_several_scrolls_as_those_glyphs():
    o, e = font.glyph("o"), font.glyph("e")
    assert font.glyph("œ") == o + [font.BLANK] + e


def test_text_columns_frame_each_glyph_like_show_message():
    columns = font.text_columns("i°")
    i, degree = font.glyph("i"), font.glyph("°")
    assert columns == [font.BLANK] * 8 + i + [font.BLANK] + degree + [font.BLANK] + [font.BLANK] * 8
    assert font.text_columns("") == [font.BLANK] * 16


def test_a_space_keeps_its_five_blank_columns_as_the_library_does():
    assert font.glyph(" ") == [font.BLANK] * 5
    assert font.glyph("\u00a0") == font.glyph(" ")


def test_show_letter_places_the_untrimmed_cell_from_the_second_column():
    columns = font.letter_columns("!")
    assert drawn(columns) == [
        "........",
        "...#....",
        "...#....",
        "...#....",
        "...#....",
        "...#....",
        "........",
        "...#....",
    ]


def test_show_letter_of_a_character_read_as_several_centres_them_or_shows_the_first():
    assert drawn(font.letter_columns("″"))[1] == "..#.#..."  # '"', 3 columns, centred
    assert font.letter_columns("œ") == font.letter_columns("o")  # "oe" is 9 columns: too wide
    assert font.letter_columns("\u0301") == [font.BLANK] * 8


@settings(deadline=None, max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=40))
def test_any_text_renders(text):
    reading = font.transliterate(text)
    assert all(char in font.CELLS for char in reading)
    columns = font.text_columns(text)
    assert all(len(column) == 8 for column in columns)
    assert len(columns) == 16 + sum(len(font.glyph(char)) + 1 for char in reading)
    for char in text:
        assert len(font.letter_columns(char)) == 8
