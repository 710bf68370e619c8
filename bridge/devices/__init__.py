"""Device drivers behind one interface (`Device`), and `open_device` to pick one from the config.

Driver modules are imported only when chosen, so the hardware and emulator libraries stay optional.
"""

from __future__ import annotations

from bridge.config.model import DeviceConfig
from bridge.devices.base import SENSOR_UNITS, Device, DeviceUnavailable

__all__ = ["Device", "DeviceUnavailable", "SENSOR_UNITS", "open_device"]


def open_device(config: DeviceConfig) -> Device:
    """Open the configured driver (blocking: touches files and I2C), rotated and dimmed as configured."""
    if config.driver == "memory":
        from bridge.devices.memory import MemoryDevice

        return MemoryDevice(rotation=config.rotation, low_light=config.low_light)
    if config.driver == "sense-emu":
        from bridge.devices.emulator import open_emulator

        device = open_emulator()
    elif config.driver == "sense-hat":
        from bridge.devices.sensehat import open_sense_hat

        device = open_sense_hat()
    else:
        raise DeviceUnavailable(f"unknown driver {config.driver!r}; choose sense-hat, sense-emu or memory")
    try:
        device.set_rotation(config.rotation)
        device.set_low_light(config.low_light)
    except BaseException:
        device.close()
        raise
    return device
