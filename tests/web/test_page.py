"""The LED web view's page in headless Chromium, against a real bridge (real nats-server, memory
device): its layout from a 320 px phone to a desktop, the publications and subscriptions it lists
(with the reason behind an error count), and the "send a text" box, whose `bridge send` line is run
in a shell to check it publishes exactly the text typed."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import pytest_twisted
from twisted.internet.threads import deferToThread
from twisted.web.client import Agent, readBody

from bridge.actions import parse_command
from bridge.config.model import (
    BridgeConfig,
    DeviceConfig,
    NatsConfig,
    PublicationConfig,
    ReconnectConfig,
    SubscriptionConfig,
)
from tests.harness.nats_client import Collector
from tests.harness.reactor import running_reactor, wait_until
from tests.harness.webview import WAIT, Running, stop_running
from tests.harness.webview import start_running as shared_start
from tests.web.browser import DevToolsBrowser, needs_chromium

PHONE = (390, 844)
SMALL_PHONE = (320, 640)
DESKTOP = (1280, 800)

EVENTS_OPEN = "typeof events === 'object' && events.readyState === EventSource.OPEN"

# Where every LED cell, the matrix and the panel are, and how wide the document is; the panel is
# measured after scrolling it into view (scrolling down is allowed, sideways is not).
MEASURE = """(() => {
  const box = (element) => { const r = element.getBoundingClientRect();
                              return {left: r.left, right: r.right, top: r.top, bottom: r.bottom}; };
  const cells = [...document.querySelectorAll("#matrix .cell")].map(box);
  const matrix = box(document.getElementById("matrix"));
  const panel = document.getElementById("panel");
  const panelInPage = box(panel);
  panel.scrollIntoView();
  return {width: window.innerWidth, height: window.innerHeight,
          scrollWidth: document.documentElement.scrollWidth,
          cells, matrix, panelInPage, panelSeen: box(panel),
          tables: [...document.querySelectorAll("#panel table")].map((table) => table.id)
            .filter((id) => document.getElementById(id).getBoundingClientRect().right > window.innerWidth + 0.5)};
})()"""


def bridge_config(url: str, subscriptions=None) -> BridgeConfig:
    return BridgeConfig(
        device=DeviceConfig(id="pagetest", driver="memory"),
        nats=NatsConfig(servers=(url,), randomize=False, reconnect=ReconnectConfig(initial_delay=0.05, max_delay=0.5)),
        subscriptions=subscriptions or (
            SubscriptionConfig(subject="page.led.pixel", action="set_pixel"),
            SubscriptionConfig(subject="page.led.show", action="show_message"),
        ),
        publications=(PublicationConfig(subject="page.temperature", sensor="temperature", interval=0.2),),
    )


async def start_running(server, make_client, subscriptions=None) -> Running:
    return await shared_start(bridge_config(server.url, subscriptions), server, make_client)


@pytest_twisted.async_yield_fixture
async def running(nats_server, make_client):
    started = await start_running(nats_server, make_client)
    yield started
    await stop_running(started)


@pytest.fixture
def browser(tmp_path):
    started = DevToolsBrowser(str(tmp_path / "profile"), str(tmp_path / "chromium.log"))
    yield started
    started.close()


async def open_page(browser: DevToolsBrowser, running: Running, size: tuple[int, int]) -> None:
    await deferToThread(browser.open, running.url(), *size)
    await deferToThread(browser.wait_for, EVENTS_OPEN)


async def measure(browser: DevToolsBrowser, size: tuple[int, int]) -> dict:
    """Resize the open page to `size` and measure its layout."""
    await deferToThread(browser.set_viewport, *size)
    await deferToThread(browser.evaluate, "window.scrollTo(0, 0)")
    return await deferToThread(browser.evaluate, MEASURE)


def assert_fits(layout: dict, size: tuple[int, int]) -> None:
    width = size[0]
    # A phone's browser widens its layout viewport (and zooms out) to fit a page wider than itself.
    assert layout["width"] == width, f"the page is {layout['width']} px wide on a {width} px screen"
    assert layout["scrollWidth"] <= width, f"the page scrolls sideways at {size}: {layout['scrollWidth']} px wide"
    assert len(layout["cells"]) == 64
    for number, cell in enumerate(layout["cells"]):
        assert 0 <= cell["left"] and cell["right"] <= width, f"LED {number % 8},{number // 8} cut off at {size}: {cell}"
        side, height = cell["right"] - cell["left"], cell["bottom"] - cell["top"]
        assert side >= 20 and abs(side - height) < 1, f"LED {number % 8},{number // 8} is not a visible square: {cell}"
    seen = layout["panelSeen"]
    assert 0 <= seen["left"] and seen["right"] <= width, f"the panel is cut off sideways at {size}: {seen}"
    assert seen["top"] < layout["height"] and seen["bottom"] > 0, f"the panel cannot be scrolled into view: {seen}"
    assert layout["tables"] == [], f"these tables stick out of the page at {size}"


@needs_chromium
@pytest_twisted.ensureDeferred
async def test_page_fits_a_phone_and_a_desktop(running, browser):
    await open_page(browser, running, PHONE)
    for size in (PHONE, SMALL_PHONE, DESKTOP):
        layout = await measure(browser, size)
        assert_fits(layout, size)
        matrix, panel = layout["matrix"], layout["panelInPage"]
        if size == DESKTOP:
            assert panel["left"] >= matrix["right"] and panel["top"] < matrix["bottom"], "the panel is not beside the matrix"
        else:
            assert panel["top"] >= matrix["bottom"], f"the panel is not below the matrix at {size}"
            # The matrix takes the width it has, less the page's margins.
            assert matrix["right"] - matrix["left"] > size[0] - 40
    assert browser.exceptions == []


# -- what the tables say ----------------------------------------------------------------------

BAD_PIXEL = {"x": 9, "y": 0, "color": [1, 2, 3]}

ROWS = """[...document.querySelectorAll("#TABLE tbody tr")].map((row) =>
  ({className: row.className, cells: [...row.cells].map((cell) => ({text: cell.textContent, title: cell.title}))}))"""


def rows(table: str) -> str:
    return ROWS.replace("TABLE", table)


async def get_state(running: Running) -> dict:
    response = await Agent(running_reactor()).request(b"GET", running.url("state").encode())
    assert response.code == 200
    return json.loads(await readBody(response))


@pytest_twisted.ensureDeferred
async def test_state_gives_each_subscription_the_text_of_its_latest_error(running):
    state = await get_state(running)
    assert [s["last_error"] for s in state["subscriptions"]] == ["", ""]
    reply = await running.send("page.led.pixel", BAD_PIXEL)
    assert reply["ok"] is False
    state = await get_state(running)
    pixel, show = state["subscriptions"]
    assert pixel["errors"] == 1 and "x" in pixel["last_error"]
    assert pixel["last_error"] in reply["error"]
    assert show["last_error"] == ""


@needs_chromium
@pytest_twisted.ensureDeferred
async def test_page_lists_publications_and_says_why_a_subscription_failed(running, browser):
    reply = await running.send("page.led.pixel", BAD_PIXEL)
    await wait_until(lambda: running.bridge.publications[0].published >= 2, WAIT, "two temperature readings published")
    reason = running.bridge.subscriptions[0].last_error
    assert reason and reason in reply["error"]
    await open_page(browser, running, PHONE)

    subscriptions = await deferToThread(browser.evaluate, rows("subscriptions"))
    assert [row["cells"][0]["text"] for row in subscriptions] == ["page.led.pixel", f"last problem: {reason}",
                                                                 "page.led.show"]
    failed, why, fine = subscriptions
    assert why["className"] == "reason" and why["cells"][0]["title"] == reason
    assert [cell["text"] for cell in failed["cells"][2:]] == ["1", "0", "1", "0"]
    assert failed["cells"][4]["title"] == reason  # the error count's tooltip
    assert all(cell["title"] == "" for cell in fine["cells"])

    publications = await deferToThread(browser.evaluate, rows("publications"))
    assert len(publications) == 1
    subject, sensor, latest, published, failed_count = [cell["text"] for cell in publications[0]["cells"]]
    assert (subject, sensor, failed_count) == ("page.temperature", "temperature", "0")
    assert latest.endswith(" °C") and float(latest.removesuffix(" °C")) == pytest.approx(
        running.bridge.readings["temperature"]["value"], abs=5)
    assert int(published) >= 2
    assert await deferToThread(browser.evaluate, 'document.getElementById("spool-heading").hidden') is True
    assert browser.exceptions == []


# A state no test bridge reaches: a long subject, a long error, durable publications with a spool.
DRAW_HEAVY = """(() => {
  events.close();  // so no streamed state redraws over this one
  const state = JSON.parse(document.getElementById("initial-state").textContent);
  const reason = "show_message: " + "the text is far too long to scroll ".repeat(12);
  state.subscriptions = [
    {subject: "pi.kitchen-window-left.led.a-rather-long-subject-name.show", action: "show_message",
     received: 123456, applied: 120000, errors: 3456, dropped: 0, pending: 0, last_error: reason},
    {subject: "pi.kitchen.led.notify", action: "notify", received: 1, applied: 1, errors: 0, dropped: 0,
     pending: 0, last_error: ""}];
  state.publications = [
    {subject: "pi.kitchen.sensors.temperature", sensor: "temperature", published: 98765, failed: 12, invalid: 0,
     spool: {stream: "READINGS", unacked: 4321, bytes: 1048576, acked: 99999, duplicates: 2, dropped: 7}},
    {subject: "pi.kitchen.sensors.humidity", sensor: "humidity", published: 5, failed: 0, invalid: 0}];
  draw(state);
  return reason;
})()"""


@needs_chromium
@pytest_twisted.ensureDeferred
async def test_a_crowded_panel_still_fits_a_small_phone(running, browser):
    await open_page(browser, running, SMALL_PHONE)
    reason = await deferToThread(browser.evaluate, DRAW_HEAVY)
    subscriptions = await deferToThread(browser.evaluate, rows("subscriptions"))
    why = subscriptions[1]["cells"][0]
    assert why["title"] == reason
    assert why["text"].startswith("last problem: show_message: the text") and why["text"].endswith("…")
    assert len(why["text"]) < len(reason)

    publications = await deferToThread(browser.evaluate, rows("publications"))
    spool = publications[0]["cells"][5]
    assert spool["text"] == "4321 unacked, 7 dropped"
    assert "READINGS" in spool["title"] and "1048576 bytes" in spool["title"]
    assert publications[1]["cells"][5]["text"] == ""
    assert await deferToThread(browser.evaluate, 'document.getElementById("spool-heading").hidden') is False
    for size in (SMALL_PHONE, PHONE):
        assert_fits(await measure(browser, size), size)
    assert browser.exceptions == []


# -- the "send a text" box --------------------------------------------------------------------

ODD_TEXTS = [
    "hello world",
    "it's \"quoted\"",
    "  two  spaces  ",
    "héllo wörld ☃ 🙂",
    "$HOME `id` $(id); echo \\ * !!",
    "-h",
    "-",
    '{"text": "inner"}',
]

SUBMIT = """(() => {
  document.getElementById("send-text").value = TYPED;
  document.getElementById("send").requestSubmit();
  const line = document.getElementById("send-line");
  return line.hidden ? null : line.textContent;
})()"""


def submitted(typed: str) -> str:
    return SUBMIT.replace("TYPED", json.dumps(typed))


def run_in_shell(lines: list[str], nats_url: str) -> subprocess.CompletedProcess:
    """Each line as a user would paste it into sh, with this venv's `bridge` on the PATH."""
    environment = dict(os.environ, NATS_URL=nats_url,
                       PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    return subprocess.run(["sh", "-e", "-c", "\n".join(lines)], env=environment, capture_output=True, text=True,
                          timeout=120)


@needs_chromium
@pytest_twisted.ensureDeferred
async def test_send_box_writes_the_bridge_send_line_and_publishes_nothing(running, browser):
    await open_page(browser, running, PHONE)
    assert await deferToThread(browser.evaluate, 'document.getElementById("send").hidden') is False
    assert await deferToThread(browser.evaluate, 'document.getElementById("send-subject").textContent') == "page.led.show"
    assert await deferToThread(browser.evaluate, submitted("")) is None
    lines = [await deferToThread(browser.evaluate, submitted(typed)) for typed in ODD_TEXTS]
    assert lines[0] == "bridge send page.led.show 'hello world'"
    assert lines[5] == 'bridge send --json page.led.show \'{"text":"-h"}\''

    # The page wrote lines and sent nothing: the bridge received no message, the page did not navigate.
    assert [s.stats.received for s in running.bridge.subscriptions] == [0, 0]
    assert await deferToThread(browser.evaluate, "location.href") == running.url()
    assert browser.exceptions == []

    # Pasted into a shell, each line publishes what was typed, as the bridge will read it.
    received = Collector()
    running.client.subscribe("page.led.show", received)
    await running.client.flush()
    done = await deferToThread(run_in_shell, lines, running.server.url)
    assert done.returncode == 0, done.stderr
    await received.wait_for(len(ODD_TEXTS), WAIT)
    shown = [parse_command("show_message", payload, {}).args[0] for payload in received.data]
    assert shown == ODD_TEXTS


DRAW_SUBSCRIPTIONS = """(() => {
  events.close();  // so no streamed state redraws over this one
  const state = JSON.parse(document.getElementById("initial-state").textContent);
  state.subscriptions = SUBSCRIPTIONS.map(([subject, action]) => ({subject, action, received: 0, applied: 0,
    errors: 0, dropped: 0, pending: 0, last_error: ""}));
  draw(state);
  const box = document.getElementById("send");
  return box.hidden ? null : document.getElementById("send-subject").textContent;
})()"""


@needs_chromium
@pytest_twisted.ensureDeferred
async def test_send_box_shows_only_for_a_literal_text_subject(running, browser):
    await open_page(browser, running, PHONE)
    cases = [
        ([], None),
        ([["pi.a.led.pixel", "set_pixel"]], None),
        ([["pi.*.led.show", "show_message"], ["pi.>", "notify"]], None),
        ([["pi.*.led.show", "show_message"], ["pi.a.notify", "notify"]], "pi.a.notify"),
        ([["pi.a.notify", "notify"], ["pi.a.led.show", "show_message"]], "pi.a.led.show"),
    ]
    for subscriptions, expected in cases:
        script = DRAW_SUBSCRIPTIONS.replace("SUBSCRIPTIONS", json.dumps(subscriptions))
        assert await deferToThread(browser.evaluate, script) == expected, subscriptions
    assert browser.exceptions == []
