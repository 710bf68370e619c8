"""Log output for the long-running commands: human text or one JSON object per line."""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from typing import TextIO

from twisted.logger import (
    FilteringLogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    formatEvent,
    globalLogBeginner,
    textFileLogObserver,
)


def json_line_observer(stream: TextIO):
    """One JSON object per line (what log shippers expect), unlike twisted's RFC 7464 JSON-seq."""

    def observe(event: dict) -> None:
        record = {
            "time": datetime.fromtimestamp(event.get("log_time", 0), timezone.utc).isoformat(timespec="milliseconds"),
            "level": event["log_level"].name if "log_level" in event else "info",
            "namespace": event.get("log_namespace"),
            "message": formatEvent(event),
        }
        failure = event.get("log_failure")
        if failure is not None:
            record["traceback"] = failure.getTraceback()
        stream.write(json.dumps(record) + "\n")
        stream.flush()

    return observe


def start_logging(log_format: str = "text", stream: TextIO | None = None, level: LogLevel = LogLevel.info) -> None:
    stream = stream or sys.stderr
    observer = json_line_observer(stream) if log_format == "json" else textFileLogObserver(stream, timeFormat="%Y-%m-%dT%H:%M:%S%z")
    predicate = LogLevelFilterPredicate(defaultLogLevel=level)
    # ClientService announces each scheduled retry; the NATS client already logs why an attempt
    # failed, and a bridge that retries forever should not write two lines per attempt.
    predicate.setLogLevelForNamespace("twisted.application._client_service", LogLevel.warn)
    globalLogBeginner.beginLoggingTo([FilteringLogObserver(observer, [predicate])], redirectStandardIO=False)
