"""A hybrid (dynamic-range quantised) TFLite model, int8 weights beside float32 activations,
compiles as the float model its weights dequantise to, all on the NPU: within int8's error of
LiteRT running its hybrid kernels (which quantise the input on the fly)."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as tfl

from npukit.api import compile as npu_compile
from npukit.frontend.tflite_hybrid import dequantise_hybrid
from npukit.frontend.tflite_read import parse_model
from npukit.testing.tflite_builder import Operator, build_model, options, run_default
from npukit.testing.tflite_builder import TensorSpec as T

RNG = np.random.default_rng(5)


def _int8_weights(shape, axis: int | None):
    w = RNG.standard_normal(shape).astype(np.float32) * 0.4
    if axis is None:
        scale = float(np.abs(w).max() / 127)
        return np.clip(np.round(w / scale), -127, 127).astype(np.int8), scale
    other = tuple(i for i in range(len(shape)) if i != axis)
    scale = np.abs(w).max(axis=other) / 127
    q = np.clip(np.round(w / np.expand_dims(scale, other)), -127, 127).astype(np.int8)
    return q, [float(s) for s in scale]


def _fully_connected() -> tuple[bytes, tuple[int, ...]]:
    q, scale = _int8_weights((6, 10), None)
    x, out = T("x", (2, 10), "float32"), T("y", (2, 6), "float32")
    w = T("w", (6, 10), "int8", scale=scale, data=q)
    b = T("b", (6,), "float32", data=RNG.standard_normal(6).astype(np.float32) * 0.1)
    op = Operator("FULLY_CONNECTED", (x, w, b), (out,), options(tfl.FullyConnectedOptionsT, fusedActivationFunction=1))
    return build_model([op], [x], [out]), (2, 10)


def _conv() -> tuple[bytes, tuple[int, ...]]:
    q, scales = _int8_weights((4, 3, 3, 3), 0)          # per output channel
    x, out = T("x", (1, 6, 6, 3), "float32"), T("y", (1, 6, 6, 4), "float32")
    w = T("w", (4, 3, 3, 3), "int8", scale=scales, zero_point=0, quantized_dimension=0, data=q)
    b = T("b", (4,), "float32", data=np.zeros(4, np.float32))
    op = Operator("CONV_2D", (x, w, b), (out,), options(tfl.Conv2DOptionsT, padding=tfl.Padding.SAME, strideH=1, strideW=1))
    return build_model([op], [x], [out]), (1, 6, 6, 3)


def test_hybrid_weights_become_float_constants():
    model = parse_model(_fully_connected()[0], "fc")
    dequantise_hybrid(model)
    t = next(t for t in model.subgraphs[0].tensors if t.name in ("w", b"w"))
    assert t.type == tfl.TensorType.FLOAT32 and t.quantization is None


@pytest.mark.parametrize("make", [_fully_connected, _conv], ids=["fully_connected", "conv_per_channel"])
def test_hybrid_model_on_the_npu_close_to_litert(make, tmp_path):
    model, shape = make()
    path = tmp_path / "hybrid.tflite"
    path.write_bytes(model)
    xs = RNG.uniform(-1, 1, (10, *shape)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prog = npu_compile(path, "npu-m", calibration={"x": xs[:8]}, sqnr=False)
    assert not prog.profile().host_ops
    for x in xs[8:]:
        want = run_default(model, [x])[0]
        got = prog.run({"x": x})["y"]
        step = float(prog.program.outputs[0].scale)
        # LiteRT's hybrid kernel rounds the input to int8 too (its own scale): a few steps apart
        assert np.abs(got - want).max() <= 4 * step
