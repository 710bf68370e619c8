"""A publication's `durable:` block: its readings go through a JetStream stream, spooled on disk until acked."""

from __future__ import annotations

from dataclasses import dataclass

MIN_SPOOL = 64 * 1024  # below this a spool holds too few readings to ride out an outage


@dataclass(frozen=True)
class DurableConfig:
    stream: str = "SENSORS"
    spool: int = 16 * 1024 * 1024  # bytes of unacked readings kept on disk; the oldest go past it
