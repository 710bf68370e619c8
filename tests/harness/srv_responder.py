"""Stand-in bridges for the `$SRV` side only: nats-py subscribers that answer `$SRV.INFO.bridge` and
`$SRV.STATS.bridge` as a bridge would, with metadata the test chooses at each request, and as late
as it chooses. What `bridge fleet` and `bridge deploy` read from a fleet, without running one."""

from __future__ import annotations

import asyncio
import json
from typing import Awaitable, Callable

from bridge.runtime.srv import Identity, info_response, new_instance_id, stats_response

Metadata = Callable[[], Awaitable[dict]]


class FakeBridge:
    """Answers `$SRV.INFO.bridge` / `$SRV.STATS.bridge` after `delay` s with `await metadata()`
    (the device id added); `answered` counts its answers; `stop()` unsubscribes. `announce`: like a
    real bridge it publishes its status (`online` with its `config` at start, `offline` at stop)."""

    def __init__(self, nats_py, device: str, metadata: Metadata | dict | None = None, delay: float = 0.0,
                 announce: bool = False):
        self.nats_py = nats_py
        self.device = device
        self.delay = delay
        self.announce = announce
        self.instance_id = new_instance_id()
        self._metadata = metadata
        self._subscriptions = []
        self.answered = 0

    async def metadata(self) -> dict:
        given = self._metadata
        found = await given() if callable(given) else dict(given or {})
        return {"device": self.device, "host": "fake", "driver": "memory", **found}

    def start(self) -> "FakeBridge":
        async def answer(msg, build):
            await asyncio.sleep(self.delay)
            identity = Identity(self.instance_id, "0.0.0", await self.metadata())
            await self.nats_py.nc.publish(msg.reply, json.dumps(build(identity)).encode())
            self.answered += 1

        async def answer_info(msg):
            await answer(msg, lambda identity: info_response(identity, []))

        async def answer_stats(msg):
            await answer(msg, lambda identity: stats_response(identity, "2026-01-01T00:00:00.000Z", []))

        async def subscribe():
            for verb, callback in (("INFO", answer_info), ("STATS", answer_stats)):
                self._subscriptions.append(await self.nats_py.nc.subscribe(f"$SRV.{verb}.bridge", cb=callback))
            if self.announce:
                await self._publish_status("online")
            await self.nats_py.nc.flush()

        self.nats_py._run(subscribe())
        return self

    def stop(self) -> None:
        async def unsubscribe():
            for subscription in self._subscriptions:
                await subscription.unsubscribe()
            if self.announce:
                await self._publish_status("offline")
                await self.nats_py.nc.flush()

        self.nats_py._run(unsubscribe())
        self._subscriptions = []

    async def _publish_status(self, status: str) -> None:
        metadata = await self.metadata()
        document = {"device": self.device, "status": status, "version": "0.0.0", "time": "2026-01-01T00:00:00.000Z",
                    "config": metadata.get("config")}
        await self.nats_py.nc.publish(f"bridge.{self.device}.status", json.dumps(document).encode())

    def __enter__(self) -> "FakeBridge":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
