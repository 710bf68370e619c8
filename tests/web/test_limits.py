"""The web view's limits from outside: raw HTTP clients over loopback against a real bridge (real
nats-server, memory device), the LED state changed over NATS. A client that never reads, the cap
on event streams, and the Host header check (DNS-rebinding protection); plus the pure Host rule."""

from __future__ import annotations

import json
import socket
import time

import pytest
import pytest_twisted
from twisted.internet.threads import deferToThread

import bridge.web.view
from bridge.config.model import BridgeConfig, DeviceConfig, NatsConfig, ReconnectConfig, SubscriptionConfig
from bridge.web import WebOptions
from bridge.web.options import host_allowed, split_host
from bridge.web.view import misdirected_text
from tests.harness.reactor import wait_until
from tests.harness.webview import WAIT, Running, open_events, start_running, stop_running

TRANSPORT_BUFFER = 2**16  # where Twisted's TCP transport pauses its producer
# What a stalled client may cost the server: the transport's buffer plus one state and some slack.
UNSENT_BOUND = TRANSPORT_BUFFER + 8 * 1024


def bridge_config(url: str) -> BridgeConfig:
    return BridgeConfig(
        device=DeviceConfig(id="limits", driver="memory"),
        nats=NatsConfig(servers=(url,), randomize=False, reconnect=ReconnectConfig(initial_delay=0.05, max_delay=0.5)),
        subscriptions=(SubscriptionConfig(subject="limits.led.pixels", action="set_pixels"),),
    )


async def start_view(nats_server, make_client, options: WebOptions, host: str = "127.0.0.1") -> Running:
    return await start_running(bridge_config(nats_server.url), nats_server, make_client, host=host, options=options)


