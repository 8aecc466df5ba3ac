"""Reductions on the NPU: ONNX ReduceSum / Max / Min / Mean over any axes against onnxruntime
on the quantised input (within one output LSB), and TFLite SUM against LiteRT (the reference
kernel where it reads its bytes right, the default kernel everywhere)."""
from __future__ import annotations

import warnings

import numpy as np
import onnx
import pytest
from ai_edge_litert import schema_py_generated as tfl
from onnx import helper
from onnx_testutil import model_bytes, onnxruntime_outputs

import npukit
from npukit.kernels import kernels_vpu as kv
from npukit.testing.tflite_builder import TensorSpec as T
from npukit.testing.tflite_builder import build_single_op, run_default, run_reference

SHAPE = (2, 3, 5, 7)
ONNX_CASES = [(op, axes, keep) for op in ("ReduceSum", "ReduceMax", "ReduceMin", "ReduceMean")
              for axes, keep in (((1,), 1), ((1, 3), 0), ((0, 2), 1), ((2, 3), 0), ((0, 1, 2, 3), 1))]


def _onnx_model(op, axes, keep) -> bytes:
    if op == "ReduceSum":            # axes an input from opset 13, the others from 18
        n = helper.make_node(op, ["x", "axes"], ["y"], keepdims=keep)
        return model_bytes([n], {"x": SHAPE}, ["y"], {"axes": np.asarray(axes, np.int64)}, 13)
    return model_bytes([helper.make_node(op, ["x"], ["y"], axes=list(axes), keepdims=keep)], {"x": SHAPE}, ["y"])


