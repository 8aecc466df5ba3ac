"""ONNX Pad modes: constant and reflect become IR PAD nodes (the NPU runs them); edge and wrap
run in float on the host."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from npukit.errors import UnsupportedOpError
from npukit.frontend.onnx import load_onnx
from npukit.ir.graph import Op
from npukit.kernels.float_exec import run_float


def _pad_model(mode: str, pads) -> bytes:
    g = helper.make_graph([helper.make_node("Pad", ["x", "p"], ["y"], mode=mode)], "pad",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 7])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                          initializer=[numpy_helper.from_array(np.array(pads, np.int64), "p")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m.SerializeToString()


@pytest.mark.parametrize("mode,op", [("reflect", Op.PAD), ("constant", Op.PAD), ("edge", Op.HOST_FLOAT)])
def test_pad_mode_placement_and_values(mode, op):
    g = load_onnx(_pad_model(mode, [1, 2, 0, 3]))
    assert [n.op for n in g.nodes] == [op]
    x = np.arange(14, dtype=np.float32).reshape(2, 7)
    want = np.pad(x, ((1, 0), (2, 3)), mode="reflect" if mode == "reflect" else mode) if mode != "constant" \
        else np.pad(x, ((1, 0), (2, 3)))
    np.testing.assert_array_equal(run_float(g, {"x": x})["y"], want)


def test_reflect_longer_than_the_axis_is_refused():
    with pytest.raises(UnsupportedOpError, match="reflect"):
        load_onnx(_pad_model("reflect", [0, 7, 0, 0]))
