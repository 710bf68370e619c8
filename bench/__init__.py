"""`python -m bench`: the project's performance figures, each against nats-py in the same run.

Every figure is a module `bench/<name>.py` exposing `run() -> dict` with the keys `ours`,
`baseline` (None when nothing compares) and `unit`, and optionally `ratio` when the module
compares its rounds pairwise (bench.common.compare_rounds); extra keys are passed through. The
harness adds `name`, `ratio` (ours / baseline unless the module gave one; None without a
baseline), `target` and `goal` from the registry below, and prints the row as one JSON line. A
name listed here whose module does not exist yet is skipped: no row, no guess.
"""

from typing import NamedTuple


class Figure(NamedTuple):
    """A row of `make bench`: which way is better, what it must reach and what it aims for.

    `better` applies to the ratio, or to `ours` itself when there is no baseline; so do `target`
    and `goal` (None: no goal set).
    """

    name: str
    better: str  # "higher" or "lower"
    target: float
    goal: float | None = None


# In the order the rows are printed.
BENCHMARKS = (
    Figure("parser", "higher", 1.0, 1.5),  # the worst shape's ratio
    Figure("pubsub", "higher", 1.0),
    Figure("pubsub_mixed", "higher", 1.2, 2.0),
    Figure("device_throughput", "higher", 1.2, 1.5),
    Figure("device_cpu_per_msg", "lower", 1.0, 0.67),
    Figure("latency", "lower", 1.2, 0.8),  # p50
    Figure("failover_kill", "lower", 2.0),
    Figure("failover_stop", "lower", 30.0),
    Figure("rss", "lower", 1.35, 1.2),
    Figure("rss_flooded", "lower", 1.25),
    Figure("validate", "lower", 0.8),
    Figure("reload_loss", "lower", 0),
    Figure("fleet_discovery", "lower", 2.0),
    Figure("fleet_rollout", "lower", 3.0, 1.0),
    Figure("fleet_rollout_wait", "lower", 3.0, 1.0),
    Figure("ha_discovery", "lower", 3.0),
    Figure("telemetry_loss", "lower", 0),
    Figure("spool_rate", "higher", 1000),
    Figure("notify_latency", "lower", 105.0),  # ms: one scroll step (100 ms) + 5 ms
)
