"""8×8 icons: the ones drawn for the bridge (`BUILTIN`), and `load_icon` for a notification's or
the config's own (64 colours, or a small PNG file)."""

from __future__ import annotations

import os
from typing import Any

from bridge.display.colours import parse_colour
from bridge.display.model import Colour, Picture

# One letter per pixel in the drawings below.
PALETTE: dict[str, Colour] = {
    ".": (0, 0, 0),
    "w": (255, 255, 255),
    "G": (96, 96, 96),  # grey
    "r": (255, 0, 0),
    "o": (255, 128, 0),
    "y": (255, 220, 0),
    "g": (0, 200, 0),
    "b": (0, 64, 255),
    "c": (0, 200, 255),
}

_DRAWINGS: dict[str, tuple[str, ...]] = {
    "thermometer": (
        "...ww...",
        "...w.w..",
        "...wrw..",
        "...wrw..",
        "...wrw..",
        "..wrrrw.",
        "..wrrrw.",
        "...www..",
    ),
    "drop": (
        "...c....",
        "...c....",
        "..ccc...",
        "..ccc...",
        ".ccwcc..",
        ".cwccc..",
        ".ccccc..",
        "..ccc...",
    ),
    "sun": (
        "y..y..y.",
        ".y.y.y..",
        "..yyy...",
        "yyyyyyy.",
        "..yyy...",
        ".y.y.y..",
        "y..y..y.",
        "........",
    ),
    "cloud": (
        "........",
        "...ww...",
        "..wwww..",
        ".wwwwww.",
        "wwwwwwww",
        "wwwwwwww",
        ".wwwwww.",
        "........",
    ),
    "bell": (
        "...yy...",
        "..yyyy..",
        ".yyyyyy.",
        ".yyyyyy.",
        ".yyyyyy.",
        "yyyyyyyy",
        "........",
        "...yy...",
    ),
    "check": (
        "........",
        ".......g",
        "......g.",
        ".....g..",
        "g...g...",
        ".g.g....",
        "..g.....",
        "........",
    ),
    "cross": (
        "r......r",
        ".r....r.",
        "..r..r..",
        "...rr...",
        "...rr...",
        "..r..r..",
        ".r....r.",
        "r......r",
    ),
    "arrow_up": (
        "...ww...",
        "..wwww..",
        ".w.ww.w.",
        "w..ww..w",
        "...ww...",
        "...ww...",
        "...ww...",
        "...ww...",
    ),
    "arrow_down": (
        "...ww...",
        "...ww...",
        "...ww...",
        "...ww...",
        "w..ww..w",
        ".w.ww.w.",
        "..wwww..",
        "...ww...",
    ),
    "arrow_left": (
        "...w....",
        "..w.....",
        ".w......",
        "wwwwwwww",
        "wwwwwwww",
        ".w......",
        "..w.....",
        "...w....",
    ),
    "arrow_right": (
        "....w...",
        ".....w..",
        "......w.",
        "wwwwwwww",
        "wwwwwwww",
        "......w.",
        ".....w..",
        "....w...",
    ),
    "heart": (
        "........",
        ".rr..rr.",
        "rrrrrrrr",
        "rrrrrrrr",
        ".rrrrrr.",
        "..rrrr..",
        "...rr...",
        "........",
    ),
    "wifi": (
        "........",
        ".cccccc.",
        "c......c",
        "..cccc..",
        ".c....c.",
        "...cc...",
        "........",
        "...cc...",
    ),
    "warning": (
        "...yy...",
        "...yy...",
        "..y..y..",
        "..y..y..",
        ".y.yy.y.",
        ".y....y.",
        "y..yy..y",
        "yyyyyyyy",
    ),
    "info": (
        "...bb...",
        "...bb...",
        "........",
        "..bbb...",
        "...bb...",
        "...bb...",
        "...bb...",
        "..bbbb..",
    ),
    "battery": (
        "..GGGG..",
        ".GGGGGG.",
        ".G....G.",
        ".G....G.",
        ".GggggG.",
        ".GggggG.",
        ".GggggG.",
        ".GGGGGG.",
    ),
}


def _picture(drawing: tuple[str, ...]) -> Picture:
    return tuple(PALETTE[letter] for row in drawing for letter in row)


BUILTIN: dict[str, Picture] = {name: _picture(drawing) for name, drawing in _DRAWINGS.items()}


def icon_names() -> list[str]:
    return sorted(BUILTIN)


def load_icon(value: Any, base_dir: str) -> Picture:
    """An icon from 64 colours ([r, g, b] or "#rrggbb") or a path (relative to `base_dir`) to an 8×8
    PNG; ValueError with one sentence otherwise."""
    if isinstance(value, (list, tuple)):
        return _from_colours(value)
    if isinstance(value, str):
        return _from_png(os.path.join(base_dir, value))
    raise ValueError(f"an icon is a list of 64 colours or the path of an 8×8 PNG file, got {type(value).__name__}")


def _from_colours(value: list | tuple) -> Picture:
    if len(value) != 64:
        raise ValueError(f"an icon has 64 colours (8 rows of 8), got {len(value)}")
    colours = []
    for index, colour in enumerate(value):
        try:
            colours.append(parse_colour(colour))
        except ValueError as error:
            raise ValueError(f"icon pixel {index} (x {index % 8}, y {index // 8}) {error}") from None
    return tuple(colours)


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _from_png(path: str) -> Picture:
    from PIL import Image, UnidentifiedImageError

    try:
        with open(path, "rb") as file:
            if file.read(len(_PNG_SIGNATURE)) != _PNG_SIGNATURE:
                raise ValueError(f"icon file {path} is not a PNG image")
            file.seek(0)
            with Image.open(file) as image:
                if image.size != (8, 8):
                    raise ValueError(f"icon file {path} is {image.size[0]}×{image.size[1]} pixels; an icon is 8×8")
                image.load()
                rgba = image.convert("RGBA")
    except FileNotFoundError:
        raise ValueError(f"icon file {path} does not exist") from None
    except UnidentifiedImageError:
        raise ValueError(f"icon file {path} could not be read: it starts like a PNG but is damaged") from None
    except (OSError, SyntaxError) as error:  # Pillow raises SyntaxError on broken chunks
        reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
        raise ValueError(f"icon file {path} could not be read: {reason}") from None
    data = rgba.tobytes()
    return tuple(_over_black(*data[start:start + 4]) for start in range(0, 256, 4))


def _over_black(red: int, green: int, blue: int, alpha: int) -> Colour:
    return (red * alpha // 255, green * alpha // 255, blue * alpha // 255)
