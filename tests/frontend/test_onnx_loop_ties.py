"""An unrolled ONNX Loop's per-iteration copies of a body value take one quantisation (ir.ties)
when the Loop maps over the batch; a recurrence keeps one range per iteration.

The recurrence: a carried row v, GROWTH (1.5) times larger after each of four iterations
(v <- 1.5 v + b), so that each iteration's copy of a body value sees its own range; the scan
output stacks each iteration's v / 2. The compiled program matches onnxruntime within the
error its scales allow, worked out in closed form: each int8 rounding adds at most half a
step (s_v for r and each v, s_h for each h; the largest of a value's copies bounds them all),
and an iteration multiplies what v carries by GROWTH, so after the iterations v is off by at
most GROWTH^T s_v / 2 + sum_k GROWTH^k (s_h + s_v) / 2, a scan by half of what its v is (and
half its own step), and y (its Relu) by that and half its step.
The map: tf2onnx's map_fn over a batch of two rows, each iteration computing from its own row.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from onnx_testutil import map_fn_model, node

import npukit
from npukit.frontend.onnx import load_onnx
from npukit.ir.ties import Ties
from npukit.ptq import quantise

TRIPS = 4
GROWTH = 1.5


def _growing_loop() -> bytes:
    body = helper.make_graph(
        [node("Mul", ["v", "growth"], ["h"]), node("Add", ["h", "b"], ["v_out"]), node("Mul", ["v_out", "half"], ["scan"]),
         node("Add", ["i", "one_i"], ["i1"]), node("Less", ["i1", "trips"], ["cond_out"])], "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond", TensorProto.BOOL, []),
         helper.make_tensor_value_info("v", TensorProto.FLOAT, [1, 8])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("v_out", TensorProto.FLOAT, [1, 8]),
         helper.make_tensor_value_info("scan", TensorProto.FLOAT, [1, 8])],
        [numpy_helper.from_array(np.array(1, np.int64), "one_i"),
         numpy_helper.from_array(np.array(TRIPS, np.int64), "trips"),
         numpy_helper.from_array(np.array(GROWTH, np.float32), "growth"),
         numpy_helper.from_array(np.array(0.5, np.float32), "half"),
         numpy_helper.from_array(np.linspace(-0.5, 0.5, 8).astype(np.float32).reshape(1, 8), "b")])
    graph = helper.make_graph(
        [node("Relu", ["x"], ["r"]), node("Loop", ["M", "c", "r"], ["v_last", "stacked"], body=body),
         node("Relu", ["stacked"], ["y"])], "t",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None),
         helper.make_tensor_value_info("v_last", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.array(2**63 - 1, np.int64), "M"), numpy_helper.from_array(np.array(True), "c")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8).SerializeToString()


def _calibration() -> np.ndarray:
    """Samples in [-1, 2], and the largest input, so that no test input lies beyond the ranges."""
    x = np.random.default_rng(0).uniform(-1, 2, (8, 1, 8)).astype(np.float32)
    return np.concatenate([x, np.full((1, 1, 8), 2.0, np.float32)])


def _scales(g, group) -> set[float]:
    """The int8 scales of a tie group's members that quantised graph `g` still holds."""
    return {g.tensors[t].qp.s for t in group if t in g.tensors}


def _copies(g, name: str) -> list[str]:
    """The per-iteration copies of body value `name` in graph `g` (name, name_1, ...)."""
    return [t for t in [name] + [f"{name}_{k}" for k in range(1, TRIPS)] if t in g.tensors]


def test_map_is_tied_recurrence_is_not():
    g = load_onnx(_map_fn())
    assert not any(hasattr(n.attrs, "op_type") for n in g.nodes)        # unrolled: no host node
    assert frozenset({"h", "h_1"}) in g.ties.groups and frozenset({"scan", "scan_1"}) in g.ties.groups
    grown = load_onnx(_growing_loop())
    assert not any(hasattr(n.attrs, "op_type") for n in grown.nodes)
    assert grown.ties.groups == () and len(_copies(grown, "h")) == TRIPS


