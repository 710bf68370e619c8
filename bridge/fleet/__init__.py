"""Many Pis from one config: a bridge follows its key in a JetStream key-value bucket (follow.py);
sources.py names where a config came from (`file:PATH`, `kv:BUCKET/KEY@REVISION`)."""
