"""A fully connected layer whose output channel has near-zero weights beside a large bias (a
class the model never predicts: the last layer of lac's Chinese tagger has five, weights
1.3e-5 and bias -13.7) needs a bias code of bias / (input scale x weight scale) ~ 1.7e10,
past int32. Clipped, the bias became -1.7 and those classes won. The channel's weight scale
now grows until its bias code fits; against onnxruntime float."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from onnx import helper

import npukit

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "frontend"))
from onnx_testutil import model_bytes, onnxruntime_outputs  # noqa: E402

IN, OUT = 64, 12


def test_a_dead_channel_keeps_its_large_bias(tmp_path):
    rng = np.random.default_rng(0)
    w = (rng.standard_normal((IN, OUT)) * 0.2).astype(np.float32)
    b = rng.uniform(-1, 1, OUT).astype(np.float32)
    w[:, 3] = rng.uniform(-1.3e-5, 1.3e-5, IN)      # dead classes, held down by their bias
    w[:, 7] = rng.uniform(-1e-6, 1e-6, IN)
    b[3], b[7] = -13.7, 9.5
    mb = model_bytes([helper.make_node("MatMul", ["x", "w"], ["m"]), helper.make_node("Add", ["m", "b"], ["y"])],
                     {"x": (1, 5, IN)}, ["y"], {"w": w, "b": b})
    (tmp_path / "fc.onnx").write_bytes(mb)
    calib = {"x": rng.uniform(-1, 1, (8, 1, 5, IN)).astype(np.float32)}
    prog = npukit.compile(tmp_path / "fc.onnx", "npu-m", calibration=calib, sqnr=False)
    x = rng.uniform(-1, 1, (1, 5, IN)).astype(np.float32)
    want, got = onnxruntime_outputs(mb, {"x": x})["y"], prog.run({"x": x})["y"]
    # output range ~ 25 in int8 (step ~0.1): the dead channels within a few steps of their bias
    np.testing.assert_allclose(got[..., [3, 7]], want[..., [3, 7]], atol=0.3)
    np.testing.assert_allclose(got, want, atol=0.4)
    assert (got.argmax(-1) == want.argmax(-1)).all()
