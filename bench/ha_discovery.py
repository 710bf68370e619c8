"""Home Assistant's birth message to a whole fleet announced: 50 simulated bridges
(bridge/testing/fleet_sim.py `--homeassistant`, 2 helper processes of 25; each bridge two sensors,
a text, a button and a light) on one nats-server with its MQTT listener, and paho-mqtt playing HA
(bridge/testing/homeassistant.py).

HA has seen the fleet before and is subscribed to every state and status topic, as after a
restart it is once set up again. Each round sends the birth message (`homeassistant/status` =
`online`) and times, from the send, until HA has every entity's config again, a reading on each
sensor's state topic and every bridge's status, all received after the birth. The rounds are
`MIN_BURST_INTERVAL` apart, so no bridge's burst limit holds one back. The figure is the median of
`ROUNDS`; `slowest` is the worst round. No baseline.
"""

from __future__ import annotations

import statistics
import time

COUNT = 50
PROCESSES = 2
ROUNDS = 3
WAIT = 60.0  # only bounds a broken run


def run() -> dict:
    from bridge import __version__
    from bridge.homeassistant.announcer import MIN_BURST_INTERVAL
    from bridge.homeassistant.discovery import discovery, status_subject, topic
    from bridge.testing.fleet_sim import device_id, sim_configs, simulated_fleet
    from bridge.testing.homeassistant import PlaysHomeAssistant
    from bridge.testing.nats_server import NatsServer

    with NatsServer(mqtt=True) as server:
        configs = sim_configs([device_id(number) for number in range(COUNT)], [server.url], homeassistant=True)
        documents = {topic(subject): document for config in configs
                     for subject, document in discovery(config, __version__).items()}
        sensor_topics = {document["state_topic"] for name, document in documents.items() if "/sensor/" in name}
        status_topics = {topic(status_subject(config)) for config in configs}
        ha = PlaysHomeAssistant(server.mqtt_port).start()
        try:
            ha.subscribe(["sensors/#", "bridge/+/status"])
            with simulated_fleet(COUNT, [server.url], processes=PROCESSES, homeassistant=True):
                ha.wait_for(lambda _: ha.configs().keys() >= documents.keys(), WAIT, "the fleet's first announcement")
                seconds = []
                for _ in range(ROUNDS):
                    time.sleep(MIN_BURST_INTERVAL)
                    sent = ha.birth()
                    done = ha.wait_for(lambda received: _all_announced(received, sent, documents.keys(),
                                                                       sensor_topics | status_topics),
                                       WAIT, "every entity announced with a state after the birth")
                    seconds.append(done - sent)
        finally:
            ha.stop()
    return {"ours": round(statistics.median(seconds), 3), "baseline": None, "unit": "s",
            "bridges": COUNT, "entities": len(documents), "slowest": round(max(seconds), 3),
            "rounds": [round(value, 3) for value in seconds], "sim_processes": PROCESSES}


def _all_announced(received, since: float, configs, states) -> float | None:
    """When the last of `configs` and `states` arrived after `since`; None while one is missing."""
    first: dict[str, float] = {}
    for message in received:
        if message.at >= since and message.payload:
            first.setdefault(message.topic, message.at)
    if configs <= first.keys() and states <= first.keys():
        return max(first[name] for name in (*configs, *states))
    return None


if __name__ == "__main__":
    import json

    print(json.dumps(run()), flush=True)
