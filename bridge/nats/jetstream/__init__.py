"""JetStream on top of the core client: the API request helper (api.py), streams (streams.py)
and key-value buckets (kv.py), which take the `JetStream` context as an argument.

The core client never imports this package; streams and kv import api, never each other.
"""

from bridge.nats.jetstream.api import API_PREFIX
from bridge.nats.jetstream.kv import KeyValue, KeyWatcher, KvEntry, create_key_value, key_value
from bridge.nats.jetstream.streams import JetStream, PubAck

__all__ = ["API_PREFIX", "JetStream", "KeyValue", "KeyWatcher", "KvEntry", "PubAck", "create_key_value", "key_value"]
