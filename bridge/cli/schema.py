"""`bridge schema`: the JSON Schema (2020-12) of the config file, or of a stored config, for editors and CI."""

from __future__ import annotations

import argparse
import sys

from bridge.cli.exit import ExitStatus
from bridge.config.schema import schema_text, stored_schema_text


def command(args: argparse.Namespace) -> int:
    sys.stdout.write(stored_schema_text() if args.stored else schema_text())
    return ExitStatus.OK
