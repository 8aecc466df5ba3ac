"""Video frames ([N, C, D, H, W], RivaGAN) on the NPU: a 3-D conv is a sum of 2-D convs of
its frames (one 2-D conv for a frame of depth 1); an element-wise operand broadcast over leading and
trailing axes of a tensor of any rank, as a 5-D batch norm's per-channel scale: the output is
viewed as [rows, columns] split where the operand is one value per row or per column, and
the layer runs on the NPU, equal to the integer reference and within int8 steps of
onnxruntime."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import npukit
from npukit.isa import instructions as I
from npukit.measure import quantize_inputs
from npukit.sim.reference import run_reference


def _model(op: str, x_shape, b_shape) -> bytes:
    b = np.random.default_rng(1).uniform(0.5, 1.5, b_shape).astype(np.float32)
    graph = helper.make_graph([helper.make_node(op, ["x", "b"], ["y"])], "bcast",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x_shape))],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(b, "b")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8).SerializeToString()


@pytest.mark.parametrize("op, x_shape, b_shape, cols", [
    ("Mul", (1, 3, 1, 6, 5), (1, 3, 1, 1, 1), 30),        # per channel of 5-D frames: 3 rows of 30
    ("Add", (2, 3, 4, 5, 2), (1, 1, 4, 5, 2), 40),        # per position, over the two leading axes
    ("Mul", (1, 4, 7), (1, 4, 1), 7),                     # per row (the last-axis form, as before)
])
def test_a_broadcast_over_leading_or_trailing_axes_runs_on_the_npu(tmp_path, op, x_shape, b_shape, cols):
    path = tmp_path / "bcast.onnx"
    path.write_bytes(model := _model(op, x_shape, b_shape))
    rng = np.random.default_rng(2)
    calib = rng.uniform(-2, 2, (8, *x_shape)).astype(np.float32)
    prog = npukit.compile(path, "npu-m", calibration={"x": calib}, sqnr=False)
    assert prog.profile().host_ops == []
    ew = [i for i in prog.program.instructions if isinstance(i, I.Elementwise)]
    assert ew and {i.cols for i in ew} == {cols}
    sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    for x in calib[:3]:
        feeds = quantize_inputs(prog.qgraph, {"x": x})
        np.testing.assert_array_equal(prog.run_int(feeds)["y"], run_reference(prog.qgraph, feeds)["y"])
        want = sess.run(None, {"x": x})[0]
        assert np.max(np.abs(prog.run({"x": x})["y"] - want)) <= 2 * prog.program.outputs[0].scale


def _on_the_npu_against_onnxruntime(tmp_path, graph, calib: np.ndarray) -> None:
    """The one-input graph compiled on npu-m with calibration `calib` runs all on the NPU and is
    within 3 output int8 steps of onnxruntime on two of the samples."""
    path = tmp_path / "video.onnx"
    path.write_bytes(model := helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                                                ir_version=8).SerializeToString())
    prog = npukit.compile(path, "npu-m", calibration={"x": calib}, sqnr=False)
    assert prog.profile().host_ops == []
    sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    for x in calib[:2]:
        want = sess.run(None, {"x": x})[0]
        got = prog.run({"x": x})["y"]
        assert got.shape == want.shape
        assert np.max(np.abs(got - want)) <= 3 * prog.program.outputs[0].scale


@pytest.mark.parametrize("attrs", [{"kernel_shape": [1, 3, 3], "pads": [0, 1, 1, 0, 1, 1]},
                                   {"kernel_shape": [1, 3, 2], "strides": [1, 2, 1]}])
def test_a_3d_conv_of_one_frame_is_its_2d_conv_on_the_npu(tmp_path, attrs):
    """RivaGAN's Conv over [N, C, 1, H, W] frames with a kernel of depth 1, then a 5-D batch
    norm: all on the NPU, within int8 steps of onnxruntime."""
    rng = np.random.default_rng(4)
    k = attrs["kernel_shape"]
    inits = [numpy_helper.from_array(rng.normal(0, 0.3, (4, 3, *k)).astype(np.float32), "w"),
             numpy_helper.from_array(rng.normal(0, 0.1, 4).astype(np.float32), "bias")]
    inits += [numpy_helper.from_array(v.astype(np.float32), n) for n, v in
              (("g", rng.uniform(0.5, 1.5, 4)), ("be", rng.normal(0, 0.1, 4)), ("m", rng.normal(0, 0.1, 4)),
               ("v", rng.uniform(0.5, 1.5, 4)))]
    nodes = [helper.make_node("Conv", ["x", "w", "bias"], ["c"], **attrs),
             helper.make_node("BatchNormalization", ["c", "g", "be", "m", "v"], ["y"])]
    graph = helper.make_graph(nodes, "frames", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 1, 8, 9])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    _on_the_npu_against_onnxruntime(tmp_path, graph, rng.uniform(-1, 1, (8, 1, 3, 1, 8, 9)).astype(np.float32))


@pytest.mark.parametrize("attrs", [
    {"kernel_shape": [3, 3, 3], "pads": [1, 1, 1, 1, 1, 1]},
    {"kernel_shape": [2, 3, 3], "strides": [2, 1, 2]},
    {"kernel_shape": [3, 1, 1], "dilations": [2, 1, 1], "pads": [2, 0, 0, 1, 0, 0]},
    {"kernel_shape": [3, 3, 3], "group": 2, "auto_pad": "SAME_UPPER"},
])
def test_a_3d_conv_over_several_frames_is_a_sum_of_2d_convs_on_the_npu(tmp_path, attrs):
    """Output frame f sums the 2-D convs of the frames its depth taps read (padding frames
    add nothing), the frames then stacked: against onnxruntime, each partial sum rounded to
    int8 once (within 1.6 steps observed)."""
    rng = np.random.default_rng(6)
    groups = attrs.get("group", 1)
    w = rng.normal(0, 0.3, (4, 4 // groups, *attrs["kernel_shape"])).astype(np.float32)
    graph = helper.make_graph([helper.make_node("Conv", ["x", "w", "bias"], ["y"], **attrs)], "video",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 5, 6, 6])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(w, "w"),
                               numpy_helper.from_array(rng.normal(0, 0.1, 4).astype(np.float32), "bias")])
    _on_the_npu_against_onnxruntime(tmp_path, graph, rng.uniform(-1, 1, (8, 1, 4, 5, 6, 6)).astype(np.float32))
