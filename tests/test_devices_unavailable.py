"""Drivers that cannot start (sense-hat off a Pi, sense-emu not installed) say why in one sentence."""

from __future__ import annotations

import glob
import sys

import pytest

from bridge.config.model import DeviceConfig
from bridge.devices import DeviceUnavailable, open_device

CONFIG = DeviceConfig(id="pi", driver="sense-hat")


def sense_hat_attached() -> bool:
    for name_file in glob.glob("/sys/class/graphics/fb*/name"):
        with open(name_file) as f:
            if f.read().strip() == "RPi-Sense FB":
                return True
    return False


def assert_one_clear_sentence(error: DeviceUnavailable, *mentions: str) -> None:
    text = str(error)
    assert "\n" not in text and "Traceback" not in text
    assert error.__suppress_context__  # no chained traceback behind it
    for mention in mentions + ("driver: sense-emu", "driver: memory"):
        assert mention in text, f"{mention!r} missing from: {text}"


@pytest.fixture
def fake_library(tmp_path, monkeypatch):
    """Put a stand-in `sense_hat` package first on sys.path, as a Pi without the board would have."""
    original = sys.modules.pop("sense_hat", None)
    monkeypatch.syspath_prepend(str(tmp_path))

    def install(source: str) -> None:
        package = tmp_path / "sense_hat"
        package.mkdir()
        (package / "__init__.py").write_text(source)

    yield install
    sys.modules.pop("sense_hat", None)  # the stand-in, if its import succeeded
    if original is not None:
        sys.modules["sense_hat"] = original


@pytest.mark.skipif(sense_hat_attached(), reason="a Sense HAT is attached; the off-Pi error cannot happen here")
def test_on_this_machine_opening_the_real_board_fails_with_one_sentence():
    with pytest.raises(DeviceUnavailable) as raised:
        open_device(CONFIG)
    assert_one_clear_sentence(raised.value, "driver sense-hat")


def test_library_not_installed(monkeypatch):
    monkeypatch.setitem(sys.modules, "sense_hat", None)  # makes `import sense_hat` fail as if absent
    with pytest.raises(DeviceUnavailable) as raised:
        open_device(CONFIG)
    assert_one_clear_sentence(raised.value, "sense_hat library", "pip install 'nats-sense-bridge[pi]'")


def test_rtimu_binding_missing(fake_library, monkeypatch):
    # What the PyPI wheel does in a plain venv: its first import line needs RTIMU.
    fake_library("import RTIMU\n")
    monkeypatch.setitem(sys.modules, "RTIMU", None)
    with pytest.raises(DeviceUnavailable) as raised:
        open_device(CONFIG)
    assert_one_clear_sentence(raised.value, "RTIMU", "RTIMULib", "'sense-hat' apt package", "--system-site-packages")


def test_framebuffer_missing(fake_library):
    # What sense_hat.SenseHat() raises when no framebuffer is named "RPi-Sense FB".
    fake_library(
        "class SenseHat:\n"
        "    def __init__(self):\n"
        "        raise OSError('Cannot detect RPi-Sense FB device')\n"
    )
    with pytest.raises(DeviceUnavailable) as raised:
        open_device(CONFIG)
    assert_one_clear_sentence(raised.value, '"RPi-Sense FB" framebuffer', "Cannot detect RPi-Sense FB device", "dtoverlay=rpi-sense")


def test_emulator_library_not_installed(monkeypatch):
    monkeypatch.setitem(sys.modules, "sense_emu", None)
    with pytest.raises(DeviceUnavailable) as raised:
        open_device(DeviceConfig(id="emu", driver="sense-emu"))
    text = str(raised.value)
    assert "\n" not in text and raised.value.__suppress_context__
    assert "sense_emu library" in text and "pip install 'nats-sense-bridge[emu]'" in text and "driver: memory" in text
