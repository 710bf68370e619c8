"""The YAML config: load and validate a file into the typed model the runtime consumes.

The loader and the schema (YAML parser, jsonschema) are imported on first use: the model, the
errors and `bridge.config.isolated` must not bring them into a long-running `bridge run`.
"""

from bridge.config.errors import ConfigError, ConfigFileError, ConfigIssue

__all__ = ["ConfigError", "ConfigFileError", "ConfigIssue", "load_config", "load_stored", "schema_text", "stored_text"]


def __getattr__(name: str):
    if name in ("load_config", "load_stored", "stored_text"):
        from bridge.config import loader
        return getattr(loader, name)
    if name == "schema_text":
        from bridge.config.schema import schema_text
        return schema_text
    raise AttributeError(f"module 'bridge.config' has no attribute {name!r}")
