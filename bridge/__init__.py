"""Drive Raspberry Pi Sense HATs over NATS, declaratively."""

__version__ = "0.1.0"
