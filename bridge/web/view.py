"""The live LED web view, on twisted.web: GET / (the page), GET /state (JSON), GET /events (SSE).

The page is drawn from the same state document that /state returns and /events streams. While at
least one page is open, the view samples the device's display at FRAME_INTERVAL on the reactor
thread (a snapshot is a cheap copy, safe while the worker thread scrolls text) and streams a new
state only when something changed, so an idle bridge sends nothing but keep-alive comments.

Every request's Host header must name this view (`options.host_allowed`), else 421: a page from
another site cannot read the view through a DNS name rebound to this machine. At most
`WebOptions.max_streams` streams are open at once; one more gets 503. Each stream is its response's
push producer: when the client stops reading, the transport's send buffer fills (Twisted pauses its
producer above 64 KiB) and the stream writes nothing more until the transport resumes it, then only
the newest state; a stream paused for `stall_timeout` is dropped. So a client that never reads
holds at most the transport's buffer plus one state, and only for `stall_timeout`.
"""

from __future__ import annotations

import ipaddress
import json
import re
from importlib.resources import files
from typing import Any

from twisted.internet import defer, task
from twisted.internet.interfaces import IDelayedCall, IListeningPort, IPushProducer
from twisted.logger import Logger
from twisted.web import pages, resource, server
from zope.interface import implementer

from bridge.web.options import WebOptions, host_allowed

log = Logger(namespace="bridge")

FRAME_INTERVAL = 0.05  # 20 Hz: twice the default scroll rate of show_message, so no frame is missed
KEEP_ALIVE_INTERVAL = 15.0  # a comment this often keeps proxies and browsers from dropping an idle stream
RECONNECT_MS = 1000  # how long a page waits before re-opening a lost stream

# Where the page draws the matrix, in CSS pixels from the top-left corner, in a window wide enough for
# the matrix at full size and the panel beside it (at least 712 px; narrower, the matrix shrinks to
# the width and the panel goes below it). The page's stylesheet is filled from these, so a
# screenshot of a wide window can be read with `cell_centre`.
MATRIX_ORIGIN = 16
CELL_SIZE = 48
CELL_GAP = 4

_LAYOUT_MARKER = "/* layout */"
_STATE_MARKER = "STATE_JSON"


def cell_centre(x: int, y: int) -> tuple[int, int]:
    """The page coordinates (CSS pixels) of the middle of LED (x, y)."""
    pitch = CELL_SIZE + CELL_GAP
    return MATRIX_ORIGIN + x * pitch + CELL_SIZE // 2, MATRIX_ORIGIN + y * pitch + CELL_SIZE // 2


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _page_template() -> tuple[bytes, bytes]:
    """index.html with the layout filled in, split where each response puts its state."""
    layout = f":root {{ --origin: {MATRIX_ORIGIN}px; --cell: {CELL_SIZE}px; --gap: {CELL_GAP}px; }}"
    html = files(__package__).joinpath("index.html").read_text(encoding="utf-8")
    for marker in (_LAYOUT_MARKER, _STATE_MARKER):
        if html.count(marker) != 1:
            raise RuntimeError(f"bridge/web/index.html must contain {marker!r} exactly once")
    before, after = html.replace(_LAYOUT_MARKER, layout).split(_STATE_MARKER)
    return before.encode("utf-8"), after.encode("utf-8")


def _json(document: Any) -> bytes:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


