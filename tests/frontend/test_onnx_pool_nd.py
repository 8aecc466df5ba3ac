"""ONNX MaxPool / AveragePool on the NPU against onnxruntime float: a 3-D [N, C, L] input
pooled as [N, 1, L, C] (as Conv1d is), with strides, pads, ceil mode, count_include_pad and
auto_pad; count_include_pad with pads on 4-D inputs, whose padded taps are zeros (the input's
zero point), not code 0; dilated max pools, the largest of their taps' strided slices of the
input padded with the lowest code; and 5-D [N, C, D, H, W] video frames pooled frame by frame,
with depth strides, pads (counted or not), ceil mode and auto_pad."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

import npukit
from onnx_testutil import check_against_onnxruntime

L, HW, DHW = [1, 6, 17], [1, 6, 7, 9], [1, 3, 5, 6, 7]
CASES = [
    ("MaxPool", L, {"kernel_shape": [3]}),
    ("MaxPool", L, {"kernel_shape": [2], "strides": [2], "pads": [1, 0]}),
    ("MaxPool", L, {"kernel_shape": [3], "strides": [2], "ceil_mode": 1}),
    ("AveragePool", L, {"kernel_shape": [3], "strides": [2], "pads": [1, 1]}),
    ("AveragePool", L, {"kernel_shape": [3], "pads": [1, 1], "count_include_pad": 1}),
    ("AveragePool", L, {"kernel_shape": [4], "strides": [3], "auto_pad": "SAME_UPPER"}),
    ("AveragePool", HW, {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "count_include_pad": 1}),
    ("AveragePool", HW, {"kernel_shape": [3, 2], "strides": [2, 2], "pads": [1, 0, 0, 1], "ceil_mode": 1,
                         "count_include_pad": 1}),
    ("MaxPool", L, {"kernel_shape": [3], "strides": [2], "pads": [2, 1], "dilations": [2]}),
    ("MaxPool", HW, {"kernel_shape": [2, 3], "dilations": [2, 2]}),
    ("MaxPool", HW, {"kernel_shape": [3, 2], "strides": [2, 1], "pads": [1, 1, 2, 0], "dilations": [2, 3],
                     "ceil_mode": 1}),
    ("MaxPool", DHW, {"kernel_shape": [3, 3, 3], "strides": [2, 2, 2]}),
    ("MaxPool", DHW, {"kernel_shape": [2, 2, 2], "strides": [2, 2, 2], "ceil_mode": 1}),
    ("MaxPool", DHW, {"kernel_shape": [3, 2, 3], "pads": [1, 0, 1, 1, 1, 0]}),
    ("AveragePool", DHW, {"kernel_shape": [2, 3, 3], "strides": [1, 2, 2]}),
    ("AveragePool", DHW, {"kernel_shape": [3, 3, 3], "pads": [1, 1, 1, 1, 1, 1]}),
    ("AveragePool", DHW, {"kernel_shape": [3, 3, 3], "pads": [1, 1, 1, 1, 1, 1], "count_include_pad": 1}),
    ("AveragePool", DHW, {"kernel_shape": [2, 2, 2], "strides": [2, 2, 2], "ceil_mode": 1}),
    ("AveragePool", DHW, {"kernel_shape": [3, 3, 2], "strides": [2, 2, 2], "auto_pad": "SAME_UPPER"}),
]


@pytest.mark.parametrize(("op", "shape", "attrs"), CASES)
def test_pool_on_the_npu_matches_onnxruntime(tmp_path, op: str, shape: list[int], attrs: dict) -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    m = helper.make_model(helper.make_graph([helper.make_node(op, ["x"], ["y"], **attrs)], "g", [x], [y]),
                          opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    path = tmp_path / "pool.onnx"
    path.write_bytes(m.SerializeToString())
    xs = np.random.default_rng(3).standard_normal((6, *shape)).astype(np.float32) + 0.5   # zero point off 0
    prog = npukit.compile(path, "npu-m", calibration={"x": xs}, sqnr=False)
    assert not prog.profile().host_ops
    want = ort.InferenceSession(str(path)).run(None, {"x": xs[0]})[0]
    got = prog.run({"x": xs[0]})["y"]
    assert got.shape == want.shape
    step = prog.program.outputs[0].scale
    # a 3-D average pool sums its frames' 2-D pools, each requantised, and scales the sum
    assert np.abs(got - want).max() <= (4 if len(shape) == 5 and op == "AveragePool" else 1.5) * step
    if len(shape) == 5:             # the frame-by-frame decomposition itself is exact in float
        check_against_onnxruntime(m.SerializeToString(), {"x": xs[0]}, rtol=1e-5, atol=1e-6)
