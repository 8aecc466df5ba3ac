"""A 16x8 TFLite model (QUANTIZE int8 -> int16, CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED,
QUANTIZE int16 -> int8) compiled by npukit runs wholly on the NPU and equals LiteRT's
reference interpreter bit for bit; the refusal of other int16 operators names them."""
from __future__ import annotations

import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as tfl

import npukit
from npukit.errors import UnsupportedOpError
from npukit.frontend.tflite import load_tflite
from npukit.testing.models_16x8 import chain_16x8
from npukit.testing.tflite_builder import Operator, TensorSpec, build_model, run_reference


@pytest.mark.parametrize("arch", ["npu-m", "npu-s"])
def test_16x8_model_runs_on_the_npu_bit_exact(tmp_path, arch):
    path = tmp_path / "m16x8.tflite"
    model = chain_16x8()
    path.write_bytes(model)
    cm = npukit.compile(path, arch=arch, host="never")
    assert cm.profile().host_ops == []
    rng = np.random.default_rng(1)
    for _ in range(3):
        x = rng.integers(-128, 128, (1, 6, 6, 3)).astype(np.int8)
        want = run_reference(model, [x])[0]
        got = cm.run({cm.input_names[0]: x})[cm.output_names[0]]
        np.testing.assert_array_equal(got, want)
        assert len(np.unique(want)) > 2          # not saturated to a constant


def test_other_int16_operators_are_refused_naming_the_operator(tmp_path):
    x = TensorSpec("x", (1, 8), "int16", 0.001, 0)
    y = TensorSpec("y", (1, 8), "int16", 0.001, 0)
    path = tmp_path / "l2.tflite"
    path.write_bytes(build_model([Operator("L2_NORMALIZATION", (x,), (y,), tfl.L2NormOptionsT())], [x], [y]))
    with pytest.raises(UnsupportedOpError, match=r"operator 0 \(L2_NORMALIZATION\).*int16"):
        load_tflite(path)


def test_float_io_around_int16_is_folded_into_the_boundary(tmp_path):
    """float -> QUANTIZE int16 -> CONV_2D -> DEQUANTIZE float (the converter's 16x8 model with
    float I/O): the boundary quantises to int16 and dequantises from it, bit for bit."""
    rng = np.random.default_rng(0)
    w = rng.integers(-127, 128, (4, 3, 3, 2)).astype(np.int8)
    b = rng.integers(-1000, 1000, 4).astype(np.int64)
    xf, of = TensorSpec("xf", (1, 5, 5, 2), "float32"), TensorSpec("of", (1, 5, 5, 4), "float32")
    x16, o16 = TensorSpec("x16", (1, 5, 5, 2), "int16", 1e-4, 0), TensorSpec("o16", (1, 5, 5, 4), "int16", 2e-4, 0)
    co = tfl.Conv2DOptionsT()
    co.padding, co.strideH, co.strideW, co.dilationHFactor, co.dilationWFactor = tfl.Padding.SAME, 1, 1, 1, 1
    model = build_model([
        Operator("QUANTIZE", (xf,), (x16,)),
        Operator("CONV_2D", (x16, TensorSpec("w", w.shape, "int8", [0.01] * 4, 0, 0, w),
                             TensorSpec("b", (4,), "int64", [1e-6] * 4, 0, 0, b)), (o16,), co, 4),
        Operator("DEQUANTIZE", (o16,), (of,))], [xf], [of])
    path = tmp_path / "float_io.tflite"
    path.write_bytes(model)
    cm = npukit.compile(path, host="never")
    for _ in range(2):
        x = rng.normal(0, 1, (1, 5, 5, 2)).astype(np.float32)
        got = cm.run({cm.input_names[0]: x})[cm.output_names[0]]
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, run_reference(model, [x])[0])
