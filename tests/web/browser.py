"""Headless Chromium for the web view's tests: a one-shot screenshot's flags, and a browser driven
over the DevTools protocol on a pipe, which can set the viewport, evaluate JavaScript in the page
and reports every uncaught exception the page throws."""

from __future__ import annotations

import base64
import fcntl
import io
import json
import os
import select
import shutil
import time

import pytest

from bridge.web.view import cell_centre
from tests.harness.webview import WAIT

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="Chromium is not installed (Debian: apt-get install chromium; .ci/run installs it)"
)
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",  # one CSS pixel per screenshot pixel, so cell_centre applies
    "--force-color-profile=srgb",  # colours come out as the page set them
    "--window-size=900,500",
]


def screenshot_colour(png: bytes, x: int, y: int) -> tuple[int, int, int]:
    from PIL import Image

    return Image.open(io.BytesIO(png)).convert("RGB").getpixel(cell_centre(x, y))


def close_to(colour, expected, tolerance: int = 2) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(colour, expected))



class DevToolsBrowser:
    """Headless Chromium driven over the DevTools protocol on a pipe (fds 3 and 4 of the browser).

    Blocking: use it from a thread. The pipe needs no WebSocket client, and the browser stays
    open, so a test can change the device after the page has loaded and watch the page follow.
    """

    def __init__(self, profile_dir: str, log_path: str):
        to_browser_read, self._to_browser = os.pipe()
        self._from_browser, from_browser_write = os.pipe()
        # Above fd 4, so the dup2 onto 3 and 4 in the child always really duplicates.
        child_read = fcntl.fcntl(to_browser_read, fcntl.F_DUPFD_CLOEXEC, 10)
        child_write = fcntl.fcntl(from_browser_write, fcntl.F_DUPFD_CLOEXEC, 10)
        argv = [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile_dir}", "--remote-debugging-pipe", "about:blank"]
        try:
            # posix_spawn, not subprocess with preexec_fn: safe with the reactor's threads around.
            self.pid = os.posix_spawn(
                CHROMIUM,
                argv,
                os.environ,
                file_actions=[
                    (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                    (os.POSIX_SPAWN_OPEN, 1, log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644),
                    (os.POSIX_SPAWN_OPEN, 2, log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644),
                    (os.POSIX_SPAWN_DUP2, child_read, 3),
                    (os.POSIX_SPAWN_DUP2, child_write, 4),
                ],
            )
        finally:
            for fd in (to_browser_read, from_browser_write, child_read, child_write):
                os.close(fd)
        self.log_path = log_path
        self._buffer = b""
        self._next_id = 0
        self.session: str | None = None
        self.exceptions: list[str] = []  # what the page threw, as the console would show it

    def call(self, method: str, session: str | None = None, **params) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + WAIT
        while True:
            while b"\0" not in self._buffer:
                remaining = deadline - time.monotonic()
                readable, _, _ = select.select([self._from_browser], [], [], max(remaining, 0))
                if not readable:
                    raise AssertionError(f"no answer to {method} within {WAIT}s:\n{self.log()}")
                chunk = os.read(self._from_browser, 1 << 16)
                if not chunk:
                    raise AssertionError(f"chromium closed the DevTools pipe:\n{self.log()}")
                self._buffer += chunk
            line, self._buffer = self._buffer.split(b"\0", 1)
            answer = json.loads(line)
            if answer.get("method") == "Runtime.exceptionThrown":
                details = answer["params"]["exceptionDetails"]
                self.exceptions.append(details.get("exception", {}).get("description") or details["text"])
            if answer.get("id") == self._next_id:
                if "error" in answer:
                    raise AssertionError(f"{method}: {answer['error']}")
                return answer["result"]

    def open(self, url: str, width: int | None = None, height: int | None = None) -> None:
        """Load `url` in a new tab (laid out for width × height, see `set_viewport`), watching for
        exceptions from the page's first script on."""
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.call("Runtime.enable", self.session)
        if width is not None:
            self.set_viewport(width, height)
        self.call("Page.navigate", self.session, url=url)

    def set_viewport(self, width: int, height: int) -> None:
        """Lay the page out for a screen of width × height CSS pixels; a phone's when narrower than 800."""
        self.call("Emulation.setDeviceMetricsOverride", self.session, width=width, height=height,
                  deviceScaleFactor=1, mobile=width < 800)

    def evaluate(self, expression: str):
        return self.call("Runtime.evaluate", self.session, expression=expression, returnByValue=True)["result"].get("value")

    def wait_for(self, expression: str) -> None:
        deadline = time.monotonic() + WAIT
        while not self.evaluate(expression):
            if time.monotonic() > deadline:
                raise AssertionError(f"page never got to {expression!r}")
            time.sleep(0.05)

    def screenshot(self) -> bytes:
        return base64.b64decode(self.call("Page.captureScreenshot", self.session, format="png")["data"])

    def screenshot_until(self, predicate) -> bytes:
        """Screenshots until one satisfies `predicate` (or the wait runs out); returns the last."""
        deadline = time.monotonic() + WAIT
        png = self.screenshot()
        while not predicate(png) and time.monotonic() < deadline:
            time.sleep(0.05)
            png = self.screenshot()
        return png

    def log(self) -> str:
        try:
            with open(self.log_path, errors="replace") as log:
                return log.read()[-3000:]
        except OSError:
            return ""

    def close(self) -> None:
        try:
            self.call("Browser.close")
        except (AssertionError, OSError):
            os.kill(self.pid, 9)
        finally:
            os.waitpid(self.pid, 0)
            os.close(self._to_browser)
            os.close(self._from_browser)
