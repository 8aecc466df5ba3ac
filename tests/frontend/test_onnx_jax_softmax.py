"""jax's softmax as jax2tf exports it (Magika's head): Max(ReduceMax(x), -inf) as the shift,
then Exp, ReduceSum and a Div by the sum. The -inf operand (Max's identity, which no int8 code
stands for) is dropped at import, and the Div of the Exp by its ReduceSum (kept, or reshaped
and expanded back) imports as one SOFTMAX; the NPU's probabilities agree with onnxruntime's."""
from __future__ import annotations

import warnings

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx_testutil import model_bytes, onnxruntime_outputs

import npukit
from npukit.frontend.onnx import load_onnx
from npukit.ir.graph import Op
from npukit.kernels.float_exec import run_float

CLASSES = 24


def _model() -> bytes:
    nodes = [helper.make_node("ReduceMax", ["x"], ["top"], axes=[1], keepdims=1),
             helper.make_node("Max", ["top", "neg_inf"], ["shift"]),
             helper.make_node("Sub", ["x", "shift"], ["centred"]),
             helper.make_node("Exp", ["centred"], ["e"]),
             helper.make_node("ReduceSum", ["e", "axes"], ["total"], keepdims=1),
             helper.make_node("Div", ["e", "total"], ["p"])]
    return model_bytes(nodes, {"x": (1, CLASSES)}, ["p"],
                       {"neg_inf": np.array(-np.inf, np.float32), "axes": np.array([1], np.int64)})


def test_max_with_minus_infinity_is_dropped_and_the_division_is_a_softmax():
    g = load_onnx(_model())
    assert Op.MAXIMUM not in [n.op for n in g.nodes] and [n.op for n in g.nodes].count(Op.SOFTMAX) == 1


def test_probabilities_agree_with_onnxruntime(tmp_path):
    path = tmp_path / "softmax.onnx"
    path.write_bytes(mb := _model())
    rng = np.random.default_rng(3)
    calib = (rng.normal(size=(16, 1, CLASSES)) * 3).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prog = npukit.compile(path, "npu-m", calibration={"x": calib}, sqnr=False)
    for x in calib[:6]:
        want, got = onnxruntime_outputs(mb, {"x": x})["p"], prog.run({"x": x})["p"]
        assert np.isfinite(got).all() and got.argmax() == want.argmax()
        # the largest probability: exp(0) = 1 exactly, over a sum within a few int8 steps
        assert abs(got.max() - want.max()) <= 0.05, (got.max(), want.max())


@pytest.mark.parametrize("rank", [2, 3])
def test_spelled_out_softmax_is_one_softmax(tmp_path, rank):
    """jax's softmax through jax2tf: Exp(x - Max(ReduceMax(x), -inf)) divided by its ReduceSum
    (keepdims 0) reshaped and expanded back: one SOFTMAX on the NPU, as onnxruntime computes it."""
    import npukit
    shape = (1, 6, 10)[-rank:] if rank == 2 else (1, 6, 10)
    last = len(shape) - 1
    kept = numpy_helper.from_array(np.array(shape[:-1] + (1,), np.int64), "kept")
    full = numpy_helper.from_array(np.array(shape, np.int64), "full")
    axes = numpy_helper.from_array(np.array([last], np.int64), "axes")
    nodes = [helper.make_node("ReduceMax", ["x0"], ["m"], axes=[last], keepdims=0),
             helper.make_node("Max", ["m", "ninf"], ["mm"]), helper.make_node("Reshape", ["mm", "kept"], ["mk"]),
             helper.make_node("Expand", ["mk", "full"], ["mb"]), helper.make_node("Sub", ["x0", "mb"], ["t"]),
             helper.make_node("Exp", ["t"], ["e"]),
             helper.make_node("ReduceSum", ["e", "axes"], ["s"], keepdims=0),
             helper.make_node("Reshape", ["s", "kept"], ["sk"]), helper.make_node("Expand", ["sk", "full"], ["sb"]),
             helper.make_node("Div", ["e", "sb"], ["y"])]
    graph = helper.make_graph(nodes, "t", [helper.make_tensor_value_info("x0", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(np.array(-np.inf, np.float32), "ninf"), kept, full, axes])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    data = model.SerializeToString()
    g = load_onnx(data)
    assert [n.op for n in g.nodes if n.op is not Op.RESHAPE].count(Op.SOFTMAX) == 1
    rng = np.random.default_rng(0)
    x = rng.normal(0, 3, (8,) + shape).astype(np.float32)
    want = ort.InferenceSession(data).run(None, {"x0": x[0]})[0]
    np.testing.assert_allclose(run_float(g, {"x0": x[0]})["y"], want, atol=1e-6)
    (tmp_path / "m.onnx").write_bytes(data)
    cm = npukit.compile(tmp_path / "m.onnx", "npu-m", calibration={"x0": x}, sqnr=False)
    assert all(layer.target == "npu" for layer in cm.program.layers)
    ops = [layer.op for layer in cm.program.layers]
    assert ops.count("softmax") == 1 and not {"unary", "reduce_sum"} & set(ops), ops    # the sum's nodes are dead
    # int8 in: t's step is about 0.07 here, which moves a probability by up to p (1 - p) x 0.07
    np.testing.assert_allclose(cm.run({"x0": x[0]})["y"], want, atol=0.02)
