"""The `sense-hat` driver: the real board through the `sense_hat` library, imported lazily.

Every failure to start — the library or RTIMU missing, no "RPi-Sense FB" framebuffer, no joystick,
I2C off, a sensor that does not answer, a device file or the settings directory refused — becomes
one DeviceUnavailable sentence that names what is missing, how to fix it, and that the sense-emu or
memory driver runs without hardware. tests/devices/test_sensehat_fake.py runs the real library on a
faked board to hold each of them to that.
"""

from __future__ import annotations

import errno
import os
import pwd

from bridge.devices.base import DeviceUnavailable
from bridge.devices.hat import SenseHatDevice

WITHOUT_HARDWARE = "use driver: sense-emu or driver: memory to run without a Sense HAT"
# SenseHat() creates this under the home directory of the passwd entry (not $HOME) and copies
# /etc/RTIMULib.ini into it.
SETTINGS_DIRECTORY = os.path.join(".config", "sense_hat")
FRAMEBUFFER_NAME = "RPi-Sense FB"
JOYSTICK_NAME = "Raspberry Pi Sense HAT Joystick"


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


def _user() -> str:
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return f"uid {os.getuid()}"


# The device files sense_hat opens, what they are and the group that may open them.
_DEVICE_FILES = (("/dev/fb", "framebuffer", "video"), ("/dev/input/", "joystick", "input"), ("/dev/i2c", "I2C bus", "i2c"))


def _device_file_sentence(error: OSError, path: str) -> str | None:
    for prefix, what, group in _DEVICE_FILES:
        if path.startswith(prefix):
            break
    else:
        return None
    if error.errno in (errno.EACCES, errno.EPERM):
        user = _user()
        return (
            f"driver sense-hat cannot open the Sense HAT {what} {path}: permission denied — add the user it "
            f"runs as to the '{group}' group (sudo usermod -aG {group} {user}) and restart it, or "
            f"{WITHOUT_HARDWARE}"
        )
    return (
        f"driver sense-hat cannot open the Sense HAT {what} {path}: {error.strerror or error}; the rpi-sense "
        f"overlay provides it (dtoverlay=rpi-sense if the HAT's EEPROM is not read), or {WITHOUT_HARDWARE}"
    )


def _settings_sentence(error: OSError, settings: str) -> str:
    return (
        f"driver sense-hat could not write its sensor settings to {settings} ({error}): sense_hat "
        "keeps RTIMULib.ini under the home directory in the passwd entry of the user it runs as "
        "($HOME does not count), so that user needs a writable home, e.g. a system user with "
        "--home-dir /var/lib/bridge and StateDirectory=bridge in its systemd unit; "
        f"{WITHOUT_HARDWARE}"
    )


_SENSORS = {"IMU Init Failed": "IMU", "Humidity Init Failed": "humidity", "Pressure Init Failed": "pressure"}


def _start_up_sentence(error: OSError | RuntimeError) -> str:
    """One sentence for what sense_hat raised while the board was being opened."""
    text = str(error)
    if isinstance(error, OSError):
        settings = _settings_directory()
        if settings is not None and _is_about(error, settings):
            return _settings_sentence(error, settings)
        if isinstance(error.filename, str):
            sentence = _device_file_sentence(error, error.filename)
            if sentence is not None:
                return sentence
        if text.startswith("Cannot detect"):  # sense_hat's own words: no framebuffer with that name
            return (
                f'driver sense-hat found no framebuffer named "{FRAMEBUFFER_NAME}" (in /sys/class/graphics/'
                "fb*/name, with its /dev/fb* node): the HAT is not attached or not recognised; add "
                "dtoverlay=rpi-sense to /boot/firmware/config.txt if its EEPROM is not read and reboot, or "
                f"{WITHOUT_HARDWARE}"
            )
        if text.startswith("Cannot access I2C"):
            return (
                "driver sense-hat found no /dev/i2c-* device, so I2C is off: enable it with raspi-config "
                "(Interface Options, I2C) or dtparam=i2c_arm=on in /boot/firmware/config.txt and reboot, or "
                f"{WITHOUT_HARDWARE}"
            )
        if text in _SENSORS:
            return (
                f"driver sense-hat could not start the Sense HAT's {_SENSORS[text]} sensor over I2C ({text}): "
                "I2C must be enabled, the user it runs as in the 'i2c' group (RTIMULib opens /dev/i2c-1) "
                f"and the HAT seated firmly, or {WITHOUT_HARDWARE}"
            )
    elif "joystick" in text:  # sense_hat.stick: "unable to locate SenseHAT joystick device"
        return (
            f'driver sense-hat found the "{FRAMEBUFFER_NAME}" framebuffer but no joystick: no input device '
            f'named "{JOYSTICK_NAME}" in /sys/class/input/event*/device/name; the rpi-sense overlay brings '
            "both (dtoverlay=rpi-sense), so see dmesg for why its joystick driver did not load, or "
            f"{WITHOUT_HARDWARE}"
        )
    return (
        f'driver sense-hat could not open the board ({text}): it needs the "{FRAMEBUFFER_NAME}" '
        "framebuffer (dtoverlay=rpi-sense), I2C enabled and the user in the video, input and i2c "
        f"groups; {WITHOUT_HARDWARE}"
    )


def _import_library():
    try:
        import sense_hat  # optional: only a Pi with the board has it and the libraries it needs
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
    return sense_hat


def _start(hat) -> SenseHatDevice:
    """What SenseHat() leaves for later, done now so that its failures are start-up errors."""
    # SenseHat() only checks that the framebuffer exists; this is its first open. Read and write,
    # as the display needs both.
    os.close(os.open(hat._fb_device, os.O_RDWR))
    device = SenseHatDevice(hat, "sense-hat")
    # The library starts each sensor on its first reading; over I2C, which may be off or refused.
    hat.get_humidity()
    hat.get_pressure()
    hat.set_imu_config(True, True, True)  # what its IMU start-up sets anyway
    return device


def open_sense_hat() -> SenseHatDevice:
    sense_hat = _import_library()
    try:
        hat = sense_hat.SenseHat()
    except (OSError, RuntimeError) as error:
        raise DeviceUnavailable(_start_up_sentence(error)) from None
    except KeyError:
        if _settings_directory() is not None:
            raise
        raise DeviceUnavailable(
            f"driver sense-hat needs a home directory for its sensor settings, but the user it runs as "
            f"(uid {os.getuid()}) has no passwd entry; run it as a user with a writable home, or "
            f"{WITHOUT_HARDWARE}"
        ) from None
    try:
        return _start(hat)
    except BaseException as error:
        hat.stick.close()
        if isinstance(error, OSError):
            raise DeviceUnavailable(_start_up_sentence(error)) from None
        raise
