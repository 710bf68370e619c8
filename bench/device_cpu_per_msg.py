"""The consumer's CPU µs per message in `device_throughput`, ours ÷ nats-py (lower is better).

Wall-clock rates on a shared 2-core box move with the neighbours' load; the CPU a process used
for the same work moves much less. The rounds are `device_throughput`'s (run once for both rows):
each round's CPU of `bridge run` against that of the nats-py consumer, both read from
/proc/PID/task/*/stat by the driver, the median of the per-round ratios.
"""

from __future__ import annotations


def run() -> dict:
    from bench.common import compare_rounds, cpu_us_per_message
    from bench.device_throughput import measured_rounds

    ours, theirs = measured_rounds()
    our_cpu, their_cpu, ratio = compare_rounds(
        [cpu_us_per_message(r["cpu_ticks"], r["messages"]) for r in ours],
        [cpu_us_per_message(r["cpu_ticks"], r["messages"]) for r in theirs],
    )
    return {"ours": round(our_cpu, 2), "baseline": round(their_cpu, 2), "unit": "CPU µs/msg", "ratio": ratio}
