"""A constant piece of a concatenation (a ViT's class token before its patch embeddings) runs on
the NPU at the concatenation's quantisation, whose range holds the constant's values; against
onnxruntime's float model, within int8 steps."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from onnx_testutil import model_bytes, node, onnxruntime_outputs

import npukit

TOKENS, WIDTH = 6, 8


@pytest.mark.parametrize("scale", [0.5, 4.0])     # the token inside the patches' range, and beyond it
def test_class_token_concatenation(scale, tmp_path):
    rng = np.random.default_rng(4)
    token = (rng.standard_normal((1, 1, WIDTH)) * scale).astype(np.float32)
    mb = model_bytes([node("MatMul", ["x", "w"], ["patches"]), node("Concat", ["cls", "patches"], ["seq"], axis=1),
                      node("Relu", ["seq"], ["y"])],
                     {"x": (1, TOKENS, WIDTH)}, ["y"],
                     {"w": rng.standard_normal((WIDTH, WIDTH)).astype(np.float32) * 0.3, "cls": token})
    path = tmp_path / "cls.onnx"
    path.write_bytes(mb)
    calib = rng.uniform(-1, 1, (8, 1, TOKENS, WIDTH)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = npukit.compile(path, "npu-m", calibration={"x": calib}, sqnr=False)
    assert not model.profile().host_ops
    step = float(model.program.outputs[0].scale)
    for x in calib[:3]:
        got, want = model.run({"x": x})["y"], onnxruntime_outputs(mb, {"x": x})["y"]
        assert np.abs(got - want).max() <= 3 * step      # (the int8 matmul before it)
        # the token itself: rounded at the concatenation's scale, then at the ReLU's (about half of it)
        assert np.abs(got[0, 0] - np.maximum(token[0, 0], 0)).max() <= 1.5 * step