def picture(number: int) -> list[list[int]]:
    """64 colours that differ from those of every other number: each is a new state."""
    return [[number % 256, (number // 256 + index) % 256, (7 * index + 1) % 256] for index in range(64)]


async def show(running: Running, number: int) -> None:
    body = json.dumps({"pixels": picture(number)}).encode()
    reply = await running.client.request("limits.led.pixels", body, timeout=WAIT)
    assert json.loads(reply.data) == {"ok": True}


# -- raw HTTP over loopback (blocking; run off the reactor thread) -----------------------------


def http_exchange(port: int, request: bytes, timeout: float = 5.0) -> tuple[int, bytes]:
    """Send `request` as is, read until the server closes (an open event stream: for `timeout`);
    (status code, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as sock:
        sock.sendall(request)
        _, data = read_until(sock, b"never sent", timeout)
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def get_request(path: str, host: str | None, version: str = "1.1") -> bytes:
    lines = [f"GET {path} HTTP/{version}"] + ([f"Host: {host}"] if host is not None else []) + ["Connection: close"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def status(port: int, path: str, host: str | None, version: str = "1.1") -> tuple[int, bytes]:
    return await deferToThread(http_exchange, port, get_request(path, host, version))


def read_until(sock: socket.socket, needle: bytes, timeout: float) -> tuple[bool, bytes]:
    """Read until `needle` arrives, the server closes or resets, or `timeout` passes."""
    sock.settimeout(0.2)
    deadline = time.monotonic() + timeout
    data = b""
    while needle not in data and time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            continue
        except ConnectionResetError:
            return False, data
        if not chunk:
            return False, data
        data += chunk
    return needle in data, data


def unsent(stream) -> int:
    """Bytes the server's transport holds for this stream's client (what `_isSendBufferFull` counts)."""
    transport = stream.request.channel.transport
    return len(transport.dataBuffer) + transport._tempDataLen


class StalledClient:
    """A raw /events client that never reads. Its receive buffer and the server's send buffer are
    made small, so the kernel holds a few KiB and the rest would pile up in the server process."""

    def __init__(self, port: int):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)  # before connect: sets the window
        self.sock.connect(("127.0.0.1", port))
        self.sock.sendall(get_request("/events", f"localhost:{port}", version="1.0"))
        self.port = self.sock.getsockname()[1]

    async def stream(self, view):
        def mine():
            return [s for s in view.streams if s.request.getClientAddress().port == self.port]

        await wait_until(lambda: mine(), WAIT, "the stalled client's stream opening")
        (stream,) = mine()
        stream.request.channel.transport.getHandle().setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        return stream

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def fast_frames(monkeypatch):
    # Sample at 100 Hz rather than 20: each change the test makes is still streamed, sooner.
    monkeypatch.setattr(bridge.web.view, "FRAME_INTERVAL", 0.01)


async def change_until_paused(running: Running, reader, stream, extra: int, first: int = 0) -> tuple[int, int]:
    """Change the picture (each change awaited at `reader`, a client that reads) until `stream` is
    paused, then `extra` more times; (the next picture number, the most bytes ever unsent to `stream`)."""
    most = 0
    number = first
    paused_at = None
    while paused_at is None or number < paused_at + extra:
        assert number < first + 400, f"the stalled stream never paused; {unsent(stream)} bytes unsent"
        await show(running, number)
        expected = picture(number)
        await reader.next_state(lambda state: state["pixels"] == expected, after=max(len(reader.states) - 2, 0))
        most = max(most, unsent(stream))
        if paused_at is None and stream.paused:
            paused_at = number
        number += 1
    return number, most


# -- a client that does not read ---------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_a_client_that_never_reads_costs_bounded_memory_and_gets_the_newest_state_later(
    nats_server, make_client, fast_frames
):
    running = await start_view(nats_server, make_client, WebOptions(stall_timeout=60.0))
    stalled = StalledClient(running.view.port.getHost().port)
    try:
        _, reader = await open_events(running.url("events"))
        stream = await stalled.stream(running.view)
        number, most = await change_until_paused(running, reader, stream, extra=60)
        assert stream.paused
        # 60 states of ~1.4 KiB each arrived while paused; none of them piled up in the server.
        assert most <= UNSENT_BOUND, f"{most} bytes held for a client that does not read"
        assert stream in running.view.streams  # not dropped before stall_timeout

        # When it reads again, the newest state reaches it.
        await show(running, number)
        newest = json.dumps(picture(number), separators=(",", ":")).encode()
        await reader.next_state(lambda state: state["pixels"] == picture(number))
        got, data = await deferToThread(read_until, stalled.sock, newest, WAIT)
        assert got, f"the newest state never reached the client once it read ({len(data)} bytes read)"
        reader.disconnect()
    finally:
        stalled.close()
        await stop_running(running)


@pytest_twisted.ensureDeferred
async def test_a_client_that_stays_stalled_is_dropped_and_others_keep_receiving(nats_server, make_client, fast_frames):
    running = await start_view(nats_server, make_client, WebOptions(stall_timeout=0.5))
    stalled = StalledClient(running.view.port.getHost().port)
    try:
        _, reader = await open_events(running.url("events"))
        stream = await stalled.stream(running.view)
        number, _ = await change_until_paused(running, reader, stream, extra=1)
        await wait_until(lambda: stream not in running.view.streams, WAIT, "the stalled stream being dropped")
        # The connection is gone: what the kernel held, then the end (or a reset).
        got, _ = await deferToThread(read_until, stalled.sock, b"never sent", WAIT)
        assert not got
        # The reading client never noticed.
        await show(running, number)
        await reader.next_state(lambda state: state["pixels"] == picture(number))
        assert len(running.view.streams) == 1
        reader.disconnect()
    finally:
        stalled.close()
        await stop_running(running)


# -- the cap on event streams ------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_one_stream_past_the_cap_gets_503(nats_server, make_client):
    running = await start_view(nats_server, make_client, WebOptions(max_streams=2))
    port = running.view.port.getHost().port
    try:
        readers = []
        for _ in range(2):
            _, reader = await open_events(running.url("events"))
            await reader.next_state(lambda state: True)
            readers.append(reader)
        code, body = await status(port, "/events", f"127.0.0.1:{port}")
        assert code == 503
        assert b"too many open event streams" in body
        assert len(running.view.streams) == 2
        code, _ = await status(port, "/state", f"127.0.0.1:{port}")
        assert code == 200  # the cap is on streams only

        readers[0].disconnect()
        await readers[0].closed
        await wait_until(lambda: len(running.view.streams) == 1, WAIT, "the view forgetting the closed stream")
        _, again = await open_events(running.url("events"))
        await again.next_state(lambda state: True)
        for reader in (readers[1], again):
            reader.disconnect()
    finally:
        await stop_running(running)


# -- the Host header ---------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_only_requests_naming_the_view_are_answered_on_loopback(nats_server, make_client):
    running = await start_view(nats_server, make_client, WebOptions())
    port = running.view.port.getHost().port
    try:
        for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}", f"LOCALHOST:{port}"):
            code, body = await status(port, "/state", host)
            assert code == 200, host
            assert json.loads(body)["device"] == "limits"
        for host in (f"evil.example:{port}", "evil.example", f"localhost:{port + 1}", "localhost", f"10.0.0.1:{port}"):
            code, body = await status(port, "/state", host)
            assert code == 421, host
            assert b"limits" not in body
        code, _ = await status(port, "/", "evil.example")
        assert code == 421
        code, _ = await status(port, "/state", None, version="1.0")
        assert code == 421  # no Host at all
        code, _ = await status(port, "/events", f"evil.example:{port}")
        assert code == 421
        assert not running.view.streams
    finally:
        await stop_running(running)


@pytest_twisted.ensureDeferred
async def test_bound_to_every_address_the_view_answers_addresses_and_configured_names(nats_server, make_client):
    running = await start_view(nats_server, make_client, WebOptions(hosts=("Pi.local",)), host="0.0.0.0")
    port = running.view.port.getHost().port
    try:
        for host in (f"pi.local:{port}", f"192.168.1.20:{port}", f"127.0.0.1:{port}", f"localhost:{port}"):
            code, _ = await status(port, "/state", host)
            assert code == 200, host
        for host in (f"evil.example:{port}", f"pi.local:{port + 1}"):
            code, _ = await status(port, "/state", host)
            assert code == 421, host
        code, body = await status(port, "/", f"kitchen-pi.lan:{port}")
        assert code == 421
        assert b"add it to the bridge's config as web: {hosts: [kitchen-pi.lan]}" in body
    finally:
        await stop_running(running)


def test_the_421_page_names_a_plausible_host_and_never_echoes_anything_else():
    assert b"'pi.local'" in misdirected_text(b"pi.local:8080")
    for hostile in (b"<script>alert(1)</script>", b"a b", b"\xff\xfe", b"x" * 300, b"", None):
        text = misdirected_text(hostile)
        assert b"web.hosts" in text and b"script" not in text and b"xxx" not in text


def test_host_rule():
    # On loopback: the three loopback names and the bound address, with the bound port.
    assert host_allowed("localhost:8080", "127.0.0.1", 8080)
    assert host_allowed("[::1]:8080", "::1", 8080)
    assert host_allowed("127.0.0.2:8080", "127.0.0.2", 8080)
    assert not host_allowed("127.0.0.3:8080", "127.0.0.2", 8080)
    assert not host_allowed("localhost:8081", "127.0.0.1", 8080)
    assert not host_allowed("evil.example:8080", "127.0.0.1", 8080)
    assert not host_allowed(None, "127.0.0.1", 8080)
    # No port in the header means 80.
    assert host_allowed("localhost", "127.0.0.1", 80)
    assert not host_allowed("localhost", "127.0.0.1", 8080)
    # Bound to one other address: that address and the configured names.
    assert host_allowed("192.168.1.20:80", "192.168.1.20", 80)
    assert not host_allowed("192.168.1.21:80", "192.168.1.20", 80)
    assert host_allowed("pi.local:80", "192.168.1.20", 80, ("pi.local",))
    assert not host_allowed("pi.local:80", "192.168.1.20", 80)
    # Bound to every address: any IP address, never an unconfigured name.
    assert host_allowed("192.168.1.21:80", "0.0.0.0", 80)
    assert host_allowed("[fe80::1]:80", "::", 80)
    assert not host_allowed("fe80::1", "::", 80)  # an IPv6 address without brackets is malformed
    assert not host_allowed("evil.example:80", "0.0.0.0", 80)
    assert not host_allowed("evil.example:80", "::", 80)
    # Malformed headers.
    for header in ("", ":80", "localhost:", "localhost:80x", "localhost:٨٠", "[::1", "[::1]x", "a:b:c"):
        assert not host_allowed(header, "0.0.0.0", 80), header


def test_split_host():
    assert split_host("Example.COM:81") == ("example.com", 81)
    assert split_host("[::1]:8080") == ("[::1]", 8080)
    assert split_host("[::1]") == ("[::1]", None)
    assert split_host("localhost") == ("localhost", None)


def test_web_options_check_themselves():
    assert WebOptions() == WebOptions(max_streams=16, stall_timeout=30.0, hosts=())
    assert WebOptions(hosts=["Pi.Local", "[fe80::1]"]).hosts == ("pi.local", "[fe80::1]")
    for bad in (dict(max_streams=0), dict(max_streams=True), dict(max_streams=2.0), dict(stall_timeout=0),
                dict(stall_timeout="5"), dict(stall_timeout=float("inf")), dict(stall_timeout=float("nan")),
                dict(hosts="pi.local"), dict(hosts=("pi.local:80",)), dict(hosts=("::1",)),
                dict(hosts=("",))):
        with pytest.raises(ValueError):
            WebOptions(**bad)
