"""JetStream on top of the core client: the stream API (streams.py) and key-value buckets (kv.py).

The core client never imports this package.
"""
