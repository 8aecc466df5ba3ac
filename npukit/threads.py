"""npukit computes on one core: parallelism comes from processes (the explorer's workers).

BLAS threads gain little on tile-sized matrix products and, on a shared machine, lose badly
to contention (measured here: a 30x30x128 3x3 convolution took 24 ms with two BLAS threads
on a loaded 2-core machine and 3 ms with one; the simulator's per-tile GEMMs on ResNet-18
and MobileNetV2 at 224x224 ran no faster with two, see BENCHMARKS.md).
"""
from __future__ import annotations

from threadpoolctl import ThreadpoolController

_controller: ThreadpoolController | None = None


def single_threaded():
    """A context limiting BLAS to one thread. The loaded libraries are looked up once (the
    lookup costs about 0.2 ms, more than a small model's inference step)."""
    global _controller
    if _controller is None:
        _controller = ThreadpoolController()
    return _controller.limit(limits=1, user_api="blas")
