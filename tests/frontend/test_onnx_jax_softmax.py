"""jax's softmax as jax2tf exports it (Magika's head): Max(ReduceMax(x), -inf) as the shift,
then Exp, ReduceSum and a Div by the sum. The -inf operand (Max's identity, which no int8 code
stands for) is dropped at import, so the shift is the row maximum and the NPU's probabilities
agree with onnxruntime's."""
from __future__ import annotations

import warnings

import numpy as np
from onnx import helper
from onnx_testutil import model_bytes, onnxruntime_outputs

import npukit
from npukit.frontend.onnx import load_onnx
from npukit.ir.graph import Op

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


def test_max_with_minus_infinity_is_dropped():
    g = load_onnx(_model())
    assert Op.MAXIMUM not in [n.op for n in g.nodes]


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
