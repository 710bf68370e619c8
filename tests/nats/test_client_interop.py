"""Our client and nats-py (the official asyncio client) understand each other.

nats-py runs on its own asyncio loop in a thread; its coroutines come back to the Twisted
reactor as Deferreds, so neither event loop ever blocks the other.
"""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import defer

from bridge.nats import Headers
from tests.harness.nats_client import Collector, connected
from tests.harness.natspy import NatsPy


@pytest.fixture
def natspy(nats_server):
    with NatsPy(nats_server.url) as client:
        yield client


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
