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
from npukit.testing.tflite_builder import Operator, TensorSpec, build_model, run_reference

f32 = lambda v: float(np.float32(v))  # noqa: E731


def _weights(rng, shape, axis):
    w = rng.integers(-127, 128, size=shape).astype(np.int8)
    return w, [f32(s) for s in rng.uniform(0.004, 0.02, shape[axis])]


def _bias(rng, s_in, ws):
    scales = [f32(s_in * s) for s in ws]
    return rng.integers(-20_000, 20_000, len(ws)).astype(np.int64), scales


def model_16x8(seed: int = 0, hw: int = 6, c: int = 3, k: int = 8, classes: int = 5) -> bytes:
    rng = np.random.default_rng(seed)
    x8 = TensorSpec("x", (1, hw, hw, c), "int8", 0.02, -5)
    s1, s2, s3, s4 = 6e-5, 4e-4, 1.5e-3, 4e-3
    x16 = TensorSpec("x16", (1, hw, hw, c), "int16", s1, 0)
    wc, wcs = _weights(rng, (k, 3, 3, c), 0)
    bc, bcs = _bias(rng, s1, wcs)
    conv_out = TensorSpec("conv", (1, hw, hw, k), "int16", s2, 0)
    co = tfl.Conv2DOptionsT()
    co.padding, co.strideH, co.strideW, co.dilationHFactor, co.dilationWFactor = tfl.Padding.SAME, 1, 1, 1, 1
    co.fusedActivationFunction = tfl.ActivationFunctionType.RELU
    wd, wds = _weights(rng, (1, 3, 3, k), 3)
    bd, bds = _bias(rng, s2, wds)
    ho = (hw + 1) // 2
    dw_out = TensorSpec("dw", (1, ho, ho, k), "int16", s3, 0)
    do = tfl.DepthwiseConv2DOptionsT()
    do.padding, do.strideH, do.strideW, do.depthMultiplier = tfl.Padding.SAME, 2, 2, 1
    do.dilationHFactor = do.dilationWFactor = 1
    wf, wfs = _weights(rng, (classes, ho * ho * k), 0)
    bf, bfs = _bias(rng, s3, wfs)
    fc_out = TensorSpec("fc", (1, classes), "int16", s4, 0)
    y = TensorSpec("y", (1, classes), "int8", 0.5, 3)
    ops = [
        Operator("QUANTIZE", (x8,), (x16,)),
        Operator("CONV_2D", (x16, TensorSpec("wc", wc.shape, "int8", wcs, 0, 0, wc),
                             TensorSpec("bc", bc.shape, "int64", bcs, 0, 0, bc)), (conv_out,), co, 4),
        Operator("DEPTHWISE_CONV_2D", (conv_out, TensorSpec("wd", wd.shape, "int8", wds, 0, 3, wd),
                                       TensorSpec("bd", bd.shape, "int64", bds, 0, 0, bd)), (dw_out,), do, 5),
        Operator("FULLY_CONNECTED", (dw_out, TensorSpec("wf", wf.shape, "int8", wfs, 0, 0, wf),
                                     TensorSpec("bf", bf.shape, "int64", bfs, 0, 0, bf)), (fc_out,),
                 tfl.FullyConnectedOptionsT(), 5),
        Operator("QUANTIZE", (fc_out,), (y,)),
    ]
    return build_model(ops, [x8], [y])


@pytest.mark.parametrize("arch", ["npu-m", "npu-s"])
def test_16x8_model_runs_on_the_npu_bit_exact(tmp_path, arch):
    path = tmp_path / "m16x8.tflite"
    model = model_16x8()
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
