"""`--calib-method auto`: the candidate calibration whose int8 graph measures best on the
held-out folds, each fold run on the graph calibrated without it. The oracle is onnxruntime's
float model against separate compiles on the other samples; merged observers against one
observer over all the samples."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import npukit
from npukit.choices import AUTO_METHODS, METHODS
from npukit.quant.calibrate import Observer, merged
from npukit.quant.search import AUTO_MARGIN_DB

N = 3           # calibration samples: three folds of one


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


def test_auto_picks_the_candidate_that_measures_best_on_the_folds(tmp_path):
    path = conv_relu(tmp_path / "cr.onnx")
    rng = np.random.default_rng(5)
    xs = rng.standard_normal((N, 1, 2, 6, 6)).astype(np.float32)
    xs[0, 0, :, 0, 0] = 12.0         # an outlier: percentile / mse clip it, minmax does not
    auto = npukit.compile(path, "npu-m", calibration={"x": xs}, method="auto", options={"timed_candidates": 1})
    meta = auto.program.meta
    scores = meta["calibration_auto"]
    assert "auto" in METHODS and set(scores) == set(AUTO_METHODS)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    f = np.concatenate([sess.run(None, {"x": x})[0].ravel() for x in xs]).astype(np.float64)
    for m in AUTO_METHODS:     # each sample on the model compiled with method m on the other two
        q = []
        for i in range(N):
            c = npukit.compile(path, "npu-m", calibration={"x": np.delete(xs, i, axis=0)}, method=m,
                               options={"timed_candidates": 1})
            q.append(c.run({"x": xs[i]})["y"].ravel())
        qq = np.concatenate(q).astype(np.float64)
        assert scores[m] == pytest.approx(10 * np.log10(f @ f / ((f - qq) @ (f - qq))), abs=0.01), m
    best = max(scores, key=lambda k: scores[k])
    expect = best if scores[best] >= scores["minmax"] + (AUTO_MARGIN_DB if best != "minmax" else 0) else "minmax"
    assert meta["calibration"] == expect
    again = npukit.compile(path, "npu-m", calibration={"x": xs}, method=expect, options={"timed_candidates": 1})
    assert [np.array_equal(a.data, b.data) if a.data is not None else a.quant == b.quant
            for a, b in zip(auto.qgraph.tensors.values(), again.qgraph.tensors.values())] == \
        [True] * len(auto.qgraph.tensors)     # the graph shipped is that method's on all samples
    one = npukit.compile(path, "npu-m", calibration={"x": xs[:1]}, method="auto", options={"timed_candidates": 1})
    assert one.program.meta["calibration"] == "minmax" and "calibration_auto" not in one.program.meta
