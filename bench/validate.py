"""`bridge validate configs/sense-hat.yml`: cold wall time of the command a user runs most.

Each run is a fresh `bridge` console-script process (interpreter start, imports, YAML, schema and
semantic checks, the one-line verdict), timed from spawn to exit; the figure is the median of
five. No baseline: the target is absolute.
"""

from __future__ import annotations

RUNS = 5
CONFIG = "configs/sense-hat.yml"


def run() -> dict:
    import statistics
    import subprocess
    import sys
    import time
    from pathlib import Path

    from bench.common import REPO

    command = [str(Path(sys.executable).parent / "bridge"), "validate", CONFIG]
    seconds = []
    for _ in range(RUNS):
        started = time.perf_counter()
        done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
        seconds.append(time.perf_counter() - started)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} exited with {done.returncode}:\n{done.stderr}{done.stdout}")
    return {"ours": round(statistics.median(seconds), 3), "baseline": None, "unit": "s"}
