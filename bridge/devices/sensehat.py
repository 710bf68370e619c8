"""The `sense-hat` driver: the real board through the `sense_hat` library, imported lazily.

Off a Pi every failure here becomes one DeviceUnavailable sentence that says what was looked for
and that the sense-emu or memory driver runs without hardware.
"""

from __future__ import annotations

import os
import pwd

from bridge.devices.base import DeviceUnavailable
from bridge.devices.hat import SenseHatDevice

WITHOUT_HARDWARE = "use driver: sense-emu or driver: memory to run without a Sense HAT"
# SenseHat() creates this under the home directory of the passwd entry (not $HOME) and copies
# /etc/RTIMULib.ini into it.
SETTINGS_DIRECTORY = os.path.join(".config", "sense_hat")


def _root_cause(error: BaseException) -> str:
    """The innermost error's last line: numpy wraps "libopenblas.so.0: cannot open ..." in a page of advice."""
    while error.__cause__ is not None or error.__context__ is not None:
        error = error.__cause__ or error.__context__
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[-1] if lines else type(error).__name__


def _settings_directory() -> str | None:
    try:
        return os.path.join(pwd.getpwuid(os.getuid()).pw_dir, SETTINGS_DIRECTORY)
    except KeyError:  # no passwd entry for this uid
        return None


def _is_about(error: OSError, directory: str) -> bool:
    """Whether the error names the directory, a path inside it, or a parent that makedirs could not create."""
    for name in (error.filename, error.filename2):
        if not isinstance(name, (str, bytes)):
            continue
        path = os.path.abspath(os.fsdecode(name))
        if os.path.commonpath([path, directory]) in (path, directory):
            return True
    return False


def open_sense_hat() -> SenseHatDevice:
    try:
        import sense_hat
    except ImportError as error:
        if error.name == "RTIMU":
            raise DeviceUnavailable(
                "driver sense-hat could not import RTIMU (RTIMULib's Python binding, which sense_hat "
                "needs for its sensors): on Raspberry Pi OS install the 'sense-hat' apt package and "
                f"create the venv with --system-site-packages, or {WITHOUT_HARDWARE}"
            ) from None
        if error.name == "sense_hat":
            raise DeviceUnavailable(
                "driver sense-hat needs the sense_hat library, which is not installed "
                f"(pip install 'nats-sense-bridge[pi]' on the Pi), or {WITHOUT_HARDWARE}"
            ) from None
        raise DeviceUnavailable(
            f"driver sense-hat could not import sense_hat ({_root_cause(error)}): a library it needs "
            "(numpy, Pillow) or one of their system libraries is missing or broken; on Raspberry Pi OS "
            "the 'sense-hat' apt package brings them all (numpy from piwheels also needs the libopenblas0 "
            f"apt package), or {WITHOUT_HARDWARE}"
        ) from None
    try:
        hat = sense_hat.SenseHat()
    except OSError as error:
        settings = _settings_directory()
        if settings is not None and _is_about(error, settings):
            raise DeviceUnavailable(
                f"driver sense-hat could not write its sensor settings to {settings} ({error}): sense_hat "
                "keeps RTIMULib.ini under the home directory in the passwd entry of the user it runs as "
                "($HOME does not count), so that user needs a writable home, e.g. a system user with "
                "--home-dir /var/lib/bridge and StateDirectory=bridge in its systemd unit; "
                f"{WITHOUT_HARDWARE}"
            ) from None
        raise DeviceUnavailable(
            f'driver sense-hat could not open the board ({error}): it needs the "RPi-Sense FB" '
            "framebuffer (dtoverlay=rpi-sense), I2C enabled and the user in the video, input and i2c "
            f"groups; {WITHOUT_HARDWARE}"
        ) from None
    except KeyError:
        if _settings_directory() is not None:
            raise
        raise DeviceUnavailable(
            f"driver sense-hat needs a home directory for its sensor settings, but the user it runs as "
            f"(uid {os.getuid()}) has no passwd entry; run it as a user with a writable home, or "
            f"{WITHOUT_HARDWARE}"
        ) from None
    return SenseHatDevice(hat, "sense-hat")
