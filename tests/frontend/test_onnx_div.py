"""Div by a computed value runs on the NPU as the divisor's reciprocal (a 256-entry table) times
the dividend, against onnxruntime; a divisor calibrated across 0 is a calibration warning."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from onnx import helper
from onnx_testutil import model_bytes, onnxruntime_outputs

import npukit
from npukit.quant.calib_warnings import CalibrationWarning

SHAPE = (1, 4, 6, 6)


def _model(shift: float) -> bytes:
    """y = x / (|z| + shift): per-sample normalisation by a computed scale (basic-pitch's kind)."""
    nodes = [helper.make_node("Abs", ["z"], ["a"]), helper.make_node("Add", ["a", "shift"], ["d"]),
             helper.make_node("Div", ["x", "d"], ["y"])]
    return model_bytes(nodes, {"x": SHAPE, "z": SHAPE}, ["y"], {"shift": np.array(shift, np.float32)})


def _compile(tmp_path, mb: bytes, rng):
    (tmp_path / "m.onnx").write_bytes(mb)
    calib = {"x": rng.normal(size=(8,) + SHAPE).astype(np.float32),
             "z": rng.normal(size=(8,) + SHAPE).astype(np.float32)}
    return npukit.compile(tmp_path / "m.onnx", "npu-m", calibration=calib, sqnr=False), calib


def test_division_by_a_computed_value_runs_on_the_npu(tmp_path):
    rng = np.random.default_rng(0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CalibrationWarning)
        prog, calib = _compile(tmp_path, mb := _model(1.0), rng)
    ops = [(layer.op, layer.target) for layer in prog.program.layers]
    assert {t for _, t in ops} == {"npu"} and ("unary", "npu") in ops, ops
    for k in range(3):
        feed = {n: v[k] for n, v in calib.items()}
        want, got = onnxruntime_outputs(mb, feed)["y"], prog.run(feed)["y"]
        # int8 x (step ~0.03), 1/d in (0.2, 1] (step ~0.004) and y (step ~0.03): a few steps
        np.testing.assert_allclose(got, want, atol=0.1)
        assert np.corrcoef(got.ravel(), want.ravel())[0, 1] > 0.99


def test_a_divisor_calibrated_across_zero_is_a_warning(tmp_path):
    with pytest.warns(CalibrationWarning, match=r"reciprocal .* holds 0: 1/x is unbounded"):
        _compile(tmp_path, _model(-0.5), np.random.default_rng(0))

