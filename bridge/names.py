"""The names a config may use for drivers, actions, sensors and overflow policies.

A leaf module (it imports nothing from the project): `bridge.config.model` and `bridge.actions` both
need these names. `bridge.config` imports `bridge.actions` for its argument checks, never the
other way round.
"""

DRIVERS = ("sense-hat", "sense-emu", "memory")
ACTIONS = (
    "show_message",
    "show_letter",
    "set_pixel",
    "set_pixels",
    "clear",
    "set_rotation",
    "flip_h",
    "flip_v",
    "low_light",
    "get_pixels",
    "read_sensors",
)
POLLED_SENSORS = (
    "temperature",
    "humidity",
    "pressure",
    "orientation",
    "accelerometer",
    "gyroscope",
    "compass",
    "cpu_temperature",
    "temperature_from_humidity",
    "temperature_from_pressure",
)
# Readings that are a mapping of components rather than one number.
VECTOR_SENSORS = ("orientation", "accelerometer", "gyroscope", "compass")
SENSORS = POLLED_SENSORS + ("joystick",)
OVERFLOW_POLICIES = ("queue", "latest")
