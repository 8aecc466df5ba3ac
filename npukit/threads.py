"""BLAS thread limits. npukit computes on one core by default: parallelism comes from
processes (the explorer's workers).

BLAS threads gain little on small matrix products and, on a shared machine, lose badly to
contention (measured here: a 30x30x128 3x3 convolution took 24 ms with two BLAS threads on
a loaded 2-core machine and 3 ms with one). The functional simulator behind `npukit run`
(CompiledModel) allows two: its im2col GEMMs of a few hundred rows by a depth of 576 or more
run about 1.9x faster with two on an idle machine, and OpenBLAS itself keeps products below
M*N*K = 262,144 on one thread (see BENCHMARKS.md).
"""
from __future__ import annotations

from threadpoolctl import ThreadpoolController

_controller: ThreadpoolController | None = None


def blas_threads(n: int):
    """A context limiting BLAS to `n` threads. The loaded libraries are looked up once (the
    lookup costs about 0.2 ms, more than a small model's inference step)."""
    global _controller
    if _controller is None:
        _controller = ThreadpoolController()
    return _controller.limit(limits=n, user_api="blas")


def single_threaded():
    """A context limiting BLAS to one thread."""
    return blas_threads(1)
