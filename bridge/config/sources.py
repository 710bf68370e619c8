"""Where a bridge's config came from, as one string: `file:PATH` or `kv:BUCKET/KEY@REVISION`.

A bridge reports its source in its `$SRV` metadata `config`; a following bridge also names the
stored revision this way in log lines and config error positions. `bridge fleet` reads the
metadata back with `parse_source`.
"""

from __future__ import annotations

FILE = "file:"
KV = "kv:"


def file_source(path: str) -> str:
    return f"{FILE}{path}"


def kv_key(bucket: str, key: str) -> str:
    """A key without a revision, as messages about the key (not one revision of it) name it."""
    return f"{KV}{bucket}/{key}"


def kv_source(bucket: str, key: str, revision: int) -> str:
    return f"{kv_key(bucket, key)}@{revision}"


def parse_source(source: str | None) -> dict:
    """`{"file", "key", "revision"}` of a source string, None where it does not say; `key` is BUCKET/KEY."""
    parsed = {"file": None, "key": None, "revision": None}
    if not source:
        return parsed
    if source.startswith(FILE):
        parsed["file"] = source[len(FILE):]
    elif source.startswith(KV):
        key, _, revision = source[len(KV):].partition("@")  # no `@` (or `@0`): no revision applied yet
        parsed["key"] = key or None
        parsed["revision"] = int(revision) or None if revision.isdigit() else None
    return parsed
