"""`bridge run` with the memory driver and filter chains: the readings arrive filtered, with `raw` beside them."""

from __future__ import annotations

import pytest

from bridge.testing.bridgeproc import BridgeProcess, memory_config

PUBLICATIONS = """\
  - subject: s.filters.humidity
    sensor: humidity
    interval: 100ms
    filters: [offset: 100, multiply: 2, round: 1]
  - subject: s.filters.temperature
    sensor: temperature
    interval: 100ms
    compensate: cpu
"""


def test_a_filtered_and_a_compensated_publication_carry_raw_and_the_true_value(module_nats_server, nats_py, tmp_path):
    humidity = nats_py.subscribe("s.filters.humidity")
    temperature = nats_py.subscribe("s.filters.temperature")
    process = BridgeProcess(memory_config(module_nats_server.url, "filters", publications=PUBLICATIONS), tmp_path,
                            "filters").start()
    try:
        process.wait_ready(nats_py)
        humidities = [humidity.next_json() for _ in range(3)]
        temperatures = [temperature.next_json() for _ in range(3)]
    finally:
        assert process.stop() == 0
    for reading in humidities:
        assert 30 < reading["raw"] < 60
        assert reading["value"] == pytest.approx(round((reading["raw"] + 100) * 2, 1))
        assert reading["unit"] == "%RH"
    for reading in temperatures:
        # The memory HAT reads about 28.6 °C over a 40 °C CPU: corrected, about the room's 21 °C.
        assert 26 < reading["raw"] < 31
        assert 18 < reading["value"] < 24
        assert reading["sensor"] == "temperature" and reading["unit"] == "°C"
