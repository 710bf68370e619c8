"""Human units in the config file: durations (`250ms`, `1m30s`) and sizes (`512KiB`, `8MiB`)."""

from __future__ import annotations

import re

_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
DURATION_PATTERN = r"^(\d+(\.\d+)?(ms|s|m|h))+$"  # the schema's $defs/duration uses the same

_SIZE_UNITS = {"": 1, "B": 1, "KB": 1000, "MB": 1000**2, "GB": 1000**3, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3}
SIZE_PATTERN = r"^(\d+)\s*(B|KB|MB|GB|KiB|MiB|GiB)?$"  # the schema's $defs/size uses the same
_SIZE = re.compile(SIZE_PATTERN)


def parse_duration(value: str | int | float) -> float:
    """Seconds from a number of seconds or text like '250ms', '10s', '1h30m'."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(f"a duration cannot be negative: {value!r}")
        return float(value)
    text = value.strip()
    if not re.fullmatch(DURATION_PATTERN, text):
        raise ValueError(f"not a duration: {value!r}")
    return sum(float(number) * _DURATION_UNITS[unit] for number, unit in _DURATION_PART.findall(text))


def parse_size(value: str | int) -> int:
    """Bytes from a number of bytes or text like '512KiB', '8MiB'."""
    if isinstance(value, bool):
        raise ValueError(f"not a size: {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"a size cannot be negative: {value!r}")
        return value
    match = _SIZE.match(value.strip())
    if not match:
        raise ValueError(f"not a size: {value!r}")
    return int(match.group(1)) * _SIZE_UNITS[match.group(2) or ""]


_RATE_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}
RATE_PATTERN = r"^(\d+(?:\.\d+)?)/(s|m|h)$"  # the schema's subscription rate uses the same


def parse_rate(value: str | int | float) -> float:
    """Messages per second from a number (per second) or text like '20/s', '100/m', '1/h'."""
    if isinstance(value, bool):
        raise ValueError(f"not a rate: {value!r}")
    if isinstance(value, (int, float)):
        if value <= 0:
            raise ValueError(f"a rate must be more than 0: {value!r}")
        return float(value)
    match = re.match(RATE_PATTERN, value.strip())
    if not match or float(match.group(1)) <= 0:
        raise ValueError(f"not a rate: {value!r}")
    return float(match.group(1)) / _RATE_UNITS[match.group(2)]


def format_rate(per_second: float) -> str:
    """For `--print`: 20.0 -> '20/s', 0.5 -> '30/m'."""
    for unit in ("s", "m", "h"):
        count = per_second * _RATE_UNITS[unit]
        if abs(count - round(count)) < 1e-9 and round(count) > 0:
            return f"{round(count)}/{unit}"
    return format(per_second, "g")


def format_duration(seconds: float) -> str:
    """The shortest exact spelling, for `--print`: 0.1 -> '100ms', 300 -> '5m', 90 -> '1m30s'."""
    millis = round(seconds * 1000)
    if abs(seconds * 1000 - millis) > 1e-6:
        return format(seconds, "f").rstrip("0").rstrip(".") + "s"
    if millis == 0:
        return "0s"
    if millis % 1000:
        return f"{millis}ms"
    parts = []
    for unit, size in (("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        count, millis = divmod(millis, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def format_size(size: int) -> str:
    for unit in ("GiB", "MiB", "KiB"):
        if size and size % _SIZE_UNITS[unit] == 0:
            return f"{size // _SIZE_UNITS[unit]}{unit}"
    return str(size)


def parse_listen(text: str) -> tuple[str, int]:
    """'127.0.0.1:8080' / '[::1]:8080' / ':8080' -> (host, port); loopback when the host is left out."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected HOST:PORT with a port 0..65535, got {text!r}")
    return (host.strip("[]") or "127.0.0.1"), int(port)
