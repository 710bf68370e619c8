"""The `sense-hat` driver: the real board through the `sense_hat` library, imported lazily.

Off a Pi every failure here becomes one DeviceUnavailable sentence that says what was looked for
and that the sense-emu or memory driver runs without hardware.
"""

from __future__ import annotations

from bridge.devices.base import DeviceUnavailable
from bridge.devices.hat import SenseHatDevice

WITHOUT_HARDWARE = "use driver: sense-emu or driver: memory to run without a Sense HAT"


def open_sense_hat() -> SenseHatDevice:
    try:
        import sense_hat
    except ModuleNotFoundError as error:
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
        raise DeviceUnavailable(f"driver sense-hat could not import sense_hat ({error}); {WITHOUT_HARDWARE}") from None
    try:
        hat = sense_hat.SenseHat()
    except OSError as error:
        raise DeviceUnavailable(
            f'driver sense-hat could not open the board ({error}): it needs the "RPi-Sense FB" '
            "framebuffer (dtoverlay=rpi-sense), I2C enabled and the user in the video, input and i2c "
            f"groups; {WITHOUT_HARDWARE}"
        ) from None
    device = SenseHatDevice(hat, "sense-hat")
    return device
