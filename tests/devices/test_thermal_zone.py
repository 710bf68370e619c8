"""`cpu_temperature` from a thermal zone file: millidegrees to °C, NaN (a failed read) when unreadable."""

from __future__ import annotations

import math

from bridge.devices.base import read_thermal_zone


def test_millidegrees_become_degrees_with_two_decimals(tmp_path):
    zone = tmp_path / "temp"
    zone.write_text("51234\n")
    assert read_thermal_zone(str(zone)) == 51.23


def test_a_missing_or_garbled_zone_reads_as_nan(tmp_path):
    garbled = tmp_path / "temp"
    garbled.write_text("hot\n")
    assert math.isnan(read_thermal_zone(str(tmp_path / "missing")))
    assert math.isnan(read_thermal_zone(str(garbled)))
