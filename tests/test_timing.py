"""`kerasnas.timing.running_time`: a stopped process's pause is left out of
the seconds a run reports; a process that is running, even one holding the
GIL in a long C call, loses nothing."""

import os
import signal
import subprocess
import sys
import time

import pytest

CHILD = r"""
import sys, time
from kerasnas.timing import running_time, stopped_seconds
work = float(sys.argv[1])
start, wall = running_time(), time.perf_counter()
print("ready", flush=True)
# Busy until `work` seconds of running time have passed, as a training
# epoch would be; then how much wall-clock time that took.
while running_time() - start < work:
    sum(range(10000))
print(time.perf_counter() - wall, running_time() - start, stopped_seconds(), flush=True)
"""


def _child(work, stop_for=None):
    process = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(work)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout.readline().strip() == "ready"
        if stop_for:
            time.sleep(0.5)
            os.kill(process.pid, signal.SIGSTOP)
            time.sleep(stop_for)
            os.kill(process.pid, signal.SIGCONT)
        wall, running, stopped = map(float, process.stdout.readline().split())
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
    return wall, running, stopped


@pytest.mark.skipif(not hasattr(signal, "SIGSTOP"), reason="needs POSIX signals")
def test_a_stop_is_left_out_of_the_running_time():
    wall, running, stopped = _child(work=2.0, stop_for=3.0)
    # The child ran 2 s of running time, which took the 3 s stop longer in
    # wall-clock time; the stop (less at most a tick or two) was measured.
    assert running == pytest.approx(2.0, abs=0.1)
    assert wall >= 4.5
    assert 2.5 <= stopped <= 3.5
    assert wall - stopped == pytest.approx(running, abs=0.6)


def test_a_running_process_loses_nothing():
    wall, running, stopped = _child(work=1.5)
    assert stopped == 0.0
    assert running == pytest.approx(1.5, abs=0.1)
    assert wall == pytest.approx(running, abs=0.1)


def test_a_long_call_holding_the_gil_is_not_a_stop():
    # `sum` over a range is one C call that keeps the GIL: the ticker thread
    # cannot tick during it, but the process used the CPU all along.
    code = (
        "import time\n"
        "from kerasnas.timing import running_time, stopped_seconds\n"
        "start, wall = running_time(), time.perf_counter()\n"
        "while time.perf_counter() - wall < 1.5:\n"
        "    sum(range(10**8))\n"
        "print(time.perf_counter() - wall, running_time() - start, stopped_seconds())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    wall, running, stopped = map(float, out.stdout.split())
    assert wall > 1.5
    assert stopped == 0.0
    assert running == pytest.approx(wall, abs=0.05)
