"""Seconds that do not count the time a process was stopped.

The cost a run reports (seconds per epoch, per ranked architecture, per
split) is wall-clock time, and wall-clock time also counts the time a
process was stopped rather than running: a `SIGSTOP` (`kill -STOP`, e.g. to
take a benchmark on a quiet machine, then `kill -CONT`).
`running_time()` is a monotonic clock that leaves those out: a daemon
thread ticks every `TICK` seconds, and a gap since the last tick longer
than `GAP` seconds in which the process used less than `IDLE_CPU` of a core
(it was not running; a process that holds the GIL in a long C call, e.g.
graph optimization, keeps using CPU) is subtracted. Time spent waiting on
I/O, sleeping, or sharing the cores with other processes still counts.

    start = running_time()
    ...
    seconds = running_time() - start
"""

import threading
import time

TICK = 0.2
GAP = 1.0
IDLE_CPU = 0.1

_lock = threading.Lock()
_state = {"thread": None, "stopped": 0.0, "last": None}


def _account():
    # Under _lock: the time since the last tick counts as stopped when it is
    # a gap in which the process hardly used the CPU. Called by the ticker
    # and by every reading, so a reading right after a SIGCONT, before the
    # ticker has run, already leaves the stop out.
    now, cpu = time.perf_counter(), time.process_time()
    last, last_cpu = _state["last"]
    gap = now - last
    if gap > GAP and cpu - last_cpu < IDLE_CPU * gap:
        _state["stopped"] += gap - TICK
    _state["last"] = (now, cpu)
    return now


def _tick():
    while True:
        time.sleep(TICK)
        with _lock:
            _account()


def _ensure_ticking():
    with _lock:
        if _state["thread"] is None or not _state["thread"].is_alive():
            _state["last"] = (time.perf_counter(), time.process_time())
            thread = threading.Thread(target=_tick, name="kerasnas-running-time", daemon=True)
            thread.start()
            _state["thread"] = thread


def stopped_seconds():
    """Seconds this process was stopped since the clock started (the first
    `running_time()` or `stopped_seconds()` call)."""
    _ensure_ticking()
    with _lock:
        _account()
        return _state["stopped"]


def running_time():
    """`time.perf_counter()` less the seconds this process was stopped:
    the difference of two calls is the seconds it ran between them."""
    _ensure_ticking()
    with _lock:
        return _account() - _state["stopped"]
