"""npukit computes on one core: parallelism comes from processes (the explorer's workers).

BLAS threads gain little on tile-sized matrix products and, on a shared machine, lose badly
to contention (measured here: a 30x30x128 3x3 convolution took 24 ms with two BLAS threads
on a loaded 2-core machine and 3 ms with one).
"""
from __future__ import annotations

from threadpoolctl import threadpool_limits


def single_threaded():
    return threadpool_limits(1, user_api="blas")
