"""MatMul of a constant matrix by an activation (a mel filterbank applied to a [.., bins,
frames] power spectrogram; a stack of them, tf2onnx's RFFT as [2, bins, n] real and imaginary
DFT matrices, by 2-D frames) runs on the NPU as a fully connected layer between two
transposes, against onnxruntime (the float import and the compiled int8 program)."""
from __future__ import annotations


import numpy as np
import pytest
from onnx_testutil import assert_compiled_matches_onnxruntime, check_against_onnxruntime, model_bytes, node, ops

from npukit.ir.graph import Op


@pytest.mark.parametrize("x_shape, c_shape", [((1, 20, 7), (5, 20)), ((20, 7), (5, 20)),
                                              ((2, 3, 20, 7), (5, 20)), ((1, 20, 7), (1, 5, 20)),
                                              ((20, 7), (2, 5, 20)), ((20, 7), (3, 2, 5, 20))])
def test_constant_by_activation_import(x_shape, c_shape):
    c = np.random.default_rng(0).standard_normal(c_shape).astype(np.float32)
    mb = model_bytes([node("MatMul", ["c", "x"], ["y"])], {"x": x_shape}, ["y"], {"c": c})
    g = check_against_onnxruntime(mb)
    assert Op.FULLY_CONNECTED in ops(g) and Op.HOST_FLOAT not in ops(g)


def test_filterbank_compiled(tmp_path):
    rng = np.random.default_rng(1)
    bank = np.abs(rng.standard_normal((8, 24))).astype(np.float32) * 0.2
    mb = model_bytes([node("MatMul", ["bank", "x"], ["y"])], {"x": (1, 24, 10)}, ["y"], {"bank": bank})
    path = tmp_path / "bank.onnx"
    path.write_bytes(mb)
    xs = rng.uniform(0, 1, (8, 1, 24, 10)).astype(np.float32)
    assert_compiled_matches_onnxruntime(path, xs, k=2, steps=2.0)
