"""Many Pis from one config: a bridge follows its key in a JetStream key-value bucket (follow.py)."""
