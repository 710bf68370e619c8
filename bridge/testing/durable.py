"""Durable readings seen from outside, for tests and bench: what a stream holds (read with nats-py),
what a stopped bridge left in its spool, and the kill cycle that the durable path must survive.

The accounting: every reading gets the next spool sequence; below the spool's floor every record
was acked (stored, or a repeat the stream dropped), from the floor on they wait in the spool.
After a graceful stop, readings the stream lacks below the floor were lost.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import nats.errors

from bridge.telemetry.spool import FLOOR_FILE, Spool, directory_name
from bridge.testing.polling import wait_for

PASSING_ERRORS = (nats.errors.TimeoutError, nats.errors.NoRespondersError, nats.errors.ConnectionReconnectingError)


def quietly(call):
    """`call()`, or None while the cluster (or a connection) is failing over."""
    try:
        return call()
    except PASSING_ERRORS:
        return None


def stream_messages(outside, stream: str = "SENSORS") -> list[dict]:
    """Every reading the stream holds, in stream order, with its Nats-Msg-Id as `msg_id`."""
    state = outside.request_json(f"$JS.API.STREAM.INFO.{stream}", timeout=5.0)["state"]
    readings = []
    for sequence in range(state["first_seq"], state["last_seq"] + 1):
        answer = outside.request_json(f"$JS.API.STREAM.MSG.GET.{stream}", {"seq": sequence}, timeout=5.0)["message"]
        reading = json.loads(base64.b64decode(answer["data"]))
        headers = base64.b64decode(answer.get("hdrs", "")).decode()
        reading["msg_id"] = next(line.split(":", 1)[1].strip() for line in headers.splitlines()
                                 if line.startswith("Nats-Msg-Id:"))
        readings.append(reading)
    return readings


def spool_state(state_dir: Path, subject: str) -> tuple[int, list]:
    """The floor and the records left in a publication's spool (read after the bridge stopped)."""
    directory = Path(state_dir) / "spool" / directory_name(subject)
    floor_file = directory / FLOOR_FILE
    floor = int(floor_file.read_text()) if floor_file.exists() else 0
    return floor, Spool(directory, 1 << 40).load().records


def spool_info(bridge, outside) -> dict:
    """The first publication's `spool` figure from `bridge.ID.info`; {} while it does not answer."""
    info = quietly(lambda: bridge.info(outside, timeout=1.0))
    return info["publications"][0].get("spool", {}) if info else {}


def acked(bridge, outside) -> int:
    return spool_info(bridge, outside).get("acked", 0)


def connected_server(bridge, outside) -> str | None:
    info = quietly(lambda: bridge.info(outside, timeout=1.0))
    return info.get("server") if info else None


def kill_cycle(cluster, bridge, outside, kills: int) -> None:
    """`kills` times: kill -9 the node the bridge is connected to, wait until it is on another
    one, start the node again and wait until readings are acked again."""
    for _ in range(kills):
        url = wait_for(lambda: connected_server(bridge, outside), what="the bridge's server")
        node = next(server for server in cluster.servers if server.url == url)
        before = acked(bridge, outside)
        node.kill()
        wait_for(lambda: connected_server(bridge, outside) not in (None, url), timeout=20.0,
                 what="the bridge on another node")
        node.start()
        cluster.wait_jetstream()
        wait_for(lambda: acked(bridge, outside) > before + 5, timeout=30.0, what="readings acked again")


def losses(readings: list[dict], floor: int, leftover: list) -> dict:
    """Of the readings a stopped bridge took: how many the stream lacks below the floor, and how
    many it holds twice. The stream may also hold the record that was in flight at the stop."""
    ids = [reading["msg_id"] for reading in readings]
    in_flight = {leftover[0].msg_id} if leftover else set()
    stored_below_floor = len(set(ids) - in_flight)
    return {"taken": floor + len(leftover), "missing": max(0, floor - stored_below_floor),
            "duplicates": len(ids) - len(set(ids))}
