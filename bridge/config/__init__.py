"""The YAML config: load and validate a file into the typed model the runtime consumes."""

from bridge.config.errors import ConfigError, ConfigFileError, ConfigIssue
from bridge.config.loader import load_config, load_stored, stored_text
from bridge.config.schema import schema_text

__all__ = ["ConfigError", "ConfigFileError", "ConfigIssue", "load_config", "load_stored", "schema_text", "stored_text"]
