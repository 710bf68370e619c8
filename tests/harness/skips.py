"""How `make test` reports skips: one line per reason."""

from __future__ import annotations


def skip_reason(report) -> str:
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    return reason.removeprefix("Skipped: ")


def skip_summary(reports) -> list[str]:
    """One line per reason, most frequent first: a missing server flavour skips a hundred tests for
    one reason, which is one thing to fix, not a hundred lines to read."""
    counts: dict[str, int] = {}
    for report in reports:
        reason = skip_reason(report)
        counts[reason] = counts.get(reason, 0) + 1
    return [f"SKIPPED {count} test{'s' if count > 1 else ''}: {reason}"
            for reason, count in sorted(counts.items(), key=lambda item: (-item[1], item[0]))]
