"""Icons: the built-in drawings, and custom ones from 64 colours or an 8×8 PNG file."""

from __future__ import annotations

import pytest
from PIL import Image

from bridge.display import icons

RED, GREEN, BLUE, BLACK, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (0, 0, 0), (255, 255, 255)


def test_the_builtin_icons_are_8_by_8_pictures():
    required = {"thermometer", "drop", "sun", "cloud", "bell", "check", "cross", "arrow_up", "arrow_down",
                "arrow_left", "arrow_right", "heart", "wifi"}
    assert required <= set(icons.BUILTIN)
    assert icons.icon_names() == sorted(icons.BUILTIN)
    for name, picture in icons.BUILTIN.items():
        assert len(picture) == 64, name
        assert all(len(colour) == 3 and all(0 <= part <= 255 for part in colour) for colour in picture), name
        assert any(colour != BLACK for colour in picture), name
    assert len(set(icons.BUILTIN.values())) == len(icons.BUILTIN)  # no two alike


def test_a_builtin_icon_is_its_drawing():
    heart = icons.BUILTIN["heart"]
    red = icons.PALETTE["r"]
    assert heart[0:8] == (BLACK,) * 8
    assert heart[8:16] == (BLACK, red, red, BLACK, BLACK, red, red, BLACK)
    assert heart[48:56] == (BLACK,) * 3 + (red,) * 2 + (BLACK,) * 3


def test_the_arrows_point_their_way():
    def lit(name):
        return {(index % 8, index // 8) for index, colour in enumerate(icons.BUILTIN[name]) if colour != BLACK}

    assert lit("arrow_down") == {(x, 7 - y) for x, y in lit("arrow_up")}
    assert lit("arrow_right") == {(7 - x, y) for x, y in lit("arrow_left")}


def test_an_icon_from_64_colours_in_either_notation():
    value = [[255, 0, 0]] * 32 + ["#00ff00"] * 32
    assert icons.load_icon(value, "/nowhere") == (RED,) * 32 + (GREEN,) * 32


@pytest.mark.parametrize("value, message", [
    ([[0, 0, 0]] * 63, r"^an icon has 64 colours \(8 rows of 8\), got 63$"),
    ([[0, 0, 0]] * 10 + [[0, 0, 256]] + [[0, 0, 0]] * 53, r"^icon pixel 10 \(x 2, y 1\) must be .*256"),
    (["#12345"] + ["#000000"] * 63, r"^icon pixel 0 \(x 0, y 0\) must be "),
    (7, r"^an icon is a list of 64 colours or the path of an 8×8 PNG file, got int$"),
])
def test_a_wrong_list_of_colours_is_one_sentence(value, message):
    with pytest.raises(ValueError, match=message) as raised:
        icons.load_icon(value, "/nowhere")
    assert "\n" not in str(raised.value)


def save(image: Image.Image, path) -> str:
    image.save(path)
    return path.name


def test_an_rgb_png_relative_to_the_base_directory(tmp_path):
    image = Image.new("RGB", (8, 8), BLUE)
    image.putpixel((3, 1), RED)
    name = save(image, tmp_path / "alarm.png")
    picture = icons.load_icon(name, str(tmp_path))
    assert picture[1 * 8 + 3] == RED
    assert picture.count(BLUE) == 63


def test_an_rgba_png_is_composed_over_black(tmp_path):
    image = Image.new("RGBA", (8, 8), (255, 255, 255, 0))
    image.putpixel((0, 0), (255, 255, 255, 255))
    image.putpixel((1, 0), (200, 100, 50, 51))  # alpha 0.2
    picture = icons.load_icon(save(image, tmp_path / "a.png"), str(tmp_path))
    assert picture[0] == WHITE
    assert picture[1] == (40, 20, 10)
    assert picture[2:] == (BLACK,) * 62


def test_palette_and_greyscale_pngs(tmp_path):
    palette = Image.new("P", (8, 8), 0)
    palette.putpalette([0, 0, 0, 10, 200, 30])
    palette.putpixel((7, 7), 1)
    assert icons.load_icon(save(palette, tmp_path / "p.png"), str(tmp_path))[63] == (10, 200, 30)
    grey = Image.new("L", (8, 8), 128)
    assert icons.load_icon(save(grey, tmp_path / "l.png"), str(tmp_path)) == ((128, 128, 128),) * 64


def test_an_absolute_path_ignores_the_base_directory(tmp_path):
    path = tmp_path / "abs.png"
    Image.new("RGB", (8, 8), GREEN).save(path)
    assert icons.load_icon(str(path), "/elsewhere") == (GREEN,) * 64


@pytest.mark.parametrize("make, message", [
    (lambda path: Image.new("RGB", (16, 16)).save(path, format="PNG"), r"is 16×16 pixels; an icon is 8×8$"),
    (lambda path: Image.new("RGB", (8, 8)).save(path, format="GIF"), r"is not a PNG image$"),
    (lambda path: path.write_text("hello"), r"is not a PNG image$"),
    (lambda path: path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40), r"could not be read: "),
    (lambda path: None, r"does not exist$"),
])
def test_a_file_that_is_no_8_by_8_png_is_one_sentence_naming_it(tmp_path, make, message):
    path = tmp_path / "icon.png"
    make(path)
    with pytest.raises(ValueError, match=r"^icon file .*icon\.png " + message) as raised:
        icons.load_icon("icon.png", str(tmp_path))
    assert "\n" not in str(raised.value)


def test_a_png_cut_short_is_one_sentence(tmp_path):
    whole = tmp_path / "whole.png"
    Image.new("RGB", (8, 8), RED).save(whole)
    cut = tmp_path / "cut.png"
    cut.write_bytes(whole.read_bytes()[:40])
    with pytest.raises(ValueError, match=r"^icon file .*cut\.png could not be read: "):
        icons.load_icon("cut.png", str(tmp_path))


def test_a_directory_is_one_sentence(tmp_path):
    (tmp_path / "dir.png").mkdir()
    with pytest.raises(ValueError, match=r"^icon file .*dir\.png could not be read: "):
        icons.load_icon("dir.png", str(tmp_path))


