"""The live LED web view against a real bridge: a real nats-server, the memory (or headless
sense-emu) device, the view on a free port, all in this process on the reactor; the browser tests
run Debian's headless Chromium and read its screenshots with Pillow."""

from __future__ import annotations

import dataclasses
import json
import subprocess

import pytest
import pytest_twisted
from twisted.internet.threads import deferToThread
from twisted.logger import LogLevel, globalLogPublisher
from twisted.web.client import Agent, readBody

from bridge.config.model import (
    BridgeConfig,
    DeviceConfig,
    NatsConfig,
    PublicationConfig,
    ReconnectConfig,
    SubscriptionConfig,
)
from bridge.display.store import AppStore
from bridge.runtime.bridge import Bridge
from bridge.web import start_web_view
from bridge.web.view import is_loopback
from tests.harness.nats_client import connected
from tests.harness.reactor import running_reactor, wait_until, within
from tests.harness.webview import WAIT, Running, open_events, stop_running
from tests.harness.webview import start_running as shared_start
from tests.web.browser import CHROMIUM, CHROMIUM_FLAGS, DevToolsBrowser, close_to, needs_chromium, screenshot_colour

BLACK = [0, 0, 0]
ORANGE = [255, 128, 0]  # exact on the memory device; no channel near another cell's colour
TEXT_COLOUR = [248, 252, 0]  # yellow that survives the emulated framebuffer's RGB565 unchanged


def bridge_config(url: str, driver: str = "memory") -> BridgeConfig:
    return BridgeConfig(
        device=DeviceConfig(id="webtest", driver=driver),
        nats=NatsConfig(
            servers=(url,),
            randomize=False,
            reconnect=ReconnectConfig(initial_delay=0.05, max_delay=0.5),
        ),
        subscriptions=(
            SubscriptionConfig(subject="web.led.pixel", action="set_pixel"),
            SubscriptionConfig(subject="web.led.show", action="show_message"),
            SubscriptionConfig(subject="web.led.clear", action="clear"),
        ),
        publications=(PublicationConfig(subject="web.temperature", sensor="temperature", interval=0.2),),
    )


async def start_running(server, make_client, driver: str = "memory") -> Running:
    return await shared_start(bridge_config(server.url, driver), server, make_client,
                              f"bridge.start() (opening the device, connecting to {server.url})")


@pytest_twisted.async_yield_fixture
async def running(nats_server, make_client):
    started = await start_running(nats_server, make_client)
    yield started
    await stop_running(started)


async def get(url: str) -> tuple[object, bytes]:
    response = await Agent(running_reactor()).request(b"GET", url.encode())
    return response, await readBody(response)


async def get_json(url: str) -> dict:
    response, body = await get(url)
    assert response.code == 200
    assert response.headers.getRawHeaders(b"content-type") == [b"application/json; charset=utf-8"]
    return json.loads(body)


def pixel(state: dict, x: int, y: int) -> list[int]:
    return state["pixels"][y * 8 + x]


# -- /state and the page ----------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_state_is_the_bridge_as_json(running):
    state = await get_json(running.url("state"))
    assert state["device"] == "webtest"
    assert state["driver"] == "memory"
    assert state["connected"] is True
    assert state["server"] == running.server.url
    assert state["pixels"] == [BLACK] * 64
    assert state["uptime"] >= 0
    assert [(s["subject"], s["action"]) for s in state["subscriptions"]] == [
        ("web.led.pixel", "set_pixel"),
        ("web.led.show", "show_message"),
        ("web.led.clear", "clear"),
    ]
    assert [p["subject"] for p in state["publications"]] == ["web.temperature"]

    await running.set_pixel(2, 5, ORANGE)
    await wait_until(lambda: "temperature" in running.bridge.readings, WAIT, "a temperature reading")
    state = await get_json(running.url("state"))
    assert pixel(state, 2, 5) == ORANGE
    assert pixel(state, 3, 5) == BLACK
    assert state["subscriptions"][0]["applied"] == 1
    assert state["readings"]["temperature"]["unit"] == "°C"
    assert isinstance(state["readings"]["temperature"]["value"], float)


