"""Timestamps as the bridge writes and reads them: RFC 3339, UTC, milliseconds and a `Z`."""

from __future__ import annotations

from datetime import datetime, timezone


def format_utc(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def utc_now() -> str:
    return format_utc(datetime.now(timezone.utc))


def parse(text: str | None) -> datetime | None:
    """An RFC 3339 time (ours, or a server's with nanoseconds) as an aware datetime; None if it is not one."""
    if not text:
        return None
    text = text.replace("Z", "+00:00")
    head, dot, rest = text.partition(".")
    if dot:  # Python 3.10's fromisoformat takes at most 6 fractional digits
        digits = len(rest) - len(rest.lstrip("0123456789"))
        text = head + "." + rest[:min(digits, 6)] + rest[digits:]
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None