def test_tied_copies_share_one_scale_untied_ones_do_not():
    """Calibrated on batches whose first row is small and second large (15x)."""
    g = load_onnx(_map_fn())
    calib = np.random.default_rng(2).standard_normal((8, 2, 3, 4)).astype(np.float32) * \
        np.array([0.2, 3.0], np.float32)[:, None, None]
    tied = quantise(g, {"x": calib}, "minmax", sqnr=False).graph
    untied = quantise(replace(g, ties=Ties()), {"x": calib}, "minmax", sqnr=False).graph
    groups = [grp for grp in g.ties.groups if len(_scales(tied, grp)) > 0]
    assert groups
    assert all(len(_scales(tied, grp)) == 1 for grp in groups)
    spread = [sorted(_scales(untied, grp)) for grp in groups]
    assert any(len(s) == 2 and s[-1] / s[0] > 5 for s in spread), spread


def test_recurrence_program_matches_onnxruntime(tmp_path):
    mb = _growing_loop()
    path = tmp_path / "growing.onnx"
    path.write_bytes(mb)
    prog = npukit.compile(path, "npu-m", calibration={"x": _calibration()}, method="minmax", sqnr=False)
    assert prog.profile().host_ops == []
    sess = ort.InferenceSession(mb)
    qg = prog.qgraph
    steps = {name: [qg.tensors[t].qp.s for t in _copies(qg, name)] for name in ("h", "v_out", "scan")}
    assert len(set(steps["h"])) == TRIPS           # one scale per iteration, growing with v
    step = {name: max(s + ([qg.tensors["v_last"].qp.s] if name == "v_out" else [])) for name, s in steps.items()}
    s_h, s_v = step["h"], step["v_out"]
    v_err = GROWTH ** TRIPS * s_v / 2 + sum(GROWTH ** k for k in range(TRIPS)) * (s_h + s_v) / 2
    bound = {"v_last": v_err, "y": v_err / 2 + step["scan"] / 2 + qg.tensors["y"].qp.s / 2}
    for x in np.random.default_rng(1).uniform(-1, 2, (4, 1, 8)).astype(np.float32):
        want = dict(zip(["y", "v_last"], sess.run(None, {"x": x})))
        got = prog.run({"x": x})
        for name in want:
            np.testing.assert_allclose(got[name], want[name], atol=bound[name], err_msg=name)


def _map_fn() -> bytes:
    """tf2onnx's map_fn over a batch of 2: row i (Gather) times w, plus c, scanned out."""
    rng = np.random.default_rng(0)
    w, c = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    return map_fn_model([node("Mul", ["row", "w"], ["h"]), node("Add", ["h", "c"], ["scan"])], {"w": w, "c": c})


def test_tied_map_fn_output_does_not_depend_on_batch_position():
    """Calibrated on batches whose first row is small and second large: untied, the two
    iterations get different scales and a row's result depends on where it sits in the batch;
    tied, swapping the rows swaps the results exactly (each within two output steps of
    onnxruntime's)."""
    from npukit.measure import run_dequantised
    mb = _map_fn()
    g = load_onnx(mb)
    rng = np.random.default_rng(2)
    calib = rng.standard_normal((8, 2, 3, 4)).astype(np.float32) * np.array([0.2, 3.0], np.float32)[:, None, None]
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    swapped = x[::-1].copy()
    want = ort.InferenceSession(mb).run(None, {"x": x})[0]
    results = {}
    for tied in (True, False):
        q = quantise(g if tied else replace(g, ties=Ties()), {"x": calib}, "minmax", sqnr=False).graph
        a, b = run_dequantised(q, {"x": x})["y"], run_dequantised(q, {"x": swapped})["y"]
        results[tied] = float(np.abs(a - b[::-1]).max())
        if tied:
            np.testing.assert_allclose(a, want, atol=2 * q.tensors["y"].qp.s)
    assert results[True] == 0.0 and results[False] > 0.0, results
