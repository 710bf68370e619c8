"""Drivers that cannot start (sense-hat off a Pi, sense-emu not installed) say why in one sentence."""

from __future__ import annotations

import glob
import os
import pwd
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
    assert_one_clear_sentence(raised.value, 'no framebuffer named "RPi-Sense FB"', "dtoverlay=rpi-sense")


def test_a_broken_dependency_of_the_library(fake_library):
    # What numpy does when its wheel's libopenblas is missing: a page of advice around the real error.
    fake_library(
        "try:\n"
        "    raise ImportError('libopenblas.so.0: cannot open shared object file: No such file or directory')\n"
        "except ImportError as error:\n"
        "    raise ImportError('\\n\\nIMPORTANT: PLEASE READ THIS FOR ADVICE\\n\\nOriginal error was: ' + str(error))\n"
    )
    with pytest.raises(DeviceUnavailable) as raised:
        open_device(CONFIG)
    assert_one_clear_sentence(raised.value, "could not import sense_hat (libopenblas.so.0: cannot open shared object file", "libopenblas0")


# What SenseHat() does before it touches RTIMU: the settings directory under the passwd home.
MAKES_SETTINGS_DIRECTORY = (
    "import os, pwd\n"
    "class SenseHat:\n"
    "    def __init__(self):\n"
    "        home = pwd.getpwuid(os.getuid())[5]\n"
    "        os.makedirs(os.path.join(home, '.config/sense_hat'))\n"
)


def passwd_home(monkeypatch, home) -> None:
    entry = pwd.getpwuid(os.getuid())
    monkeypatch.setattr(pwd, "getpwuid", lambda uid: pwd.struct_passwd((*entry[:5], str(home), entry[6])))


def test_a_home_that_cannot_hold_the_settings(fake_library, monkeypatch, tmp_path):
    # A service user made with --no-create-home: its home does not exist and cannot be created
    # (here because its parent is a file, which fails the same way for root).
    (tmp_path / "not-a-directory").write_text("")
    home = tmp_path / "not-a-directory" / "bridge"
    passwd_home(monkeypatch, home)
    fake_library(MAKES_SETTINGS_DIRECTORY)
    with pytest.raises(DeviceUnavailable) as raised:
        open_device(CONFIG)
    assert_one_clear_sentence(raised.value, f"settings to {home}/.config/sense_hat", "writable home", "StateDirectory")
    assert "framebuffer" not in str(raised.value)


def test_settings_file_not_writable(fake_library, monkeypatch, tmp_path):
    passwd_home(monkeypatch, tmp_path)
    fake_library(
        "import errno, os\n"
        "class SenseHat:\n"
        "    def __init__(self):\n"
        f"        raise PermissionError(errno.EACCES, 'Permission denied', '{tmp_path}/.config/sense_hat/RTIMULib.ini')\n"
    )
    with pytest.raises(DeviceUnavailable) as raised:
        open_device(CONFIG)
    assert_one_clear_sentence(raised.value, "RTIMULib.ini", "writable home")


def test_a_device_file_refused_is_not_taken_for_the_settings(fake_library):
    # The joystick's input device without the input group: the sentence names that group.
    fake_library(
        "import errno\n"
        "class SenseHat:\n"
        "    def __init__(self):\n"
        "        raise PermissionError(errno.EACCES, 'Permission denied', '/dev/input/event0')\n"
    )
    with pytest.raises(DeviceUnavailable) as raised:
        open_device(CONFIG)
    assert_one_clear_sentence(raised.value, "joystick /dev/input/event0: permission denied", "'input' group")
    assert "settings" not in str(raised.value)


def test_a_user_without_passwd_entry(fake_library, monkeypatch):
    # e.g. a container run with --user 1234: sense_hat's getpwuid() fails before anything else.
    def no_entry(uid):
        raise KeyError(f"getpwuid(): uid not found: {uid}")

    monkeypatch.setattr(pwd, "getpwuid", no_entry)
    fake_library(MAKES_SETTINGS_DIRECTORY)
    with pytest.raises(DeviceUnavailable) as raised:
        open_device(CONFIG)
    assert_one_clear_sentence(raised.value, "no passwd entry", f"uid {os.getuid()}")


def test_emulator_library_not_installed(monkeypatch):
    monkeypatch.setitem(sys.modules, "sense_emu", None)
    with pytest.raises(DeviceUnavailable) as raised:
        open_device(DeviceConfig(id="emu", driver="sense-emu"))
    text = str(raised.value)
    assert "\n" not in text and raised.value.__suppress_context__
    assert "sense_emu library" in text and "pip install 'nats-sense-bridge[emu]'" in text and "driver: memory" in text
