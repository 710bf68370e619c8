"""What /proc says about a process (Linux): the figures benchmarks and tests compare."""

from __future__ import annotations


def vm_rss_mib(pid: int) -> float:
    """The process's resident memory in MiB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")
