"""A converter that refuses half-way leaves nothing behind: the Builder rolls back to its mark."""
from __future__ import annotations

import numpy as np

from npukit.frontend.onnx_builder import Builder
from npukit.ir.graph import Op, ReshapeAttrs


def test_rollback_forgets_nodes_tensors_values_and_layout_views():
    b = Builder(set(), ("y",), 17)
    b.source = ("first",)
    b.add_input("x", (1, 3, 4, 5))          # 4-D: an NHWC transpose, its NCHW view cached
    b.values["k"] = np.ones(3, np.float32)
    before = (list(b.nodes), dict(b.tensors), dict(b.values))
    mark = b.mark()
    b.source = ("refused",)
    b.add_const(np.zeros(2, np.float32), "w")
    b.emit(Op.RESHAPE, [b.onnx_layout("x")], ReshapeAttrs((1, 60)), b.fresh("flat"))
    b.set_onnx_layout("flat", "flat")
    b.rollback(mark)
    assert (b.nodes, b.tensors, b.values) == before
    # the refused node's name is free again, and layout views are rebuilt on demand
    b.source = ("refused",)
    out = b.emit(Op.RESHAPE, [b.onnx_layout("x")], ReshapeAttrs((1, 60)), b.fresh("flat"))
    assert [n.name for n in b.nodes][-1] == "refused" and b.tensors[out].shape == (1, 60)
