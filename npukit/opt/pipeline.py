"""The optimisation pipeline: passes in order, the verifier after each."""
from __future__ import annotations

from typing import Callable

from ..ir.graph import Graph
from ..ir.verify import verify
from .passes import (clean_layout, eliminate_dead_nodes, fold_batch_norm, fold_constants, fold_pads,
                     fold_transpose_into_fc)
from .hoist import hoist_elementwise
from .magnitude import fuse_magnitude
from .patterns import fuse_activations, fuse_hard_swish

Pass = Callable[[Graph], Graph]

PASSES: tuple[tuple[str, Pass], ...] = (
    ("fold_constants", fold_constants),
    ("clean_layout", clean_layout),
    ("hoist_elementwise", hoist_elementwise),
    ("fuse_magnitude", fuse_magnitude),
    ("fold_batch_norm", fold_batch_norm),
    ("fold_pads", fold_pads),
    ("fuse_hard_swish", fuse_hard_swish),
    ("fold_transpose_into_fc", fold_transpose_into_fc),
    ("clean_layout_again", clean_layout),
    ("fuse_activations", fuse_activations),
    ("eliminate_dead_nodes", eliminate_dead_nodes),
)


def optimize(g: Graph) -> Graph:
    """Run every pass in order; the graph is verified after each one."""
    verify(g, stage="input to optimize")
    for name, run in PASSES:
        g = verify(run(g), stage=name)
    return g
