"""`python -m bench`: the project's performance figures, each against nats-py in the same run.

Every figure is a module `bench/<name>.py` exposing `run() -> dict` with the keys `ours`,
`baseline` (None when nothing compares), `unit` and `target`; extra keys are passed through. The
harness adds `name` and `ratio` (ours / baseline, None without a baseline) and prints the row as
one JSON line. A name listed here whose module does not exist yet is skipped: no row, no guess.
"""

# (name, which way is better) in the order the rows are printed. Direction applies to the ratio,
# or to `ours` itself when there is no baseline.
BENCHMARKS = (
    ("parser", "higher"),
    ("pubsub", "higher"),
    ("pubsub_mixed", "higher"),
    ("device_throughput", "higher"),
    ("latency", "lower"),
    ("failover_kill", "lower"),
    ("failover_stop", "lower"),
    ("rss", "lower"),
    ("rss_flooded", "lower"),
    ("validate", "lower"),
    ("reload_loss", "lower"),
    ("fleet_discovery", "lower"),
    ("fleet_rollout", "lower"),
    ("fleet_rollout_wait", "lower"),
)