@pytest_twisted.ensureDeferred
async def test_page_is_served_with_the_current_state_inside(running):
    await running.set_pixel(7, 0, ORANGE)
    response, body = await get(running.url())
    assert response.code == 200
    assert response.headers.getRawHeaders(b"content-type") == [b"text/html; charset=utf-8"]
    page = body.decode("utf-8")
    start = page.index('<script id="initial-state" type="application/json">') + len(
        '<script id="initial-state" type="application/json">'
    )
    embedded = json.loads(page[start : page.index("</script>", start)])
    assert pixel(embedded, 7, 0) == ORANGE
    assert embedded["device"] == "webtest"


@pytest_twisted.ensureDeferred
async def test_state_and_page_carry_the_display_layers_for_the_legend(nats_server, make_client, tmp_path):
    reactor = running_reactor()
    config = dataclasses.replace(bridge_config(nats_server.url), subscriptions=(
        SubscriptionConfig(subject="web.notify", action="notify"), SubscriptionConfig(subject="web.app", action="app")))
    bridge = Bridge(config, reactor, app_store=AppStore(tmp_path))
    await within(bridge.start(), 30.0, "bridge.start()")
    view = start_web_view(bridge, port=0, reactor=reactor)
    client = make_client(nats_server.url, randomize=False)
    await connected(client)
    running = Running(bridge, view, nats_server, client)
    try:
        state = await get_json(running.url("state"))
        assert state["display"] == {"showing": {"layer": "base"}, "queued": [], "apps": [], "indicators": {}}
        assert await running.send("web.app", {"name": "weather", "text": "sunny"}) == {"ok": True}
        assert (await running.send("web.notify", {"text": "door", "hold": True, "id": "door"}))["position"] == 0
        assert (await running.send("web.notify", {"text": "bell", "id": "bell", "priority": 2}))["position"] == 1
        state = await get_json(running.url("state"))
        assert state["display"]["showing"] == {"layer": "notification", "id": "door"}
        assert state["display"]["queued"] == [{"id": "bell", "priority": 2, "hold": False, "text": "bell"}]
        assert state["display"]["apps"] == [{"name": "weather", "stale": False, "runtime": True}]
        _, body = await get(running.url())
        page = body.decode("utf-8")
        for element in ('id="legend"', 'id="legend-showing"', 'id="legend-queued"', 'id="legend-apps"',
                        "drawLegend(state.display)"):
            assert element in page
    finally:
        await stop_running(running)


@pytest_twisted.ensureDeferred
async def test_unknown_paths_and_methods_are_refused(running):
    response, _ = await get(running.url("nope"))
    assert response.code == 404
    response = await Agent(running_reactor()).request(b"POST", running.url("state").encode())
    await readBody(response)
    assert response.code == 405


# -- server-sent events -----------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_events_stream_a_pixel_set_over_nats(running):
    response, stream = await open_events(running.url("events"))
    assert response.code == 200
    assert response.headers.getRawHeaders(b"content-type") == [b"text/event-stream; charset=utf-8"]
    first = await stream.next_state(lambda state: True)
    assert pixel(first, 4, 1) == BLACK

    await running.set_pixel(4, 1, ORANGE)
    changed = await stream.next_state(lambda state: pixel(state, 4, 1) == ORANGE)
    assert pixel(changed, 5, 1) == BLACK

    stream.disconnect()
    await stream.closed
    await wait_until(lambda: not running.view.streams, WAIT, "the view forgetting the closed stream")


@pytest_twisted.ensureDeferred
async def test_events_stream_the_connection_state(running):
    _, stream = await open_events(running.url("events"))
    await stream.next_state(lambda state: state["connected"])
    running.server.kill()
    await stream.next_state(lambda state: not state["connected"])
    seen = len(stream.states)
    running.server.start()
    up = await stream.next_state(lambda state: state["connected"], after=seen)
    assert up["server"] == running.server.url
    stream.disconnect()
    await stream.closed


@pytest_twisted.ensureDeferred
async def test_stopping_the_view_ends_open_streams(nats_server, make_client):
    started = await start_running(nats_server, make_client)
    try:
        _, stream = await open_events(started.url("events"))
        await stream.next_state(lambda state: True)
    finally:
        await stop_running(started)
    await stream.closed
    assert not started.view.streams


