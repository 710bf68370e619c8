"""The simulated fleet the ha_discovery bench runs (`fleet_sim --homeassistant`): every bridge
announces its five entities to Home Assistant and answers HA's birth with its readings."""

from __future__ import annotations

from bridge.testing.fleet_sim import device_id, simulated_fleet
from bridge.testing.homeassistant import PlaysHomeAssistant
from bridge.testing.nats_server import NatsServer

WAIT = 30.0


def test_a_simulated_fleet_announces_every_bridge_to_home_assistant():
    with NatsServer(mqtt=True) as server:
        ha = PlaysHomeAssistant(server.mqtt_port).start()
        try:
            ha.subscribe(["sensors/#"])
            with simulated_fleet(3, [server.url], processes=1, homeassistant=True):
                configs = ha.wait_for(lambda _: len(ha.configs()) == 15 and ha.configs(), WAIT, "15 configs")
                ha.wait_for(lambda _: all(ha.on(f"sensors/{device_id(n)}/humidity") for n in range(3)),
                            WAIT, "a humidity reading of each bridge")
        finally:
            ha.stop()
    assert sorted({name.split("/")[2] for name in configs}) == [device_id(n) for n in range(3)]
    assert sorted(name.split("/")[1] for name in configs if name.split("/")[2] == device_id(0)) == [
        "button", "light", "sensor", "sensor", "text"]
