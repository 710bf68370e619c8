"""Our client and nats-py (the official asyncio client) understand each other.

nats-py runs on its own asyncio loop in a thread; its coroutines come back to the Twisted
reactor as Deferreds, so neither event loop ever blocks the other.
"""

from __future__ import annotations

import asyncio
import threading

import nats
import pytest
import pytest_twisted
from twisted.internet import defer, threads

from bridge.nats import Headers
from tests.harness.nats_client import Collector, connected


class NatsPy:
    """A connected nats-py client living on an asyncio loop in a background thread."""

    def __init__(self, url: str):
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="nats-py", daemon=True)
        self._thread.start()
        self.nc = asyncio.run_coroutine_threadsafe(nats.connect(url, allow_reconnect=False), self.loop).result(10)

    def run(self, coroutine) -> defer.Deferred:
        """Run `coroutine` on the nats-py loop; fires with its result in the reactor thread."""
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        return threads.deferToThread(future.result, 10)

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.nc.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


@pytest.fixture
def natspy(nats_server):
    client = NatsPy(nats_server.url)
    try:
        yield client
    finally:
        client.close()


@pytest_twisted.ensureDeferred
async def test_messages_and_headers_from_nats_py_reach_us(nats_server, natspy, make_client):
    ours = make_client([nats_server.url])
    await connected(ours)
    collector = Collector()
    ours.subscribe("interop.in", collector)
    await ours.flush()
    await natspy.run(natspy.nc.publish("interop.in", b"plain"))
    await natspy.run(natspy.nc.publish("interop.in", b"with headers", headers={"Source": "nats-py", "N": "2"}))
    await natspy.run(natspy.nc.flush())
    plain, with_headers = await collector.wait_for(2)
    assert plain.data == b"plain" and plain.headers is None
    assert with_headers.data == b"with headers"
    assert with_headers.headers.get("Source") == "nats-py"
    assert with_headers.headers.get("N") == "2"


@pytest_twisted.ensureDeferred
async def test_our_messages_and_headers_reach_nats_py(nats_server, natspy, make_client):
    subscription = await natspy.run(natspy.nc.subscribe("interop.out"))
    await natspy.run(natspy.nc.flush())
    ours = make_client([nats_server.url])
    await connected(ours)
    ours.publish("interop.out", b"\x00binary\r\n")
    ours.publish("interop.out", b"{}", headers=Headers([("Content-Type", "application/json"), ("Trace", "t-1")]))
    first = await natspy.run(subscription.next_msg(timeout=5))
    second = await natspy.run(subscription.next_msg(timeout=5))
    assert first.data == b"\x00binary\r\n"
    assert second.data == b"{}"
    assert second.headers == {"Content-Type": "application/json", "Trace": "t-1"}


@pytest_twisted.ensureDeferred
async def test_nats_py_requests_and_we_reply(nats_server, natspy, make_client):
    ours = make_client([nats_server.url])
    await connected(ours)
    ours.subscribe("interop.upper", lambda m: m.respond(m.data.upper(), headers={"Served-By": "twisted"}))
    await ours.flush()
    reply = await natspy.run(natspy.nc.request("interop.upper", b"shout", timeout=5))
    assert reply.data == b"SHOUT"
    assert reply.headers == {"Served-By": "twisted"}


@pytest_twisted.ensureDeferred
async def test_we_request_and_nats_py_replies(nats_server, natspy, make_client):
    async def reverse(msg):
        await msg.respond(msg.data[::-1])

    await natspy.run(natspy.nc.subscribe("interop.reverse", cb=reverse))
    await natspy.run(natspy.nc.flush())
    ours = make_client([nats_server.url])
    await connected(ours)
    replies = await defer.gatherResults([ours.request("interop.reverse", b"abc%d" % i, timeout=5) for i in range(3)])
    assert [r.data for r in replies] == [b"0cba", b"1cba", b"2cba"]
