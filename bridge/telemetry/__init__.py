"""Sensor readings on their way out: filters that make them true and a spool that keeps them across outages."""
