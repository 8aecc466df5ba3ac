"""A gather of an activation by constant indices as runs of consecutive indices: each run is
a SLICE (one DMA), the runs a CONCAT along the gathered axis. Both frontends use it (ONNX
`Gather`, TFLite `GATHER`): picking channels in another order ([2, 1, 0]: BGR to RGB), or
audio frames that overlap (tf.signal.frame: one run a frame)."""
from __future__ import annotations

import numpy as np

MAX_RUNS = 1024         # slices one gather may become (more: it runs on the host)


def index_runs(indices: np.ndarray, dim: int) -> list[tuple[int, int]] | None:
    """The [start, stop) runs of consecutive indices in order (negative ones counted from the
    end), or None when one is out of range, there are none, or more than MAX_RUNS."""
    flat = np.asarray(indices, np.int64).ravel()
    flat = np.where(flat < 0, flat + dim, flat)
    if flat.size == 0 or flat.min() < 0 or flat.max() >= dim:
        return None
    breaks = np.flatnonzero(np.diff(flat) != 1) + 1
    if len(breaks) >= MAX_RUNS:
        return None
    starts, stops = np.concatenate([[0], breaks]), np.concatenate([breaks, [flat.size]])
    return [(int(flat[s]), int(flat[s] + e - s)) for s, e in zip(starts, stops)]
