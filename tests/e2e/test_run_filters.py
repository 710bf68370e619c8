"""`bridge run` with the memory driver and filter chains: the readings arrive filtered, with `raw` beside them."""

from __future__ import annotations

import signal
import time

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


def reload_with(process: BridgeProcess, url: str, publications: str, reloads: int) -> None:
    """Rewrite the config, SIGHUP, and wait until the bridge has logged its `reloads`-th reload."""
    process.rewrite_config(memory_config(url, process.device_id, publications=publications))
    process.signal(signal.SIGHUP)
    deadline = time.monotonic() + 15
    while sum("reloaded" in str(record.get("message")) for record in process.log_records()) < reloads:
        assert time.monotonic() < deadline, f"no reload:\n{process.logs()}"
        time.sleep(0.1)


def test_a_reload_keeps_an_unchanged_chains_state_and_starts_a_changed_one_fresh(module_nats_server, nats_py, tmp_path):
    # Humidity never moves by 1000: with its state kept, delta lets nothing through after the first reading.
    chain = "  - {{subject: s.kept.humidity, sensor: humidity, interval: {interval}, filters: [{filters}]}}\n"
    readings = nats_py.subscribe("s.kept.humidity")
    url = module_nats_server.url
    process = BridgeProcess(memory_config(url, "kept", publications=chain.format(interval="100ms", filters="delta: 1000")),
                            tmp_path, "kept").start()
    try:
        process.wait_ready(nats_py)
        assert readings.next_json()["value"] < 100
        reload_with(process, url, chain.format(interval="150ms", filters="delta: 1000"), reloads=1)
        time.sleep(0.6)  # polls enough for a fresh delta to have let a reading through
        reload_with(process, url, chain.format(interval="150ms", filters="delta: 1000, offset: 1000"), reloads=2)
        assert readings.next_json()["value"] > 1000  # the first reading since the first one: the new chain's
    finally:
        assert process.stop() == 0
