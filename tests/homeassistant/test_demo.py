"""`make run` (bridge demo) serves Home Assistant too: its banner names the MQTT port, and HA's
MQTT integration pointed there discovers the demo's device."""

from __future__ import annotations

import signal

from bridge.testing.homeassistant import PlaysHomeAssistant
from tests.harness.demo import WAIT, DemoProcess


def test_the_demo_prints_home_assistants_settings_and_home_assistant_finds_the_device(tmp_path):
    demo = DemoProcess(["--web", "127.0.0.1:0"], tmp_path / "demo.log")
    ha = None
    try:
        listener = demo.wait_for_line(r"MQTT:\s+mqtt://127\.0\.0\.1:(\d+)").group(1)
        port = int(demo.wait_for_line(r"^\s+port:\s+(\d+)$").group(1))
        assert str(port) == listener
        demo.wait_for_line("Ctrl-C stops")
        ha = PlaysHomeAssistant(port).start()
        sent = ha.birth()
        configs = ha.wait_for(lambda _: ha.configs(since=sent), WAIT, "the demo's discovery")
        document = next(iter(configs.values()))
        assert document["device"]["name"] == "Demo Sense HAT"
        assert document["device"]["configuration_url"].startswith("http://127.0.0.1:")
        demo.process.send_signal(signal.SIGINT)
        assert demo.process.wait(WAIT) == 0, demo.logs()
    finally:
        if ha is not None:
            ha.stop()
        demo.kill()
