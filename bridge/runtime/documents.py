"""The JSON documents the bridge publishes: its public contract, built in this one place.

- status, on `bridge.ID.status`: `{"device", "status", "version", "time"}` with status `online`
  (connected), `degraded` (connected, but a device call hangs: `hung` lists them) or `offline`
  (graceful stop).
- a reading, on a publication's subject: `{"device", "sensor", "value", "raw"?, "unit"?, "time"}`; `raw`
  only when the publication has filters or compensation.
- info, the reply on `bridge.ID.info`: see `info_document`.

Times are RFC 3339 UTC with milliseconds and a `Z` (`bridge.timestamps`). The docs' page
"What the bridge publishes" documents the same fields; a change here is a change for every consumer.
"""

from __future__ import annotations

import json
from typing import Any, Sequence

from bridge.timestamps import utc_now


def encode(document: dict) -> bytes:
    return json.dumps(document).encode()


def status_document(device_id: str, status: str, version: str, hung: Sequence[dict] = (), config: str | None = None) -> dict:
    """`config`: where the config came from (`file:PATH`, `kv:BUCKET/KEY@REV`): the status stream
    then tells `bridge deploy --wait` which Pis follow a key, even those that answer late."""
    document = {"device": device_id, "status": status, "version": version, "time": utc_now()}
    if config is not None:
        document["config"] = config
    if hung:
        document["hung"] = list(hung)
    return document


def reading_document(device_id: str, sensor: str, value: Any, unit: str | None, raw: Any = None) -> dict:
    """`raw`: what the sensor read before compensation and filters made it `value`; given only when they ran."""
    document = {"device": device_id, "sensor": sensor, "value": value}
    if raw is not None:
        document["raw"] = raw
    if unit is not None:
        document["unit"] = unit
    document["time"] = utc_now()
    return document


def info_document(
    *,
    device_id: str,
    driver: str,
    version: str,
    state: str,
    uptime: float,
    server: str | None,
    connected: bool,
    hung: Sequence[dict],
    subscriptions: Sequence[dict],
    removed_subscriptions: dict,
    publications: Sequence[dict],
    bad_requests: int,
) -> dict:
    """`health` is `degraded` while a device call hangs (`hung` says which), else `ok`.

    `removed_subscriptions` sums the counts of subscriptions a reload removed, including what
    their queued messages did afterwards, and `pending` of those still queued; `bad_requests`
    counts info requests that could not be answered (a reply subject the server would refuse).
    """
    return {
        "device": device_id,
        "driver": driver,
        "version": version,
        "state": state,
        "health": "degraded" if hung else "ok",
        "hung": list(hung),
        "uptime": round(uptime, 3),
        "server": server,
        "connected": connected,
        "subscriptions": list(subscriptions),
        "removed_subscriptions": removed_subscriptions,
        "publications": list(publications),
        "bad_requests": bad_requests,
    }
