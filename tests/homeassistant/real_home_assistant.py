"""The bridge and a real Home Assistant (2024.3.3, in a venv of its own: `make test-ha`).

Slow (HA starts in tens of seconds) and outside `make test`: pytest collects this file only when
it is named, and the test needs `HA_PYTHON`, the Python of a venv with `homeassistant==2024.3.3`.
HA runs with a pre-written MQTT config entry pointing at nats-server's MQTT listener; an
automation reports the discovered temperature sensor's state through `system_log.write`, another
sets the discovered text entity when a message reaches `bridgetest/go`.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet.threads import deferToThread

from bridge.config.model import (
    BridgeConfig,
    DeviceConfig,
    HomeAssistantConfig,
    NatsConfig,
    PublicationConfig,
    SubscriptionConfig,
)
from bridge.runtime.bridge import Bridge
from bridge.testing.homeassistant import PlaysHomeAssistant
from bridge.testing.nats_server import NatsServer, free_port
from tests.harness.reactor import running_reactor, wait_until, within

HA_PYTHON = os.environ.get("HA_PYTHON")
TEMPERATURE = 23.5
MESSAGE = "Hello from Home Assistant"
STARTUP = 240.0  # HA on 2 shared cores starts in tens of seconds; this only bounds a broken run

pytestmark = [pytest.mark.skipif(not HA_PYTHON, reason="needs HA_PYTHON (make test-ha installs Home Assistant)"),
              pytest.mark.timeout(600)]

CONFIGURATION = """\
homeassistant:
  name: Bridge test
  latitude: 0
  longitude: 0
  elevation: 0
  unit_system: metric
  time_zone: UTC
http:
  server_host: 127.0.0.1
  server_port: {http_port}
system_log:
automation:
  - id: report_temperature
    trigger:
      - platform: state
        entity_id: sensor.real_pi_temperature
    action:
      - service: system_log.write
        data:
          message: "bridge-test temperature={{{{ states('sensor.real_pi_temperature') }}}}"
          level: warning
  - id: scroll_a_message
    trigger:
      - platform: mqtt
        topic: bridgetest/go
    action:
      - service: text.set_value
        target:
          entity_id: text.real_pi_message
        data:
          value: "{message}"
"""


def config_entries(mqtt_port: int) -> dict:
    entry = {"entry_id": "bridgetestmqtt", "version": 1, "minor_version": 1, "domain": "mqtt", "title": "nats-server",
             "data": {"broker": "127.0.0.1", "port": mqtt_port, "discovery": True}, "options": {},
             "pref_disable_new_entities": False, "pref_disable_polling": False, "source": "user",
             "unique_id": None, "disabled_by": None}
    return {"version": 1, "minor_version": 1, "key": "core.config_entries", "data": {"entries": [entry]}}


def bridge_config(url: str) -> BridgeConfig:
    return BridgeConfig(
        device=DeviceConfig(id="real-pi", driver="memory"),
        nats=NatsConfig(servers=(url,), randomize=False),
        subscriptions=(SubscriptionConfig(subject="pi.real-pi.message", action="show_message"),),
        publications=(PublicationConfig(subject="sensors.real-pi.temperature", sensor="temperature", interval=2.0),),
        homeassistant=HomeAssistantConfig(name="Real Pi"),
    )


def wait_for_log(log: Path, pattern: str, timeout: float) -> re.Match:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        match = re.search(pattern, log.read_text(errors="replace")) if log.exists() else None
        if match:
            return match
        time.sleep(0.5)
    tail = log.read_text(errors="replace")[-4000:] if log.exists() else "(no log)"
    raise AssertionError(f"Home Assistant never logged {pattern!r} within {timeout}s:\n{tail}")


@pytest.fixture
def mqtt_server():
    with NatsServer(mqtt=True) as server:
        yield server


@pytest.fixture
def home_assistant(mqtt_server, tmp_path):
    folder = tmp_path / "ha"
    (folder / ".storage").mkdir(parents=True)
    (folder / "configuration.yaml").write_text(CONFIGURATION.format(http_port=free_port(), message=MESSAGE))
    (folder / ".storage" / "core.config_entries").write_text(json.dumps(config_entries(mqtt_server.mqtt_port)))
    process = subprocess.Popen([HA_PYTHON, "-m", "homeassistant", "-c", str(folder), "--skip-pip"],
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    try:
        yield folder / "home-assistant.log"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest_twisted.ensureDeferred
async def test_home_assistant_discovers_the_bridge_shows_its_reading_and_scrolls_its_text(mqtt_server,
                                                                                           home_assistant):
    bridge = Bridge(bridge_config(mqtt_server.url), running_reactor())
    await within(bridge.start(), 30.0, "bridge.start()")
    bridge.device.set_sensor("temperature", TEMPERATURE)
    try:
        # HA's MQTT integration connects, sends its birth message, the bridge announces itself and
        # its reading; the automation on the discovered sensor logs the state HA took.
        reported = await deferToThread(wait_for_log, home_assistant, r"bridge-test temperature=([0-9.]+)", STARTUP)
        assert float(reported.group(1)) == TEMPERATURE
        # An automation sets the discovered text entity: HA publishes the text on the bridge's subject.
        outside = PlaysHomeAssistant(mqtt_server.mqtt_port, prefix="bridgetest-observer").start()
        try:
            await deferToThread(outside.publish, "bridgetest/go", "now")
        finally:
            outside.stop()
        await wait_until(lambda: MESSAGE in bridge.device.messages, 60.0, "Home Assistant's text scrolled")
    finally:
        await bridge.stop()
