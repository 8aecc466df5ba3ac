"""flax's LayerNorm as jax2tf exports it: mean and mean of squares by ReduceSum * 1/n,
var = Max(0, E[x^2] - E[x]^2), (x - mean) * (Reciprocal(Sqrt(var + eps)) * gamma) + beta,
with Reshape / Expand broadcasting the moments back. Imported as one layer norm over the
reduced axis (the last, or a middle one between transposes), it agrees with onnxruntime
where the int8 moments would cancel (inputs with a large mean)."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from onnx import helper
from onnx_testutil import model_bytes, onnxruntime_outputs

import npukit
from npukit.frontend.onnx import load_onnx
from npukit.ir.graph import Op


def _model(shape: tuple[int, ...], axis: int) -> bytes:
    n = shape[axis]
    kept = tuple(1 if i == axis else d for i, d in enumerate(shape))
    rng = np.random.default_rng(axis)
    nodes = [helper.make_node("ReduceSum", ["x", "axes"], ["s"], keepdims=0),
             helper.make_node("Mul", ["s", "inv_n"], ["mean"]),
             helper.make_node("Mul", ["x", "x"], ["x2"]),
             helper.make_node("ReduceSum", ["x2", "axes"], ["s2"], keepdims=0),
             helper.make_node("Mul", ["s2", "inv_n"], ["mean2"]),
             helper.make_node("Mul", ["mean", "mean"], ["mean_sq"]),
             helper.make_node("Sub", ["mean2", "mean_sq"], ["var0"]),
             helper.make_node("Max", ["zero", "var0"], ["var"]),
             helper.make_node("Reshape", ["var", "kept"], ["var_b"]),
             helper.make_node("Add", ["var_b", "eps"], ["var_eps"]),
             helper.make_node("Sqrt", ["var_eps"], ["std"]),
             helper.make_node("Reciprocal", ["std"], ["inv_std"]),
             helper.make_node("Mul", ["inv_std", "gamma"], ["scale"]),
             helper.make_node("Reshape", ["mean", "kept"], ["mean_r"]),
             helper.make_node("Expand", ["mean_r", "full"], ["mean_b"]),
             helper.make_node("Sub", ["x", "mean_b"], ["centred"]),
             helper.make_node("Mul", ["centred", "scale"], ["normed"]),
             helper.make_node("Add", ["normed", "beta"], ["y"])]
    gamma_shape = tuple(d if i == axis else 1 for i, d in enumerate(shape))
    inits = {"axes": np.array([axis], np.int64), "inv_n": np.array(1 / n, np.float32),
             "zero": np.array(0.0, np.float32), "eps": np.array(1e-6, np.float32),
             "kept": np.array(kept, np.int64), "full": np.array(shape, np.int64),
             "gamma": rng.uniform(0.5, 2.0, gamma_shape).astype(np.float32),
             "beta": rng.normal(size=gamma_shape).astype(np.float32)}
    return model_bytes(nodes, {"x": shape}, ["y"], inits)


@pytest.mark.parametrize("shape,axis", [((1, 64), 1), ((1, 16, 8), 1)])
def test_moment_layer_norm_is_one_layer_norm_and_agrees_with_onnxruntime(tmp_path, shape, axis):
    mb = _model(shape, axis)
    g = load_onnx(mb)
    assert [n.op for n in g.nodes].count(Op.LAYER_NORM) == 1
    assert Op.UNARY not in [n.op for n in g.nodes]          # no int8 Sqrt / Reciprocal tables left
    path = tmp_path / "ln.onnx"
    path.write_bytes(mb)
    rng = np.random.default_rng(7)
    calib = (5.0 + rng.normal(size=(8, *shape)) * 0.5).astype(np.float32)   # mean >> spread
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prog = npukit.compile(path, "npu-m", calibration={"x": calib}, sqnr=False)
    x_io = prog.program.inputs[0]
    for x in calib[:3]:
        x_q = ((np.clip(np.round(x / x_io.scale) + x_io.zero_point, -128, 127) - x_io.zero_point) * x_io.scale)
        want = onnxruntime_outputs(mb, {"x": x_q.astype(np.float32)})["y"]
        got = prog.run({"x": x})["y"]
        y_io = prog.program.outputs[0]
        # the layer norm itself is float on the quantised input; its int8 output is within a step
        assert np.abs(got - want).max() <= y_io.scale * 1.01, (np.abs(got - want).max(), y_io.scale)