@pytest.mark.parametrize("op,axes,keep", ONNX_CASES, ids=[f"{o}-{a}-{k}" for o, a, k in ONNX_CASES])
def test_onnx_reduction_within_one_lsb_of_onnxruntime(tmp_path, op, axes, keep):
    mb = _onnx_model(op, axes, keep)
    path = tmp_path / "m.onnx"
    path.write_bytes(mb)
    rng = np.random.default_rng(5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prog = npukit.compile(path, "npu-m", calibration={"x": rng.normal(size=(8, *SHAPE)).astype(np.float32)})
    assert prog.profile().host_ops == []
    assert any(la.op == {"ReduceSum": "reduce_sum", "ReduceMax": "reduce_max", "ReduceMin": "reduce_min",
                         "ReduceMean": "mean"}[op] for la in prog.program.layers)
    x_io, y_io = prog.program.inputs[0], prog.program.outputs[0]
    x = rng.normal(size=SHAPE).astype(np.float32)
    x_q = kv.dequantize(kv.quantize(x, x_io.scale, x_io.zero_point), x_io.scale, x_io.zero_point)
    want = onnxruntime_outputs(mb, {"x": x_q.astype(np.float32)})["y"]
    got = prog.run({"x": x})["y"]
    lo, hi = (np.array([-128, 127]) - y_io.zero_point) * y_io.scale
    assert got.shape == want.shape
    assert np.abs(got - np.clip(want, lo, hi)).max() <= y_io.scale * 1.001


def _sum_model(shape, axes, keep, s, z, so, zo) -> bytes:
    out = tuple(1 if i in axes else d for i, d in enumerate(shape) if keep or i not in axes)
    o = tfl.ReducerOptionsT()
    o.keepDims = keep
    return build_single_op("SUM", [T("x", shape, scale=s, zero_point=z),
                                   T("axes", (len(axes),), "int32", data=np.asarray(axes, np.int32))],
                           [T("y", out, scale=so, zero_point=zo)], o)


@pytest.mark.parametrize("axes,keep", [((3,), False), ((1, 2), True), ((0, 2), False), ((1, 2, 3), True)])
@pytest.mark.parametrize("s,z,so,zo", [(0.05, 0, 0.2, 3), (0.02, -6, 0.3, 10), (0.1, 5, 0.1, 5), (0.013, 100, 0.7, -90)])
def test_tflite_sum_equals_litert(tmp_path, axes, keep, s, z, so, zo):
    """SUM equals LiteRT's default int8 kernel everywhere (ties to even: scale ratios 1/4 and 1
    make exact ties). LiteRT 2.3.0's reference kernel reads the codes as uint8 and clamps to
    [0, 255]; where that reading is harmless (non-negative codes, sums in [0, 126]) the NPU is
    within one step of it (it rounds ties away from zero)."""
    shape = (2, 4, 5, 6)
    model = _sum_model(shape, axes, keep, s, z, so, zo)
    path = tmp_path / "sum.tflite"
    path.write_bytes(model)
    prog = npukit.compile(path, "npu-m")
    assert [la.target for la in prog.program.layers] == ["npu"] * len(prog.program.layers)
    rng = np.random.default_rng(sum(axes))
    for x in (rng.integers(-128, 128, size=shape).astype(np.int8), rng.integers(0, 6, size=shape).astype(np.int8)):
        got = prog.run({prog.input_names[0]: x})[prog.output_names[0]]
        np.testing.assert_array_equal(got, run_default(model, [x])[0])
    ref = run_reference(model, [x])[0].astype(int)
    inside = (got >= 0) & (got <= 126)
    assert np.abs(got.astype(int) - ref)[inside].max(initial=0) <= 1


@pytest.mark.parametrize("op", ["ArgMax", "ArgMin"])
@pytest.mark.parametrize("shape,axis,keep,last", [((2, 5, 4, 3), 1, 1, 0), ((2, 5, 4, 3), 3, 0, 1),
                                                  ((3, 6, 7), 2, 0, 0), ((3, 6, 7), 0, 1, 1), ((9, 4), 1, 0, 0)])
def test_onnx_arg_max_equals_onnxruntime(tmp_path, op, shape, axis, keep, last):
    """Codes order as the dequantised values do: the indices equal onnxruntime's on the
    quantised input exactly, ties (few distinct values) included; int64, not dequantised."""
    model = onnx.load_model_from_string(model_bytes(
        [helper.make_node(op, ["x"], ["y"], axis=axis, keepdims=keep, select_last_index=last)],
        {"x": shape}, ["y"], opset=13))
    model.graph.output[0].type.tensor_type.elem_type = onnx.TensorProto.INT64
    mb = model.SerializeToString()
    path = tmp_path / "m.onnx"
    path.write_bytes(mb)
    rng = np.random.default_rng(9)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prog = npukit.compile(path, "npu-m", calibration={"x": rng.normal(size=(4, *shape)).astype(np.float32)})
    assert prog.profile().host_ops == []
    assert [la.target for la in prog.program.layers if la.op == "arg_max"] == ["npu"]
    x_io = prog.program.inputs[0]
    x = np.round(rng.normal(size=shape) * 2) / 2          # few distinct values: ties
    x_q = kv.dequantize(kv.quantize(x.astype(np.float32), x_io.scale, x_io.zero_point), x_io.scale, x_io.zero_point)
    want = onnxruntime_outputs(mb, {"x": x_q.astype(np.float32)})["y"]
    got = prog.run({"x": x.astype(np.float32)})["y"]
    assert got.dtype == np.int64 and got.shape == want.shape
    np.testing.assert_array_equal(got, want)


def test_reduction_longer_than_abuf_runs_on_the_host(tmp_path):
    """A mean over more elements than ABUF holds is not an error: the host runs it, with the
    reason, and the result still equals LiteRT's reference kernel."""
    shape = (1, 300, 300, 2)
    o = tfl.ReducerOptionsT()
    o.keepDims = True
    model = build_single_op("MEAN", [T("x", shape, scale=0.02, zero_point=3),
                                     T("axes", (2,), "int32", data=np.asarray([1, 2], np.int32))],
                            [T("y", (1, 1, 1, 2), scale=0.01, zero_point=-4)], o)
    path = tmp_path / "big_mean.tflite"
    path.write_bytes(model)
    prog = npukit.compile(path, "npu-s")
    (layer,) = prog.program.layers
    assert layer.target == "host" and "larger than ABUF" in layer.reason
    x = np.random.default_rng(0).integers(-128, 128, size=shape).astype(np.int8)
    np.testing.assert_array_equal(prog.run({prog.input_names[0]: x})[prog.output_names[0]],
                                  run_reference(model, [x])[0])


@pytest.mark.parametrize("op", ["GlobalMaxPool", "GlobalAveragePool"])
@pytest.mark.parametrize("shape", [(1, 6, 40), (1, 4, 3, 5, 6)])
def test_onnx_global_pool_of_3d_and_5d_inputs_within_one_lsb(tmp_path, op, shape):
    """A global pool of an (N, C, L) input (a 1-D CNN's, as jax2tf exports it) or an
    (N, C, D, H, W) one reduces the spatial axes on the NPU, within one output LSB of
    onnxruntime on the quantised input."""
    mb = model_bytes([helper.make_node(op, ["x"], ["y"])], {"x": shape}, ["y"])
    path = tmp_path / "m.onnx"
    path.write_bytes(mb)
    rng = np.random.default_rng(len(shape))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prog = npukit.compile(path, "npu-m", calibration={"x": rng.normal(size=(8, *shape)).astype(np.float32)})
    assert prog.profile().host_ops == []
    x_io, y_io = prog.program.inputs[0], prog.program.outputs[0]
    x = rng.normal(size=shape).astype(np.float32)
    x_q = kv.dequantize(kv.quantize(x, x_io.scale, x_io.zero_point), x_io.scale, x_io.zero_point)
    want = onnxruntime_outputs(mb, {"x": x_q.astype(np.float32)})["y"]
    got = prog.run({"x": x})["y"]
    assert got.shape == want.shape == (*shape[:2], *(1,) * (len(shape) - 2))
    assert np.abs(got - want).max() <= y_io.scale * 1.001
