"""BLAS thread limits. npukit computes on one core by default: parallelism comes from
processes (the explorer's workers).

BLAS threads gain little on the simulator's tile-sized matrix products and, on a shared
machine, lose badly to contention (measured here: a 30x30x128 3x3 convolution took 24 ms
with two BLAS threads on a loaded 2-core machine and 3 ms with one). Even idle, a 224 x 576
x 32 GEMM that runs 1.9x faster alone with two threads gains little inside the simulator:
its operands are written by one core just before and read back just after, and that
hand-off ate the gain (whole ResNet-18 runs: no faster, up to 8x slower under load; see
BENCHMARKS.md). `Simulator(threads=n)` still lets a caller allow more.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from threadpoolctl import ThreadpoolController

_controller: ThreadpoolController | None = None


def blas_threads(n: int):
    """A context limiting BLAS to `n` threads. The loaded libraries are looked up once (the
    lookup costs about 0.2 ms, more than a small model's inference step)."""
    global _controller
    if _controller is None:
        from threadpoolctl import ThreadpoolController      # (loaded by the first run, not on import)
        _controller = ThreadpoolController()
    return _controller.limit(limits=n, user_api="blas")


def single_threaded():
    """A context limiting BLAS to one thread."""
    return blas_threads(1)
