"""How PoCL's CPU worker threads are placed: pinned, one per core.

Unpinned, PoCL's threads sleep between runs, and when a run after a pause
wakes them Linux puts them beside the thread that woke them: they then share
one core for the whole run. Measured on the 2-core development machine
(mobilenet_v2, batch 1): 15 ms a run back to back, 28 ms after 0.1 s idle,
with the same CPU time (one core busy instead of two); with the threads
pinned, 13.9 and 14.7 ms. A run that follows other work (a camera's next
frame, the peers in a benchmark) is such a run. On 16 cores the placement
made no difference either way.

PoCL pins when POCL_AFFINITY=1, thread i to core i whatever cores the
process may use, and reads it once, when its first platform query starts
the threads: hence set before that query, and only where the process may
run on every core and PoCL starts no more threads than there are cores.
"""

import os


def pin_pocl_threads(environ=os.environ, allowed_cores=None, cores=None):
    """Set POCL_AFFINITY=1 in ``environ`` unless it is set already (the
    user's choice either way stands) or pinning by index could name a core
    this process may not use. Returns whether it set it. ``allowed_cores``
    and ``cores`` default to this process's (os.sched_getaffinity and
    os.cpu_count)."""
    if "POCL_AFFINITY" in environ:
        return False
    if allowed_cores is None:
        if not hasattr(os, "sched_getaffinity"):  # not Linux: PoCL ignores the variable there
            return False
        allowed_cores = os.sched_getaffinity(0)
    cores = os.cpu_count() if cores is None else cores
    if not cores or set(allowed_cores) != set(range(cores)):
        return False
    threads = environ.get("POCL_MAX_PTHREAD_COUNT", "").strip()
    if threads and (not threads.isdigit() or int(threads) > cores):
        return False
    environ["POCL_AFFINITY"] = "1"
    return True