class WebView:
    """One listening web view for one running `Bridge`; `stop()` closes it and every open stream."""

    def __init__(self, bridge, reactor, options: WebOptions = WebOptions()):
        self.bridge = bridge
        self.reactor = reactor
        self.options = options
        self.port: IListeningPort | None = None
        self.streams: set[_Stream] = set()
        self._last_event: bytes | None = None
        self._frames = task.LoopingCall(self._push_changes)
        self._frames.clock = reactor
        self._keep_alive = task.LoopingCall(self._send_keep_alive)
        self._keep_alive.clock = reactor
        self.site = _Site(self._resources(), self.host_allowed)
        self.site.displayTracebacks = False

    def _resources(self) -> resource.Resource:
        root = _Root()
        root.putChild(b"", _Page(self))
        root.putChild(b"state", _State(self))
        root.putChild(b"events", _Events(self))
        return root

    # -- listening ------------------------------------------------------------------------

    def listen(self, host: str, port: int) -> IListeningPort:
        """Bind (port 0 picks a free one; see `self.url`); raises CannotListenError when taken."""
        self.port = self.reactor.listenTCP(port, self.site, interface=host)
        self.bridge.listeners.append(self._on_connection_event)
        if is_loopback(host):
            log.info("web view on {url}", url=self.url)
        else:
            log.warn(
                "web view on {url} is reachable from other machines; it has no login and shows the display, "
                "readings and server address to anyone who can connect",
                url=self.url,
            )
        return self.port

    def host_allowed(self, header: bytes | None) -> bool:
        if self.port is None:
            return False
        address = self.port.getHost()
        text = None if header is None else header.decode("latin-1")
        return host_allowed(text, address.host, address.port, self.options.hosts)

    @property
    def url(self) -> str:
        address = self.port.getHost()
        host = f"[{address.host}]" if ":" in address.host else address.host
        return f"http://{host}:{address.port}/"

    def stop(self) -> defer.Deferred:
        """Stop listening, end every open stream (pages see the bridge go away) and stop sampling."""
        if self._on_connection_event in self.bridge.listeners:
            self.bridge.listeners.remove(self._on_connection_event)
        for stream in list(self.streams):
            stream.end()
        self._stop_sampling()
        if self.port is None:
            return defer.succeed(None)
        port, self.port = self.port, None
        return defer.maybeDeferred(port.stopListening)

    # -- state ----------------------------------------------------------------------------

    def state(self, with_uptime: bool = False) -> dict:
        """What the page shows: the display (its pixels and its layers), readings, connection and
        per-subject counts, each subscription with the text of its latest error or drop.

        The streamed state leaves out the uptime, which would make every sample a change.
        """
        bridge = self.bridge
        info = bridge.info()
        device = bridge.device
        state = {
            "device": bridge.device_id,
            "driver": info["driver"],
            "version": info["version"],
            "connected": info["connected"],
            "server": info["server"],
            "pixels": None if device is None else [list(colour) for colour in device.snapshot()],
            "low_light": None if device is None else device.low_light,
            "readings": bridge.readings,
            "subscriptions": info["subscriptions"],
            "publications": info["publications"],
            "display": info.get("display"),  # what shows, what waits, which apps loop: the page's legend
        }
        if with_uptime:
            state["uptime"] = info["uptime"]
        return state

    # -- server-sent events ---------------------------------------------------------------

    def open_stream(self, request: server.Request) -> bool:
        """Serve `request` as an event stream; False (and nothing done) when max_streams are open."""
        if len(self.streams) >= self.options.max_streams:
            return False
        self._push_changes()  # brings the open streams and _last_event up to date
        stream = _Stream(request, self.reactor, self.options.stall_timeout)
        request.registerProducer(stream, True)
        stream.write(b"retry: %d\n\n" % RECONNECT_MS)
        if self._last_event is not None:  # None only while the device fails every snapshot
            stream.send(self._last_event)
        self.streams.add(stream)
        request.notifyFinish().addBoth(self._stream_closed, stream)
        if not self._frames.running:
            self._frames.start(FRAME_INTERVAL, now=False)
            self._keep_alive.start(KEEP_ALIVE_INTERVAL, now=False)
        return True

    def _stream_closed(self, _result, stream: _Stream) -> None:
        stream.closed()
        self.streams.discard(stream)
        if not self.streams:
            self._stop_sampling()

    def _stop_sampling(self) -> None:
        for loop in (self._frames, self._keep_alive):
            if loop.running:
                loop.stop()

    def _push_changes(self) -> None:
        try:
            event = b"event: state\ndata: " + _json(self.state()) + b"\n\n"
        except Exception:
            # Keep sampling: a device that fails one snapshot may answer the next.
            log.failure("web view could not read the bridge's state")
            return
        if event == self._last_event:
            return
        self._last_event = event
        for stream in list(self.streams):
            stream.send(event)

    def _send_keep_alive(self) -> None:
        for stream in list(self.streams):
            stream.write(b": keep-alive\n\n")

    def _on_connection_event(self, _event: str) -> None:
        if self.streams:
            self._push_changes()


@implementer(IPushProducer)
class _Stream:
    """One open /events response, registered as its push producer: while the transport has paused it
    (the client is not reading) nothing is written; on resume only the newest state is sent."""

    def __init__(self, request: server.Request, reactor, stall_timeout: float):
        self.request = request
        self.reactor = reactor
        self.stall_timeout = stall_timeout
        self.paused = False
        self._stall: IDelayedCall | None = None
        self._sent: bytes | None = None  # the last state event written
        self._newest: bytes | None = None  # the last state event given to send()

    def send(self, event: bytes) -> None:
        self._newest = event
        if not self.paused:
            self._sent = event
            self.request.write(event)

    def write(self, data: bytes) -> None:
        if not self.paused:
            self.request.write(data)

    def pauseProducing(self) -> None:
        if self.paused:
            return  # the transport says so on every write past its buffer size
        self.paused = True
        self._stall = self.reactor.callLater(self.stall_timeout, self._drop)

    def resumeProducing(self) -> None:
        if not self.paused:
            return
        self.paused = False
        self._cancel_stall()
        if self._newest is not self._sent:
            self.send(self._newest)

    def stopProducing(self) -> None:
        self._cancel_stall()

    def closed(self) -> None:
        self._cancel_stall()
        # A lost connection has already let go of its channel, and with it the producer.
        if self.request.producer is not None and self.request.channel is not None:
            self.request.unregisterProducer()

    def end(self) -> None:
        """Finish the response and close its connection: the page sees the bridge go away."""
        channel = self.request.channel  # finish() lets go of it
        self.closed()
        self.request.finish()
        # An ended EventSource reconnects; over a kept-alive connection it would be served again.
        channel.loseConnection()

    def _drop(self) -> None:
        self._stall = None
        peer = self.request.getClientAddress()
        log.info("web view dropped the event stream to {peer}: it read nothing for {seconds}s",
                 peer=f"{getattr(peer, 'host', peer)}:{getattr(peer, 'port', '')}", seconds=self.stall_timeout)
        # Aborted, not closed: closing would first wait for the client to read what is buffered.
        self.request.channel.transport.abortConnection()

    def _cancel_stall(self) -> None:
        if self._stall is not None and self._stall.active():
            self._stall.cancel()
        self._stall = None


