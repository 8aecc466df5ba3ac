"""A float16 ONNX graph (Keras mixed precision: a Cast to float16, float16 weights, a float16
output) imports as its float32 graph and runs on the NPU, against onnxruntime running the
float16 file; and a Softmax over a non-last axis (a [N, C, L] map's channels) is a transpose
either side of the NPU softmax."""
from __future__ import annotations

import warnings

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx_testutil import check_against_onnxruntime, model_bytes, node, onnxruntime_outputs

import npukit
from npukit.frontend.onnx_float16 import float16_as_float32, has_float16
from npukit.ir.graph import Op

C, L, K = 8, 12, 5


def _mixed_precision_model(rng: np.random.Generator) -> bytes:
    """x [1, C, L] float32 -> Cast(float16) -> 1-D conv (float16 weights) -> Relu -> conv ->
    Softmax over the channels -> y float16 [1, C, L]."""
    w1 = (rng.standard_normal((C, C, K)) * 0.3).astype(np.float16)
    w2 = (rng.standard_normal((C, C, 1)) * 0.3).astype(np.float16)
    bias = (rng.standard_normal(C) * 0.1).astype(np.float16)
    nodes = [node("Cast", ["x"], ["h"], to=TensorProto.FLOAT16),
             node("Conv", ["h", "w1", "b1"], ["c1"], pads=[2, 2]),
             node("Relu", ["c1"], ["r1"]),
             node("Conv", ["r1", "w2"], ["c2"]),
             node("Softmax", ["c2"], ["y"], axis=1)]
    graph = helper.make_graph(
        nodes, "mixed",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, C, L])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT16, [1, C, L])],
        [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(bias, "b1"), numpy_helper.from_array(w2, "w2")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8).SerializeToString()


def test_float16_rewrite_keeps_the_function():
    mb = _mixed_precision_model(np.random.default_rng(0))
    model = onnx.load_model_from_string(mb)
    assert has_float16(model.graph)
    as32 = float16_as_float32(model)
    assert not has_float16(as32.graph) and has_float16(model.graph)      # a copy; the model untouched
    x = np.random.default_rng(1).standard_normal((1, C, L)).astype(np.float32)
    want = onnxruntime_outputs(mb, {"x": x})["y"].astype(np.float32)
    got = onnxruntime_outputs(as32.SerializeToString(), {"x": x})["y"]
    np.testing.assert_allclose(got, want, atol=2e-3)     # float16's own rounding between layers


def test_float16_model_on_the_npu(tmp_path):
    rng = np.random.default_rng(2)
    mb = _mixed_precision_model(rng)
    path = tmp_path / "mixed.onnx"
    path.write_bytes(mb)
    calib = rng.standard_normal((8, 1, C, L)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prog = npukit.compile(path, "npu-m", calibration={"x": calib}, sqnr=False)
    assert not prog.profile().host_ops
    x = rng.standard_normal((1, C, L)).astype(np.float32)
    want = onnxruntime_outputs(mb, {"x": x})["y"].astype(np.float32)
    got = prog.run({"x": x})["y"]
    assert got.dtype == np.float32 and got.shape == want.shape
    assert np.abs(got - want).max() <= 0.05          # probabilities, after two int8 convs


@pytest.mark.parametrize("shape, axis", [((2, 5, 7), 1), ((2, 5, 7), 0), ((1, 6, 3, 4), 1), ((1, 6, 3, 4), 2)])
def test_softmax_over_a_non_last_axis(shape, axis):
    mb = model_bytes([node("Softmax", ["x"], ["y"], axis=axis)], {"x": shape}, ["y"])
    g = check_against_onnxruntime(mb)
    assert Op.HOST_FLOAT not in {n.op for n in g.nodes}


def test_softmax_over_channels_compiled(tmp_path):
    rng = np.random.default_rng(3)
    mb = model_bytes([node("Softmax", ["x"], ["y"], axis=1)], {"x": (1, 6, 9)}, ["y"])
    path = tmp_path / "softmax.onnx"
    path.write_bytes(mb)
    calib = (rng.standard_normal((8, 1, 6, 9)) * 2).astype(np.float32)
    prog = npukit.compile(path, "npu-m", calibration={"x": calib}, sqnr=False)
    assert not prog.profile().host_ops
    want = onnxruntime_outputs(mb, {"x": calib[3]})["y"]
    got = prog.run({"x": calib[3]})["y"]
    assert np.abs(got - want).max() <= 3 * prog.program.outputs[0].scale     # (the input's rounding, then the output's)
