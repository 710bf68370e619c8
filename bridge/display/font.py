"""The bridge's font: every character the LED matrix can be asked to show, as columns of 8 pixels.

The sense_hat and sense_emu libraries draw `show_message` with a 91-glyph font (their
sense_hat_text.png) and draw anything else as `?`. `LIBRARY` is that font, pixel for pixel, so
text the libraries can draw looks the same; `EXTRA` adds glyphs in the same style for the rest of
printable ASCII, every printable Latin-1 character (U+00A0–U+00FF), € and common typographic
marks; accented letters are composed from a mark and a base. Anything else is transliterated to
characters that have a glyph (a table, then NFKD without combining marks); `?` is the last resort.

A glyph is a cell 5 columns wide and 8 rows high (row 0 at the top, the baseline at row 7). Every
table entry below draws rows 1 to 7 (row 0 is blank in the library's font) as 7 groups of 5 pixels,
`#` lit. `glyph` trims blank edge columns, as the libraries do before scrolling; a blank cell (the
space) keeps its 5 columns, as theirs does.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

Column = tuple[bool, ...]  # 8 pixels, lit or not, top to bottom
BLANK: Column = (False,) * 8
CELL_WIDTH = 5

# The libraries' show_message font (sense_hat_text.png, in the order of sense_hat_text.txt).
LIBRARY: dict[str, str] = {
    ' ': "..... ..... ..... ..... ..... ..... .....",
    '+': "..... ..#.. ..#.. ##### ..#.. ..#.. .....",
    '-': "..... ..... ..... ##### ..... ..... .....",
    '*': "..... ..#.. #.#.# .###. #.#.# ..#.. .....",
    '/': "..... ....# ...#. ..#.. .#... #.... .....",
    '!': "..#.. ..#.. ..#.. ..#.. ..#.. ..... ..#..",
    '"': ".#.#. .#.#. .#.#. ..... ..... ..... .....",
    '#': ".#.#. .#.#. ##### .#.#. ##### .#.#. .#.#.",
    '$': "..#.. .#### #.#.. .###. ..#.# ####. ..#..",
    '>': ".#... ..#.. ...#. ....# ...#. ..#.. .#...",
    '<': "...#. ..#.. .#... #.... .#... ..#.. ...#.",
    '0': ".###. #...# #..## #.#.# ##..# #...# .###.",
    '1': "..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###.",
    '2': ".###. #...# ....# ...#. ..#.. .#... #####",
    '3': "##### ...#. ..#.. ...#. ....# #...# .###.",
    '4': "...#. ..##. .#.#. #..#. ##### ...#. ...#.",
    '5': "##### #.... ####. ....# ....# #...# .###.",
    '6': "..##. .#... #.... ####. #...# #...# .###.",
    '7': "##### ....# ...#. ..#.. ..#.. ..#.. ..#..",
    '8': ".###. #...# #...# .###. #...# #...# .###.",
    '9': ".###. #...# #...# .#### ....# ...#. .##..",
    '.': "..... ..... ..... ..... ..... .##.. .##..",
    '=': "..... ..... ##### ..... ##### ..... .....",
    ')': ".#... ..#.. ...#. ...#. ...#. ..#.. .#...",
    '(': "...#. ..#.. .#... .#... .#... ..#.. ...#.",
    'A': ".###. #...# #...# ##### #...# #...# #...#",
    'B': "####. #...# #...# ####. #...# #...# ####.",
    'C': ".###. #...# #.... #.... #.... #...# .###.",
    'D': "###.. #..#. #...# #...# #...# #..#. ###..",
    'E': "##### #.... #.... ####. #.... #.... #####",
    'F': "##### #.... #.... ####. #.... #.... #....",
    'G': ".###. #...# #.... #.### #...# #...# .####",
    'H': "#...# #...# #...# ##### #...# #...# #...#",
    'I': ".###. ..#.. ..#.. ..#.. ..#.. ..#.. .###.",
    'J': "..### ...#. ...#. ...#. ...#. #..#. .##..",
    'K': "#...# #..#. #.#.. ##... #.#.. #..#. #...#",
    'L': "#.... #.... #.... #.... #.... #.... #####",
    'M': "#...# ##.## #.#.# #.#.# #...# #...# #...#",
    'N': "#...# #...# ##..# #.#.# #..## #...# #...#",
    'O': ".###. #...# #...# #...# #...# #...# .###.",
    'P': "####. #...# #...# ####. #.... #.... #....",
    'Q': ".###. #...# #...# #...# #.#.# #..#. .##.#",
    'R': "####. #...# #...# ####. #.#.. #..#. #...#",
    'S': ".#### #.... #.... .###. ....# ....# ####.",
    'T': "##### ..#.. ..#.. ..#.. ..#.. ..#.. ..#..",
    'U': "#...# #...# #...# #...# #...# #...# .###.",
    'V': "#...# #...# #...# #...# #...# .#.#. ..#..",
    'W': "#...# #...# #...# #.#.# #.#.# ##.## #...#",
    'X': "#...# #...# .#.#. ..#.. .#.#. #...# #...#",
    'Y': "#...# #...# .#.#. ..#.. ..#.. ..#.. ..#..",
    'Z': "##### ....# ...#. ..#.. .#... #.... #####",
    'a': "..... ..... .###. ....# .#### #...# .####",
    'b': "#.... #.... #.##. ##..# #...# #...# .###.",
    'c': "..... ..... .###. #.... #.... #...# .###.",
    'd': "....# ....# .##.# #..## #...# #...# .####",
    'e': "..... ..... .###. #...# ##### #.... .###.",
    'f': "...#. ..#.# ..#.. .###. ..#.. ..#.. ..#..",
    'g': "..... ..... .#### #...# .#### ....# .###.",
    'h': "#.... #.... #.##. ##..# #...# #...# #...#",
    'i': "..#.. ..... .##.. ..#.. ..#.. ..#.. .###.",
    'j': "...#. ..... ...#. ...#. ...#. #..#. .##..",
    'k': ".#... .#... .#..# .#.#. .##.. .#.#. .#..#",
    'l': ".##.. ..#.. ..#.. ..#.. ..#.. ..#.. .###.",
    'm': "..... ..... ##.#. #.#.# #.#.# #.#.# #.#.#",
    'n': "..... ..... #.##. ##..# #...# #...# #...#",
    'o': "..... ..... .###. #...# #...# #...# .###.",
    'p': "..... ..... ####. #...# ####. #.... #....",
    'q': "..... ..... .#### #...# .#### ....# ....#",
    'r': "..... ..... .#.## .##.. .#... .#... .#...",
    's': "..... ..... .#### #.... .###. ....# ####.",
    't': "..... ..#.. .###. ..#.. ..#.. ..#.# ...#.",
    'u': "..... ..... #...# #...# #...# #..## .##.#",
    'v': "..... ..... #...# #...# #...# .#.#. ..#..",
    'w': "..... ..... #...# #...# #.#.# #.#.# .#.#.",
    'x': "..... ..... ##..# ..##. ..#.. .##.. #..##",
    'y': "..... ..... #...# .#..# ..##. ..#.. ##...",
    'z': "..... ..... ##### ...#. ..#.. .#... #####",
    '?': ".###. #...# ....# ...#. ..#.. ..... ..#..",
    ',': "..... ..... ..... ..... .##.. ..#.. .#...",
    ';': "..... .##.. .##.. ..... .##.. ..#.. .#...",
    ':': "..... .##.. .##.. ..... .##.. .##.. .....",
    '|': "..#.. ..#.. ..#.. ..#.. ..#.. ..#.. ..#..",
    '@': ".###. #...# ....# .##.# #.#.# #.#.# .###.",
    '%': "##... ##..# ...#. ..#.. .#... #..## ...##",
    '[': ".###. .#... .#... .#... .#... .#... .###.",
    '&': ".##.. #..#. #.#.. .#... #.#.# #..#. .##.#",
    '_': "..... ..... ..... ..... ..... ..... #####",
    "'": ".##.. ..#.. .#... ..... ..... ..... .....",
    ']': ".###. ...#. ...#. ...#. ...#. ...#. .###.",
    '\\': "..... #.... .#... ..#.. ...#. ....# .....",
    '~': "..... ..... .##.# #.##. ..... ..... .....",
}

# The rest of printable ASCII, Latin-1 and common marks, drawn in the same style.
EXTRA: dict[str, str] = {
    "^": "..#.. .#.#. #...# ..... ..... ..... .....",
    "`": ".#... ..#.. ..... ..... ..... ..... .....",
    "{": "...#. ..#.. ..#.. .#... ..#.. ..#.. ...#.",
    "}": ".#... ..#.. ..#.. ...#. ..#.. ..#.. .#...",
    "\u00a0": "..... ..... ..... ..... ..... ..... .....",
    "¡": "..#.. ..... ..#.. ..#.. ..#.. ..#.. ..#..",
    "¢": "..#.. .###. #.#.. #.#.. #.#.. .###. ..#..",
    "£": "..##. .#..# .#... ####. .#... .#... #####",
    "¤": "..... #...# .###. .#.#. .###. #...# .....",
    "¥": "#...# .#.#. ..#.. ##### ..#.. ##### ..#..",
    "¦": "..#.. ..#.. ..#.. ..... ..#.. ..#.. ..#..",
    "§": ".###. #.... .##.. #..#. .##.. ...#. ###..",
    "¨": ".#.#. ..... ..... ..... ..... ..... .....",
    "©": ".###. #...# #.### #.#.# #.### #...# .###.",
    "ª": ".##.. ...#. .###. #..#. .###. ..... ####.",
    "«": "..... ..#.# .#.#. #.#.. .#.#. ..#.# .....",
    "¬": "..... ..... ..... ##### ....# ....# .....",
    "\u00ad": "..... ..... ..... .###. ..... ..... .....",
    "®": ".###. #...# ###.# ##.## ###.# ##.## .###.",
    "¯": "##### ..... ..... ..... ..... ..... .....",
    "°": ".#... #.#.. .#... ..... ..... ..... .....",
    "±": "..#.. ..#.. ##### ..#.. ..#.. ..... #####",
    "²": "##... ..#.. .#... ###.. ..... ..... .....",
    "³": "###.. .##.. ..#.. ###.. ..... ..... .....",
    "´": "...#. ..#.. ..... ..... ..... ..... .....",
    "µ": "..... ..... #...# #...# #..## ###.# #....",
    "¶": ".#### ###.# ###.# .##.# ..#.# ..#.# ..#.#",
    "·": "..... ..... ..... .##.. .##.. ..... .....",
    "¸": "..... ..... ..... ..... ..#.. ...#. .##..",
    "¹": ".#... ##... .#... ###.. ..... ..... .....",
    "º": "..... .##.. #..#. #..#. .##.. ..... ####.",
    "»": "..... #.#.. .#.#. ..#.# .#.#. #.#.. .....",
    "¼": "#...# #..#. #.#.. .#... ..#.# ..### ....#",
    "½": "#...# #..#. #.#.. .#... ..##. ...#. ...##",
    "¾": "##..# .#.#. ###.. .#... ..#.# ..### ....#",
    "¿": "..#.. ..... ..#.. .#... #.... #...# .###.",
    "Æ": ".#### #.#.. #.#.. ####. #.#.. #.#.. #.###",
    "Ð": ".##.. .#.#. .#..# ###.# .#..# .#.#. .##..",
    "×": "..... #...# .#.#. ..#.. .#.#. #...# .....",
    "Ø": ".#### #..## #.#.# #.#.# ##..# ##..# ####.",
    "Þ": "#.... ####. #...# #...# ####. #.... #....",
    "ß": ".##.. #..#. #.#.. #..#. #...# #...# #.##.",
    "æ": "..... ..... ##.#. ..#.# .#### #.#.. .#.##",
    "ð": ".#.#. ..#.. .#.#. ....# .#### #...# .###.",
    "÷": "..... ..#.. ..... ##### ..... ..#.. .....",
    "ø": "..... ..... .#### #..## #.#.# ##..# ####.",
    "þ": "#.... #.... ####. #...# ####. #.... #....",
    "€": "..### .#... ####. .#... ####. .#... ..###",
    "‘": "..#.. .#... .##.. ..... ..... ..... .....",
    "’": ".##.. ..#.. .#... ..... ..... ..... .....",
    "‚": "..... ..... ..... ..... .##.. ..#.. .#...",
    "“": ".#..# #..#. ##.## ..... ..... ..... .....",
    "”": "##.## .#..# #..#. ..... ..... ..... .....",
    "„": "..... ..... ..... ..... ##.## .#..# #..#.",
    "‹": "..... ..#.. .#... #.... .#... ..#.. .....",
    "›": "..... #.... .#... ..#.. .#... #.... .....",
    "–": "..... ..... ..... ####. ..... ..... .....",
    "—": "..... ..... ..... ##### ..... ..... .....",
    "…": "..... ..... ..... ..... ..... ..... #.#.#",
    "•": "..... ..... .##.. ####. ####. .##.. .....",
}

# Accents over letters (by their Unicode name): the mark's rows over the base's, stacked into the 8 rows of a cell. Capitals lose a
# row (6 rows, from row 2) to make room for the mark in rows 0–1; small letters keep their 5 rows
# (from row 3) under a mark in rows 0–2.
_CAPITAL_MARKS = {
    "GRAVE": ".#... ..#..", "ACUTE": "...#. ..#..", "CIRCUMFLEX": "..#.. .#.#.",
    "TILDE": ".##.# #.##.", "DIAERESIS": ".#.#. .....", "RING ABOVE": ".###. .#.#.",
}
_SMALL_MARKS = {
    "GRAVE": ".#... ..#.. .....", "ACUTE": "...#. ..#.. .....", "CIRCUMFLEX": "..#.. .#.#. .....",
    "TILDE": ".##.# #.##. .....", "DIAERESIS": "..... .#.#. .....", "RING ABOVE": "..#.. .#.#. ..#..",
}
_CAPITAL_BASES = {
    "A": ".###. #...# #...# ##### #...# #...#",
    "E": "##### #.... ####. #.... #.... #####",
    "I": ".###. ..#.. ..#.. ..#.. ..#.. .###.",
    "N": "#...# ##..# #.#.# #..## #...# #...#",
    "O": ".###. #...# #...# #...# #...# .###.",
    "U": "#...# #...# #...# #...# #...# .###.",
    "Y": "#...# #...# .#.#. ..#.. ..#.. ..#..",
}
_SMALL_BASES = {
    "a": ".###. ....# .#### #...# .####",
    "e": ".###. #...# ##### #.... .###.",
    "i": ".##.. ..#.. ..#.. ..#.. .###.",  # dotless
    "n": "#.##. ##..# #...# #...# #...#",
    "o": ".###. #...# #...# #...# .###.",
    "u": "#...# #...# #...# #..## .##.#",
    "y": "#...# .#..# ..##. ..#.. ##...",
}
_CEDILLA = {
    "Ç": "..... .###. #...# #.... #.... #...# .###. ..##.",
    "ç": "..... ..... .###. #.... #.... #...# .###. ..##.",
}


def _accented() -> dict[str, str]:
    """Every Latin-1 letter with a grave, acute, circumflex, tilde, diaeresis or ring, as 8 rows."""
    drawn = {}
    for char in map(chr, range(0xC0, 0x100)):
        name = unicodedata.name(char)
        for mark in _CAPITAL_MARKS:
            if name.endswith(f" WITH {mark}"):
                base = unicodedata.normalize("NFD", char)[0]
                if base in _CAPITAL_BASES:
                    drawn[char] = f"{_CAPITAL_MARKS[mark]} {_CAPITAL_BASES[base]}"
                elif base.lower() in _SMALL_BASES:
                    drawn[char] = f"{_SMALL_MARKS[mark]} {_SMALL_BASES[base.lower()]}"
    return drawn


def _cell(rows: str) -> tuple[Column, ...]:
    pixels = rows.split()
    if len(pixels) == 7:
        pixels.insert(0, "." * CELL_WIDTH)
    return tuple(tuple(row[x] == "#" for row in pixels) for x in range(CELL_WIDTH))


CELLS: dict[str, tuple[Column, ...]] = {
    char: _cell(rows) for table in (LIBRARY, EXTRA, _accented(), _CEDILLA) for char, rows in table.items()
}

# Characters without a glyph whose Latin reading NFKD does not give.
TRANSLITERATIONS = {
    "Œ": "OE", "œ": "oe", "Ł": "L", "ł": "l", "Đ": "D", "đ": "d", "Ħ": "H", "ħ": "h", "ı": "i",
    "Ŋ": "N", "ŋ": "n", "ĸ": "k", "ẞ": "SS", "Ő": "Ö", "ő": "ö", "Ű": "Ü", "ű": "ü",
    "ʼ": "’", "′": "'", "″": '"', "‐": "-", "‑": "-", "‒": "–", "―": "—", "−": "-", "∙": "·",
    "≤": "<=", "≥": ">=", "≠": "!=", "←": "<-", "→": "->", "↔": "<->", "⇒": "=>",
    # Greek and Cyrillic letters drawn like a Latin one
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N",
    "Ο": "O", "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X", "ο": "o", "μ": "µ", "ν": "v",
    "А": "A", "В": "B", "Е": "E", "Ё": "Ë", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P",
    "С": "C", "Т": "T", "Х": "X", "а": "a", "е": "e", "ё": "ë", "о": "o", "р": "p", "с": "c",
    "у": "y", "х": "x", "і": "i", "І": "I", "ј": "j", "Ј": "J", "ѕ": "s", "Ѕ": "S",
}


# A compatibility decomposition longer than this (an Arabic ligature spelled out as a phrase) is no
# Latin reading; the bound also keeps one character's glyph narrow.
_LONGEST_READING = 4


def _transliterated(char: str) -> str:
    if char in CELLS:
        return char
    if char in TRANSLITERATIONS:
        return TRANSLITERATIONS[char]
    if char.isspace():
        return " "
    if unicodedata.category(char) in ("Mn", "Me", "Cf"):  # a mark left over after NFC, or invisible
        return ""
    decomposed = "".join(part for part in unicodedata.normalize("NFKD", char) if not unicodedata.combining(part))
    if decomposed and decomposed != char and len(decomposed) <= _LONGEST_READING:
        return "".join(_transliterated(part) for part in decomposed)
    return "?"


def transliterate(text: str) -> str:
    """`text` in characters that all have a glyph: composed (NFC), then each character without a
    glyph replaced by its Latin reading, `?` when it has none."""
    return "".join(_transliterated(char) for char in unicodedata.normalize("NFC", text))


def _trimmed(cell: tuple[Column, ...]) -> list[Column]:
    lit = [index for index, column in enumerate(cell) if any(column)]
    if not lit:
        return list(cell)
    return list(cell[lit[0]:lit[-1] + 1])


@lru_cache(maxsize=1024)
def _glyph(char: str) -> tuple[Column, ...]:
    if char in CELLS:
        return tuple(_trimmed(CELLS[char]))
    columns: list[Column] = []
    for part in transliterate(char):
        if columns:
            columns.append(BLANK)
        columns.extend(_trimmed(CELLS[part]))
    return tuple(columns)


def glyph(char: str) -> list[Column]:
    """The columns `char` scrolls as, blank edge columns trimmed (several glyphs, one blank column
    apart, for a character transliterated to several)."""
    return list(_glyph(char))


def letter_columns(char: str) -> list[Column]:
    """The 8 columns show_letter draws: the character's untrimmed cell from column 1, as the
    libraries place it; a character read as several is centred when they fit, else their first."""
    reading = transliterate(char)
    if len(reading) == 1:
        return [BLANK, *CELLS[reading], BLANK, BLANK]
    columns = list(_glyph(char)) if reading else []
    if len(columns) > 8:
        return letter_columns(reading[0])
    left = (8 - len(columns)) // 2
    return [BLANK] * left + columns + [BLANK] * (8 - left - len(columns))


def text_columns(text: str) -> list[Column]:
    """8 blank columns, each glyph of the transliterated text and one blank column, 8 blank columns:
    the strip show_message scrolls through."""
    columns = [BLANK] * 8
    for char in transliterate(text):
        columns.extend(_glyph(char))
        columns.append(BLANK)
    columns.extend([BLANK] * 8)
    return columns
