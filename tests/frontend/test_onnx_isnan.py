"""IsNaN of an activation is constant False (IR activations are finite), so what reads the
mask folds: minimol's `x[isnan(x)] = 0` exports a Gather of one column of the mask before
its Where, which the importer refused ("value 'isnan' is expected to be an activation").
Against onnxruntime."""
from __future__ import annotations

import numpy as np
from onnx import helper
from onnx_testutil import check_against_onnxruntime, model_bytes, ops

from npukit.ir.graph import Op


def test_a_gathered_nan_mask_folds():
    nodes = [helper.make_node("IsNaN", ["x"], ["nan"]),
             helper.make_node("Gather", ["nan", "col"], ["nan_col"], axis=2),       # [N, 8]
             helper.make_node("Gather", ["x", "col"], ["x_col"], axis=2),
             helper.make_node("Where", ["nan_col", "zero", "x_col"], ["y"]),
             helper.make_node("Where", ["nan", "zero", "x"], ["z"])]
    mb = model_bytes(nodes, {"x": (6, 8, 2)}, ["y", "z"],
                     {"col": np.array(1, np.int64), "zero": np.array(0.0, np.float32)})
    g = check_against_onnxruntime(mb)
    assert Op.HOST_FLOAT not in ops(g)
