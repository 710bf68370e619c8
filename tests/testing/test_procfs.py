"""bridge/testing/procfs.py: CPU clock ticks from /proc, the CPU figures of `make bench`.

Busy work here is measured in CPU time (`time.thread_time`), never in wall-clock time, and the
assertions leave half of it as margin for the 10 ms resolution of a tick.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

from bridge.testing.procfs import CLOCK_TICKS_PER_SECOND, cpu_ticks, stat_fields, thread_cpu_ticks, utime_stime

SPIN_SECONDS = 0.2  # of the spinning thread's own CPU: 20 ticks at 100 Hz
AT_LEAST = int(SPIN_SECONDS * CLOCK_TICKS_PER_SECOND / 2)
SPIN = f"import time\nend = time.thread_time() + {SPIN_SECONDS}\nwhile time.thread_time() < end: pass\n"


def spin(seconds: float = SPIN_SECONDS) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def test_a_stat_line_is_read_after_the_last_parenthesis_of_comm():
    line = b"4242 (a) (b c) R 1 2 3 4 5 6 7 8 9 10 111 222 333 444 20 0 1 0"
    assert stat_fields(line)[0] == b"R"
    assert utime_stime(line) == 111 + 222


def test_samples_never_go_down_while_the_process_works():
    samples = []
    for _ in range(5):
        spin(SPIN_SECONDS / 5)
        samples.append(cpu_ticks(os.getpid()))
    assert samples == sorted(samples)
    assert samples[-1] - samples[0] >= AT_LEAST * 4 // 5 - 1


def test_a_thread_that_spun_and_ended_still_counts():
    before = cpu_ticks(os.getpid())
    spinner = threading.Thread(target=spin)
    spinner.start()
    spinner.join()  # the main thread sleeps meanwhile
    assert cpu_ticks(os.getpid()) - before >= AT_LEAST


def test_a_live_second_thread_that_spins_raises_the_total_and_its_own_count():
    spun = threading.Event()
    leave = threading.Event()
    ids = []

    def spin_then_wait():
        ids.append(threading.get_native_id())
        spin()
        spun.set()
        leave.wait()

    before = cpu_ticks(os.getpid())
    spinner = threading.Thread(target=spin_then_wait)
    spinner.start()
    try:
        spun.wait()
        total, ticks = cpu_ticks(os.getpid()), thread_cpu_ticks(os.getpid())
    finally:
        leave.set()
        spinner.join()
    assert total - before >= AT_LEAST
    assert ticks[ids[0]] >= AT_LEAST
    assert os.getpid() in ticks  # the main thread's id is the process's


def test_a_live_child_that_spins_raises_its_parents_total():
    before = cpu_ticks(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", SPIN + "print('spun', flush=True)\ninput()\n"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline() == "spun\n"
        during = cpu_ticks(os.getpid())
    finally:
        child.communicate("")
    assert during - before >= AT_LEAST


def test_a_child_that_ended_still_counts():
    before = cpu_ticks(os.getpid())
    subprocess.run([sys.executable, "-c", SPIN], check=True)
    assert cpu_ticks(os.getpid()) - before >= AT_LEAST
