"""`bridge demo`, what `make run` runs: a local nats-server, the bridge and its LED web view.

Everything runs on this machine: the demo starts its own nats-server on a free loopback port (a
real server process with JetStream on, its store in a temporary folder, and its MQTT listener on
another free loopback port for Home Assistant; owned by the demo, stopped and removed with it),
points the config at it, and drives
the emulated HAT (sense-emu, headless) or, without sense-emu, the in-memory device. A deployed
bridge never does this; it connects to the user's servers.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shlex
import shutil
import signal
import sys
from pathlib import Path

from twisted.application.service import Service

from bridge.cli.configs import with_config
from bridge.cli.exit import ExitStatus
from bridge.cli.logs import start_logging
from bridge.cli.run import exit_status
from bridge.config import load_config
from bridge.config.model import BridgeConfig
from bridge.config.units import parse_listen
from bridge.nats.subjects import is_literal
from bridge.runtime.bridge import Bridge
from bridge.runtime.process import WebViewService, bridge_process, run_process
from bridge.testing.nats_server import NatsServer, ServerNotFound

DEFAULT_CONFIG = str(Path(__file__).with_name("demo.yml"))  # shipped in the package
DEFAULT_WEB = "127.0.0.1:8080"

# A stored config for the printed `bridge deploy` example (written into the server's temporary folder).
DEPLOY_EXAMPLE = """\
# A stored config: what `bridge deploy` puts in the key-value bucket for every Pi whose
# bootstrap file names the key (fleet: {key: demo}). The demo's own bridge runs from a file.
version: 1
subscriptions:
  - subject: pi.${device.id}.led.text
    action: show_message
"""

# (action, what the example does, options, text) for the `bridge send` commands printed at start.
EXAMPLES = (
    ("show_message", "show a message", [], ["hello world"]),
    ("set_pixel", "set a pixel", ["--json"], [json.dumps({"x": 3, "y": 4, "color": [255, 0, 0]})]),
    ("read_sensors", "read the sensors", ["--request"], []),
)


def command(args: argparse.Namespace) -> int:
    config = DEFAULT_CONFIG if args.config is None else args.config
    return with_config("demo", (), lambda: run_demo(config, web=args.web))


def run_demo(config_path: str = DEFAULT_CONFIG, web: str = DEFAULT_WEB, reactor=None) -> int:
    """Run until SIGINT, SIGTERM or SIGHUP; exit status 0, 1 (bad config, no server, device failed) or 2 (usage)."""
    try:
        web_host, web_port = parse_listen(web)
    except ValueError as error:
        print(f"bridge demo: --web: {error}", file=sys.stderr)
        return ExitStatus.USAGE

    # picks free ports now, so the config can name its URL before it starts; JetStream stores in
    # the server's own temporary folder, which cleanup() removes
    server = NatsServer(jetstream=True, mqtt=True)
    try:
        return _run(config_path, server, web_host, web_port, reactor)
    finally:
        server.cleanup()  # also after Ctrl-C and SIGTERM: reactor.run() has returned by then


def _run(config_path: str, server, web_host: str, web_port: int, reactor) -> int:
    overrides = [f"nats.servers={server.url}"]
    if importlib.util.find_spec("sense_emu") is None:
        overrides.append("device.driver=memory")
    config = load_config(config_path, overrides)  # a ConfigError here is the CLI's to report
    try:
        server.start()
    except (ServerNotFound, RuntimeError) as error:
        print(f"bridge demo: cannot start the local nats-server: {error}", file=sys.stderr)
        return ExitStatus.FAILED
    return _serve(config, server, web_host, web_port, reactor)


def _serve(config: BridgeConfig, server, web_host: str, web_port: int, reactor) -> int:
    if reactor is None:
        from twisted.internet import reactor

    start_logging("text")
    # A closed terminal or a dropped SSH session sends SIGHUP, which would kill the demo before it
    # stops its nats-server and removes its folder: stop as on Ctrl-C instead.
    signal.signal(signal.SIGHUP, lambda *_: reactor.callFromThread(reactor.stop))
    bridge = Bridge(config, reactor)
    process = bridge_process(bridge, reactor, web_address=(web_host, web_port), any_free_web_port=True)
    Instructions(config, server, process.getServiceNamed(WebViewService.name)).setServiceParent(process)
    run_process(process, reactor)
    return exit_status(process)


class Instructions(Service):
    """Prints where to look and what to paste; added last, so it starts once everything runs."""

    name = "instructions"

    def __init__(self, config: BridgeConfig, server, web: WebViewService):
        self.config = config
        self.server = server
        self.web = web

    def startService(self) -> None:
        super().startService()
        print(instructions(self.config, self.server, self.web.view.url), flush=True)


def bridge_command() -> str:
    """How to type `bridge` in another terminal: bare when it is on PATH, else this venv's script."""
    script = Path(sys.executable).parent / "bridge"
    on_path = shutil.which("bridge")
    if not script.exists() or (on_path and Path(on_path).resolve() == script.resolve()):
        return "bridge"
    try:
        return str(script.relative_to(Path.cwd()))
    except ValueError:
        return str(script)


def instructions(config: BridgeConfig, server, web_url: str) -> str:
    """The few lines printed once everything runs: where to look and what to paste."""
    lines = [
        f"bridge demo: device {config.device.id} ({config.device.driver} driver)",
        f"  LED web view:  {web_url}",
        f"  NATS server:   {server.url} (nats-server pid {server.pid}, stopped with the demo)",
        f"  JetStream:     on, stored in {server.store_dir} (removed with the demo)",
    ]
    if config.homeassistant is not None:
        name = config.homeassistant.name or config.device.id
        lines += [
            f"  MQTT:          mqtt://127.0.0.1:{server.mqtt_port} (nats-server's MQTT listener)",
            f"  Home Assistant: add the MQTT integration with these two settings; {name!r} appears under MQTT devices",
            "    broker: 127.0.0.1",
            f"    port:   {server.mqtt_port}",
        ]
    commands = []
    for action, purpose, options, text in EXAMPLES:
        subject = next(
            (s.subject for s in config.subscriptions if s.action == action and is_literal(s.subject)), None
        )
        if subject is not None:
            words = [bridge_command(), "send", *options, subject, *text]
            commands.append(f"  # {purpose}\n  {shlex.join(words)}")
    commands.append(f"  # list the bridges on this server\n  {shlex.join([bridge_command(), 'fleet'])}")
    example = Path(server.store_dir).parent / "stored-example.yml"  # removed with the server's folder
    example.write_text(DEPLOY_EXAMPLE, encoding="utf-8")
    deploy = [bridge_command(), "deploy", str(example), "--key", "demo"]
    commands.append(
        "  # store a fleet config in this JetStream (bucket bridge_config, key demo) and list its revisions;\n"
        "  # the demo bridge runs from a file, not fleet:, so its LEDs do not change and `fleet` shows it as file:\n"
        f"  {shlex.join(deploy)}\n  {shlex.join([*deploy[:2], *deploy[3:], '--history'])}")
    lines.append("Try, in another terminal (every bridge command connects to $NATS_URL unless given --server):")
    lines.append(f"  export NATS_URL={server.url}")
    lines.extend(commands)
    lines.append("Ctrl-C stops the bridge, the web view and the nats-server.")
    return "\n".join(lines)
