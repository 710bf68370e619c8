"""What /proc says about a process (Linux): the figures benchmarks and tests compare."""

from __future__ import annotations

import os

CLOCK_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def vm_rss_mib(pid: int) -> float:
    """The process's resident memory in MiB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def thread_cpu_ticks(pid: int) -> dict[int, int]:
    """utime + stime of each live thread of `pid`, in clock ticks, by thread id.

    A thread that ends between listing and reading is left out: its time is gone with it.
    """
    ticks = {}
    for name in os.listdir(f"/proc/{pid}/task"):
        try:
            ticks[int(name)] = _utime_stime(f"/proc/{pid}/task/{name}/stat")
        except (FileNotFoundError, ProcessLookupError):
            continue
    return ticks


def cpu_ticks(pid: int) -> int:
    """CPU used so far by `pid` (all its threads, ended ones too), by the children it reaped and by
    its live descendants, in clock ticks: a sample to subtract from a later one.

    The process's own line, not the sum of `thread_cpu_ticks`: a thread that ended takes its
    line in /proc/PID/task with it, but the kernel keeps its time in the process's total.
    """
    with open(f"/proc/{pid}/stat", "rb") as stat:
        fields = stat_fields(stat.read())
    total = sum(int(field) for field in fields[11:15])  # utime, stime, cutime, cstime
    for child in _children(pid):
        try:
            total += cpu_ticks(child)
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def utime_stime(stat: bytes) -> int:
    """utime + stime (fields 14 and 15) of a /proc stat line."""
    fields = stat_fields(stat)
    return int(fields[11]) + int(fields[12])


def stat_fields(stat: bytes) -> list[bytes]:
    """The fields of a /proc stat line after `comm`, which may hold spaces and parentheses: index 0
    is `state` (field 3)."""
    return stat[stat.rindex(b")") + 2:].split()


def _utime_stime(stat_path: str) -> int:
    with open(stat_path, "rb") as stat:
        return utime_stime(stat.read())


def _children(pid: int) -> list[int]:
    children = []
    for name in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{name}/children") as listing:
                children.extend(int(child) for child in listing.read().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return children
