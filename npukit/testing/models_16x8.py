"""Generated 16x8 TFLite models (int16 activations with zero point 0, int8 per-channel
weights, int64 bias) for the kernel, simulator and end-to-end tests: single CONV_2D and
DEPTHWISE_CONV_2D with their integer operands, FULLY_CONNECTED, QUANTIZE between int8 and
int16, and a small QUANTIZE -> conv -> depthwise -> FC -> QUANTIZE chain."""
from __future__ import annotations

import numpy as np
from ai_edge_litert import schema_py_generated as tfl

from ..ir.graph import ConvAttrs
from ..kernels import kernels_mxu as kx
from .single_op import _tflite_pads
from .tflite_builder import Operator, TensorSpec, build_model, build_single_op

f32 = lambda v: float(np.float32(v))  # noqa: E731


def conv16x8_model(seed, in_hw, in_ch, out_ch, kernel, stride, padding, out_gain):
    """CONV_2D with int16 input / output (zero point 0), int8 per-channel weights, int64 bias."""
    rng = np.random.default_rng(seed)
    w = rng.integers(-127, 128, size=(out_ch, *kernel, in_ch)).astype(np.int8)
    ws = [float(np.float32(s)) for s in rng.uniform(0.002, 0.05, out_ch)]
    s_in = float(np.float32(rng.uniform(1e-5, 1e-3)))
    fan_in = kernel[0] * kernel[1] * in_ch
    s_out = float(np.float32(s_in * np.mean(ws) * 16000 * 73 * np.sqrt(fan_in) * 2.5 / 32767 * out_gain))
    bias = rng.integers(-50_000 * fan_in, 50_000 * fan_in, size=out_ch).astype(np.int64)
    opts = tfl.Conv2DOptionsT()
    opts.padding = tfl.Padding.SAME if padding == "SAME" else tfl.Padding.VALID
    opts.strideH, opts.strideW = stride
    opts.dilationHFactor = opts.dilationWFactor = 1
    pads = _tflite_pads(opts.padding, in_hw, kernel, stride, (1, 1))
    attrs = ConvAttrs(stride=stride, pads=pads)
    out_hw = kx.conv2d_acc(np.zeros((1, *in_hw, in_ch), np.int8), w, attrs, 0).shape[1:3]
    model = build_single_op("CONV_2D", [
        TensorSpec("input", (1, *in_hw, in_ch), "int16", s_in, 0),
        TensorSpec("filter", w.shape, "int8", ws, 0, 0, w),
        TensorSpec("bias", (out_ch,), "int64", [float(np.float32(s_in * s)) for s in ws], 0, 0, bias)],
        [TensorSpec("output", (1, *out_hw, out_ch), "int16", s_out, 0)], opts, version=4)
    x = rng.integers(-32768, 32768, size=(1, *in_hw, in_ch)).astype(np.int16)
    p = kx.prepare_conv(s_in, np.array(ws), s_out, 0, 0, None, np.int16)
    return model, x, w, bias, attrs, p


def dw16x8_model(seed, in_hw, ch, mult, kernel, stride, dilation, padding, out_gain):
    """DEPTHWISE_CONV_2D with int16 input / output (zero point 0), int8 per-channel weights, int64 bias."""
    rng = np.random.default_rng(seed)
    k = ch * mult
    w = rng.integers(-127, 128, size=(1, *kernel, k)).astype(np.int8)
    ws = [float(np.float32(s)) for s in rng.uniform(0.002, 0.05, k)]
    s_in = float(np.float32(rng.uniform(1e-5, 1e-3)))
    taps = kernel[0] * kernel[1]
    s_out = float(np.float32(s_in * np.mean(ws) * 16000 * 73 * np.sqrt(taps) * 2.5 / 32767 * out_gain))
    bias = rng.integers(-50_000 * taps, 50_000 * taps, size=k).astype(np.int64)
    opts = tfl.DepthwiseConv2DOptionsT()
    opts.padding = tfl.Padding.SAME if padding == "SAME" else tfl.Padding.VALID
    opts.strideH, opts.strideW = stride
    opts.dilationHFactor, opts.dilationWFactor = dilation
    opts.depthMultiplier = mult
    pads = _tflite_pads(opts.padding, in_hw, kernel, stride, dilation)
    attrs = ConvAttrs(stride=stride, dilation=dilation, pads=pads, groups=ch, depthwise=True)
    out_hw = kx.conv2d_acc(np.zeros((1, *in_hw, ch), np.int8), w, attrs, 0).shape[1:3]
    model = build_single_op("DEPTHWISE_CONV_2D", [
        TensorSpec("input", (1, *in_hw, ch), "int16", s_in, 0),
        TensorSpec("filter", w.shape, "int8", ws, 0, 3, w),
        TensorSpec("bias", (k,), "int64", [float(np.float32(s_in * s)) for s in ws], 0, 0, bias)],
        [TensorSpec("output", (1, *out_hw, k), "int16", s_out, 0)], opts, version=5)
    x = rng.integers(-32768, 32768, size=(1, *in_hw, ch)).astype(np.int16)
    p = kx.prepare_conv(s_in, np.array(ws), s_out, 0, 0, None, np.int16)
    return model, x, w, bias, attrs, p


def fc16x8_model(seed, rows, c, k):
    """FULLY_CONNECTED int16 [rows, c] -> int16 [rows, k], per-channel int8 weights, int64 bias."""
    rng = np.random.default_rng(seed)
    w, ws = _weights(rng, (k, c), 0)
    s_in = f32(rng.uniform(1e-5, 1e-3))
    bias, bs = _bias(rng, s_in, ws)
    s_out = f32(s_in * float(np.mean(ws)) * 16000 * 73 * np.sqrt(c) * 2.5 / 32767)
    model = build_single_op("FULLY_CONNECTED", [
        TensorSpec("x", (rows, c), "int16", s_in, 0), TensorSpec("w", w.shape, "int8", ws, 0, 0, w),
        TensorSpec("b", bias.shape, "int64", bs, 0, 0, bias)],
        [TensorSpec("out", (rows, k), "int16", s_out, 0)], tfl.FullyConnectedOptionsT(), version=5)
    return model, rng.integers(-32768, 32768, (rows, c)).astype(np.int16)


def quantize_model(shape, widen: bool, s_in: float, s_out: float, zp: int) -> bytes:
    """QUANTIZE int8 (zero point zp) -> int16 (zero point 0), or int16 -> int8 when not `widen`."""
    a, b = (("int8", zp), ("int16", 0)) if widen else (("int16", 0), ("int8", zp))
    return build_single_op("QUANTIZE", [TensorSpec("x", shape, a[0], f32(s_in), a[1])],
                           [TensorSpec("out", shape, b[0], f32(s_out), b[1])])


def _weights(rng, shape, axis):
    w = rng.integers(-127, 128, size=shape).astype(np.int8)
    return w, [f32(s) for s in rng.uniform(0.004, 0.02, shape[axis])]


def _bias(rng, s_in, ws):
    scales = [f32(s_in * s) for s in ws]
    return rng.integers(-20_000, 20_000, len(ws)).astype(np.int64), scales


def chain_16x8(seed: int = 0, hw: int = 6, c: int = 3, k: int = 8, classes: int = 5) -> bytes:
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
