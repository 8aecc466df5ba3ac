"""`--calib-method auto` (the default) and "hybrid": percentile ranges for hidden activations,
minmax for the tensors whose extremes are the answer, in a model with a dense output map;
onnxruntime's float values are the oracle. Merged observers against one observer over all
the samples."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import npukit
from npukit.choices import METHODS
from npukit.quant.calibrate import Observer, merged

N = 3           # calibration samples


def conv_relu(path: Path) -> Path:
    """x[1,2,6,6] -> conv3x3 -> relu -> conv1x1 -> y[1,3,6,6]."""
    rng = np.random.default_rng(4)
    inits = [numpy_helper.from_array(rng.standard_normal(s).astype(np.float32) / 3, n)
             for n, s in (("w0", (4, 2, 3, 3)), ("b0", (4,)), ("w1", (3, 4, 1, 1)), ("b1", (3,)))]
    nodes = [helper.make_node("Conv", ["x", "w0", "b0"], ["c0"], pads=[1] * 4),
             helper.make_node("Relu", ["c0"], ["r0"]), helper.make_node("Conv", ["r0", "w1", "b1"], ["y"])]
    g = helper.make_graph(nodes, "cr", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 6, 6])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 6, 6])], inits)
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], ir_version=8), path)
    return path


def test_merged_observers_see_what_one_observer_sees():
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((1, 4, 4, 3)).astype(np.float32) * s for s in (1.0, 5.0, 0.5)]
    one, parts = Observer(0), [Observer(i) for i in range(3)]
    for x, p in zip(xs, parts):
        one.update(x)
        p.update(x)
    m = merged([*parts, Observer(9)])        # one never updated (an empty run of samples)
    assert (m.lo, m.hi) == (one.lo, one.hi)
    assert m.channel_amax is not None and one.channel_amax is not None
    np.testing.assert_array_equal(m.channel_amax, one.channel_amax)
    for method in ("minmax", "percentile", "mse"):
        assert m.range(method) == one.range(method)


def test_auto_is_hybrid_for_a_dense_map_and_minmax_otherwise(tmp_path):
    """A conv net whose output is an [1, 3, 6, 6] map compiles with "auto" exactly as with
    "hybrid"; the hybrid ranges: the hidden relu output at numpy's 0.01 / 99.99 percentiles of
    its float values (onnxruntime's), the output at its extremes."""
    path = conv_relu(tmp_path / "cr.onnx")
    rng = np.random.default_rng(5)
    xs = rng.standard_normal((N, 1, 2, 6, 6)).astype(np.float32)
    xs[0, 0, :, 0, 0] = 12.0         # an outlier: percentile clips it, minmax does not
    compiled = {m: npukit.compile(path, "npu-m", calibration={"x": xs}, method=m, options={"timed_candidates": 1})
                for m in ("auto", "hybrid", "minmax")}
    assert "auto" in METHODS and compiled["auto"].program.meta["calibration"] == "hybrid"

    def params(m):
        return {n: t.quant for n, t in compiled[m].qgraph.tensors.items() if not t.is_const}
    assert params("auto") == params("hybrid") != params("minmax")
    model = onnx.load(str(path))
    model.graph.output.append(helper.make_tensor_value_info("r0", TensorProto.FLOAT, None))
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    outs = [sess.run(["r0", "y"], {"x": x}) for x in xs]
    r0 = np.concatenate([o[0].ravel() for o in outs])
    y = np.concatenate([o[1].ravel() for o in outs])
    hidden = [t.quant for t in compiled["hybrid"].qgraph.tensors.values()
              if t.quant is not None and not t.is_const and t.name not in ("x", "y")]
    hi = float(np.percentile(r0, 99.99))
    assert any(abs((127 - q.zp) * q.s - hi) <= q.s for q in hidden)      # the clipped relu range
    out = compiled["hybrid"].qgraph.tensors["y"].quant
    assert (127 - out.zp) * out.s == pytest.approx(y.max(), abs=out.s) and (-128 - out.zp) * out.s == \
        pytest.approx(min(y.min(), 0.0), abs=out.s)


def test_hybrid_keeps_inputs_outputs_and_what_a_softmax_or_arg_max_reads_whole():
    from npukit.ir.graph import DType, Graph, Node, Op, Tensor
    from npukit.quant.calibrate import whole_tensors
    t = {n: Tensor(n, (1, 4), DType.F32) for n in ("x", "h", "l", "p", "k", "y")}
    g = Graph((Node(Op.CLAMP, "a", ("x",), ("h",)), Node(Op.CLAMP, "b", ("h",), ("l",)),
               Node(Op.SOFTMAX, "s", ("l",), ("p",)), Node(Op.CLAMP, "c", ("h",), ("k",)),
               Node(Op.ARG_MAX, "m", ("k",), ("y",))), t, ("x",), ("p", "y"))
    assert whole_tensors(g) == {"x", "l", "p", "k", "y"}       # h, a hidden activation, is clipped


@pytest.mark.parametrize("shape, dense", [((1, 1, 320, 320), True), ((1, 256, 256, 1), True), ((1, 64, 64, 39), True),
                                          ((1, 1, 1, 1404), False), ((1, 40, 6625), False), ((1, 4), False)])
def test_a_dense_map_is_a_4d_output_with_height_and_width_in_either_layout(shape, dense):
    from npukit.ir.graph import DType, Graph, Node, Op, Tensor
    from npukit.quant.calibrate import auto_method, dense_map
    g = Graph((Node(Op.CLAMP, "a", ("x",), ("y",)),), {n: Tensor(n, shape, DType.F32) for n in "xy"}, ("x",), ("y",))
    assert dense_map(g) is dense and auto_method(g) == ("hybrid" if dense else "minmax")
