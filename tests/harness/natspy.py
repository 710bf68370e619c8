"""nats-py from Twisted tests: its coroutines run on `OutsideClient`'s asyncio loop in a thread
and come back to the reactor as Deferreds, so neither event loop ever blocks the other."""

from __future__ import annotations

from twisted.internet import defer, threads

from bridge.testing.outside import OutsideClient


class NatsPy(OutsideClient):
    """A connected nats-py client that does not reconnect; `js` is its JetStream context."""

    def __init__(self, url: str):
        super().__init__(url, allow_reconnect=False)
        self.js = self.nc.jetstream()

    def run(self, coroutine) -> defer.Deferred:
        """Run `coroutine` on the nats-py loop; fires with its result in the reactor thread."""
        return threads.deferToThread(self.submit(coroutine).result, 10)
