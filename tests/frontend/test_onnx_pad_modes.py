"""ONNX Pad modes: constant and reflect become IR PAD nodes (the NPU runs them); edge becomes
slices of the first and last rows concatenated around the value (NPU); wrap runs in float
on the host."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from npukit.errors import UnsupportedOpError
from npukit.frontend.onnx import load_onnx
from npukit.ir.graph import Op
from npukit.kernels.float_exec import run_float
from onnx_testutil import assert_compiled_matches_onnxruntime


def _pad_model(mode: str, pads) -> bytes:
    g = helper.make_graph([helper.make_node("Pad", ["x", "p"], ["y"], mode=mode)], "pad",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 7])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                          initializer=[numpy_helper.from_array(np.array(pads, np.int64), "p")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m.SerializeToString()


@pytest.mark.parametrize("mode,ops", [("reflect", {Op.PAD}), ("constant", {Op.PAD}), ("edge", {Op.SLICE, Op.CONCAT}),
                                     ("wrap", {Op.HOST_FLOAT})])
def test_pad_mode_placement_and_values(mode, ops):
    g = load_onnx(_pad_model(mode, [1, 2, 0, 3]))
    assert {n.op for n in g.nodes} == ops
    x = np.arange(14, dtype=np.float32).reshape(2, 7)
    want = np.pad(x, ((1, 0), (2, 3)), mode=mode) if mode != "constant" else np.pad(x, ((1, 0), (2, 3)))
    np.testing.assert_array_equal(run_float(g, {"x": x})["y"], want)


def test_reflect_longer_than_the_axis_is_refused():
    with pytest.raises(UnsupportedOpError, match="reflect"):
        load_onnx(_pad_model("reflect", [0, 7, 0, 0]))


def test_edge_pad_on_the_npu_matches_onnxruntime(tmp_path):
    """4-D (NHWC inside): pads on H and W, and on the channels."""
    pads = [0, 2, 1, 0, 0, 1, 3, 2]
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Pad", ["r", "p"], ["y"], mode="edge")],
                          "pad", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 5, 6])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                          initializer=[numpy_helper.from_array(np.array(pads, np.int64), "p")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    path = tmp_path / "edge.onnx"
    path.write_bytes(m.SerializeToString())
    assert_compiled_matches_onnxruntime(path, np.random.default_rng(4).standard_normal((4, 1, 3, 5, 6))
                                        .astype(np.float32), k=2)
