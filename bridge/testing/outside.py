"""The official client nats-py, driven synchronously from tests: the "outside world" talking to a bridge.

nats-py is asyncio-only; it runs here on its own event loop in a background thread, so a plain
test (or one running a bridge in a subprocess) can publish, request and collect messages.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import queue
import threading
from typing import Any

import nats


class OutsideClient:
    def __init__(self, servers: list[str] | str, **options: Any):
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="nats-py", daemon=True)
        self._thread.start()
        options.setdefault("max_reconnect_attempts", -1)
        options.setdefault("reconnect_time_wait", 0.1)
        servers = [servers] if isinstance(servers, str) else servers
        self.nc = self._run(nats.connect(servers=servers, **options))

    def submit(self, coroutine) -> "concurrent.futures.Future":
        """Start `coroutine` on the client's loop; its result arrives in the returned future."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop)

    def _run(self, coroutine, timeout: float = 30.0):
        return self.submit(coroutine).result(timeout)

    def publish(self, subject: str, payload: bytes | str = b"", reply: str = "", headers: dict | None = None) -> None:
        data = payload.encode() if isinstance(payload, str) else payload
        self._run(self.nc.publish(subject, data, reply=reply, headers=headers))

    def flush(self, timeout: float = 10.0) -> None:
        self._run(self.nc.flush(timeout=timeout))

    def request(self, subject: str, payload: bytes | str = b"", timeout: float = 5.0, headers: dict | None = None):
        data = payload.encode() if isinstance(payload, str) else payload
        return self._run(self.nc.request(subject, data, timeout=timeout, headers=headers), timeout + 5)

    def request_json(self, subject: str, payload: Any = b"", timeout: float = 5.0) -> Any:
        if not isinstance(payload, (bytes, str)):
            payload = json.dumps(payload)
        return json.loads(self.request(subject, payload, timeout).data)

    def subscribe(self, subject: str, queue_group: str = "") -> "Inbox":
        inbox = Inbox()

        async def deliver(msg):
            inbox.messages.put(msg)

        inbox.subscription = self._run(self.nc.subscribe(subject, queue=queue_group, cb=deliver))
        self.flush()
        return inbox

    def close(self) -> None:
        try:
            self._run(self.nc.close(), timeout=10)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
            self._loop.close()

    def __enter__(self) -> "OutsideClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Inbox:
    """Messages received on one subscription, in arrival order."""

    def __init__(self):
        self.messages: queue.Queue = queue.Queue()
        self.subscription = None

    def next(self, timeout: float = 10.0):
        try:
            return self.messages.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no message within {timeout}s") from None

    def next_json(self, timeout: float = 10.0) -> Any:
        return json.loads(self.next(timeout).data)

    def drain(self) -> list:
        items = []
        while True:
            try:
                items.append(self.messages.get_nowait())
            except queue.Empty:
                return items
