"""Run the benchmarks: JSON lines on stdout, progress and a human table on stderr.

    python -m bench                  # all that exist, in the registry's order
    python -m bench parser latency   # a subset (still printed in the registry's order)
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
import traceback

from bench import BENCHMARKS, Figure

ROW_KEYS = ("ours", "baseline", "unit")


def main(argv: list[str]) -> int:
    known = {figure.name: figure for figure in BENCHMARKS}
    unknown = [name for name in argv if name not in known]
    if unknown:
        print(f"bench: unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(known)}", file=sys.stderr)
        return 2
    requested = set(argv) or set(known)
    status = 0
    rows = []
    for figure in BENCHMARKS:
        name = figure.name
        if name not in requested:
            continue
        if importlib.util.find_spec(f"bench.{name}") is None:
            if argv:  # asked for by name: say why nothing comes out
                print(f"bench: {name}: bench/{name}.py is not written yet", file=sys.stderr)
                status = 1
            continue
        print(f"bench: running {name} ...", file=sys.stderr, flush=True)
        try:
            row = make_row(figure, importlib.import_module(f"bench.{name}").run())
        except Exception:
            traceback.print_exc()
            print(f"bench: {name} failed; no figure for it", file=sys.stderr)
            status = 1
            continue
        print(json.dumps(row), flush=True)
        rows.append((row, figure.better))
    if rows:
        print_table(rows)
    return status


def make_row(figure: Figure, result: dict) -> dict:
    missing = [key for key in ROW_KEYS if key not in result]
    if missing:
        raise ValueError(f"bench.{figure.name}.run() did not return {', '.join(missing)}")
    ours, baseline = result["ours"], result["baseline"]
    if baseline is None:
        ratio = None
    else:
        ratio = round(result.get("ratio", ours / baseline), 2)
    extra = {key: value for key, value in result.items() if key not in (*ROW_KEYS, "ratio")}
    return {"name": figure.name, "ours": ours, "baseline": baseline, "unit": result["unit"], "ratio": ratio,
            "target": figure.target, "goal": figure.goal, **extra}  # fmt: skip


def print_table(rows: list[tuple[dict, str]]) -> None:
    header = ("figure", "ours", "baseline", "unit", "ratio", "target", "met", "goal", "reached")
    lines = [header]
    for row, better in rows:
        measured = row["ours"] if row["ratio"] is None else row["ratio"]
        sign = "≥ " if better == "higher" else "≤ "
        goal = row["goal"]
        lines.append((
            row["name"], number(row["ours"]), number(row["baseline"]), row["unit"], number(row["ratio"]),
            sign + number(row["target"]), "yes" if meets(measured, row["target"], better) else "NO",
            "-" if goal is None else sign + number(goal),
            "-" if goal is None else ("yes" if meets(measured, goal, better) else "no"),
        ))  # fmt: skip
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    print(file=sys.stderr)
    for line in lines:
        print("  ".join(cell.rjust(width) if i in (1, 2, 4) else cell.ljust(width)
                        for i, (cell, width) in enumerate(zip(line, widths))).rstrip(), file=sys.stderr)  # fmt: skip


def meets(measured: float, bound: float, better: str) -> bool:
    return measured >= bound if better == "higher" else measured <= bound


def number(value) -> str:
    if value is None:
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