class _Site(server.Site):
    """Answers only requests whose Host header passes `host_allowed`, and keeps no access log: a
    line per page load and /state poll would drown the bridge's lifecycle log."""

    noisy = False

    def __init__(self, root: resource.Resource, host_allowed):
        super().__init__(root)
        self._host_allowed = host_allowed
        self._misdirected = _Misdirected()

    def getResourceFor(self, request: server.Request) -> resource.IResource:
        if not self._host_allowed(request.getHeader(b"host")):
            return self._misdirected
        return super().getResourceFor(request)

    def log(self, request: server.Request) -> None:
        pass


class _Text(resource.Resource):
    """A short plain-text answer with a fixed status, for any method."""

    isLeaf = True

    def __init__(self, code: int, body: bytes):
        super().__init__()
        self.code = code
        self.body = body

    def render(self, request: server.Request) -> bytes:
        request.setResponseCode(self.code)
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        request.setHeader(b"cache-control", b"no-store")
        return self.body


_HOST_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?\Z")


def misdirected_text(host_header: bytes | None) -> bytes:
    """The 421 page: which name was refused and the one key that lets the view answer to it."""
    name = (host_header or b"").decode("ascii", "replace").rsplit(":", 1)[0] if host_header else ""
    if not _HOST_NAME.match(name):
        return (b"this web view answers only to the names it was opened on; open the address the bridge "
                b"logged, or list the name you use in web.hosts of the bridge's config\n")
    return (f"this web view does not answer to the name {name!r}; to open it under that name, add it to the "
            f"bridge's config as web: {{hosts: [{name}]}} and restart the bridge, or open the address the "
            f"bridge logged\n").encode("ascii")


class _Misdirected(_Text):
    def __init__(self):
        super().__init__(421, b"")

    def render(self, request: server.Request) -> bytes:
        self.body = misdirected_text(request.getHeader(b"host"))
        return super().render(request)


class _Root(resource.Resource):
    def getChild(self, path: bytes, request: server.Request) -> resource.IResource:
        return pages.notFound()


class _Page(resource.Resource):
    isLeaf = True

    def __init__(self, view: WebView):
        super().__init__()
        self.view = view
        self.before_state, self.after_state = _page_template()

    def render_GET(self, request: server.Request) -> bytes:
        # "<" escaped inside the JSON so no text in it can end the <script> element it sits in.
        state = _json(self.view.state()).replace(b"<", b"\\u003c")
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        request.setHeader(b"cache-control", b"no-store")
        return self.before_state + state + self.after_state


class _State(resource.Resource):
    isLeaf = True

    def __init__(self, view: WebView):
        super().__init__()
        self.view = view

    def render_GET(self, request: server.Request) -> bytes:
        state = self.view.state(with_uptime=True)
        request.setHeader(b"content-type", b"application/json; charset=utf-8")
        request.setHeader(b"cache-control", b"no-store")
        return _json(state)


class _Events(resource.Resource):
    isLeaf = True

    def __init__(self, view: WebView):
        super().__init__()
        self.view = view
        self.full = _Text(503, b"too many open event streams; close a page of this web view and reload\n")

    def render_GET(self, request: server.Request):
        request.setHeader(b"content-type", b"text/event-stream; charset=utf-8")
        request.setHeader(b"cache-control", b"no-store")
        request.setHeader(b"x-accel-buffering", b"no")  # tells a fronting nginx not to hold events back
        if not self.view.open_stream(request):
            return self.full.render(request)
        return server.NOT_DONE_YET


def start_web_view(
    bridge, host: str = "127.0.0.1", port: int = 8080, *, reactor, options: WebOptions = WebOptions()
) -> WebView:
    """Serve the web view for a running `bridge` on host:port; loopback unless the caller says otherwise."""
    view = WebView(bridge, reactor, options)
    view.listen(host, port)
    return view