def test_only_loopback_addresses_count_as_loopback():
    assert is_loopback("127.0.0.1") and is_loopback("127.1.2.3") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("::") and not is_loopback("192.168.1.20")
    assert not is_loopback("") and not is_loopback("pi.local")


@pytest_twisted.ensureDeferred
async def test_binding_beyond_loopback_is_logged_as_a_warning(running):
    assert running.view.port.getHost().host == "127.0.0.1"  # the default
    warnings = []

    def observe(event):
        if event.get("log_level") == LogLevel.warn and event.get("log_namespace") == "bridge":
            warnings.append(event)

    globalLogPublisher.addObserver(observe)
    try:
        exposed = start_web_view(running.bridge, host="0.0.0.0", port=0, reactor=running_reactor())
        await exposed.stop()
    finally:
        globalLogPublisher.removeObserver(observe)
    assert len(warnings) == 1
    assert "reachable from other machines" in warnings[0]["log_format"]


# -- scrolling text on the emulated HAT -------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_scrolling_text_shows_up_live(emulator_exclusive, nats_server, make_client):
    started = await start_running(nats_server, make_client, driver="sense-emu")
    try:
        assert await started.send("web.led.clear", b"") == {"ok": True}
        _, stream = await open_events(started.url("events"))
        await stream.next_state(lambda state: state["pixels"] == [BLACK] * 64)
        # The reply comes once the scroll has finished; the stream must have shown it meanwhile.
        reply = await started.send(
            "web.led.show", {"text": "HI", "text_colour": TEXT_COLOUR, "scroll_speed": 0.05}
        )
        assert reply == {"ok": True}
        lit = [number for number, state in enumerate(stream.states) if TEXT_COLOUR in state["pixels"]]
        assert lit, f"no frame of the scroll reached the stream ({len(stream.states)} states)"
        # ... and then the end of the scroll: the text has left the display.
        await stream.next_state(lambda state: state["pixels"] == [BLACK] * 64, after=lit[-1])
        stream.disconnect()
        await stream.closed
    finally:
        await stop_running(started)


# -- in a real browser ------------------------------------------------------------------------

@needs_chromium
@pytest_twisted.ensureDeferred
async def test_browser_screenshot_shows_a_pixel_set_over_nats(running, tmp_path):
    pytest.importorskip("PIL", reason="Pillow reads the screenshot (pip install '.[dev]' brings it)")
    await running.set_pixel(3, 6, ORANGE)
    shot = tmp_path / "page.png"
    command = [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", running.url()]
    # Off the reactor thread: the reactor must keep serving the page while Chromium loads it.
    done = await deferToThread(subprocess.run, command, capture_output=True, text=True, timeout=120)
    assert shot.exists(), f"chromium exited with {done.returncode} and no screenshot:\n{done.stderr[-3000:]}"
    png = shot.read_bytes()
    assert close_to(screenshot_colour(png, 3, 6), ORANGE), screenshot_colour(png, 3, 6)
    assert close_to(screenshot_colour(png, 4, 6), BLACK), screenshot_colour(png, 4, 6)
    assert close_to(screenshot_colour(png, 3, 5), BLACK), screenshot_colour(png, 3, 5)


@needs_chromium
@pytest_twisted.ensureDeferred
async def test_open_page_follows_pixels_set_over_nats(running, tmp_path):
    pytest.importorskip("PIL", reason="Pillow reads the screenshot (pip install '.[dev]' brings it)")
    browser = await deferToThread(DevToolsBrowser, str(tmp_path / "profile"), str(tmp_path / "chromium.log"))
    try:
        await deferToThread(browser.open, running.url())
        await deferToThread(browser.wait_for, "typeof events === 'object' && events.readyState === EventSource.OPEN")
        before = await deferToThread(browser.screenshot)
        assert close_to(screenshot_colour(before, 6, 2), BLACK)

        await running.set_pixel(6, 2, ORANGE)
        after = await deferToThread(browser.screenshot_until, lambda png: close_to(screenshot_colour(png, 6, 2), ORANGE))
        assert close_to(screenshot_colour(after, 6, 2), ORANGE), screenshot_colour(after, 6, 2)
        assert close_to(screenshot_colour(after, 7, 2), BLACK), screenshot_colour(after, 7, 2)
    finally:
        await deferToThread(browser.close)
