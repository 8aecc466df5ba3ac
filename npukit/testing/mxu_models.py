"""Seeded single-op int8 TFLite models for the MXU ops: CONV_2D, DEPTHWISE_CONV_2D,
FULLY_CONNECTED, TRANSPOSE_CONV. Each builder returns (model bytes, input arrays).

Quantisation follows the TFLite int8 spec: per-tensor asymmetric activations, symmetric
weights (per-channel unless `per_channel=False`), int32 bias at scale input x weight.
`out_gain` scales the output scale around the one that maps the accumulator spread onto
int8, so tests can push outputs towards saturation or towards tiny multipliers.
"""
from __future__ import annotations

import numpy as np
from ai_edge_litert import schema_py_generated as tfl

from npukit.testing.tflite_builder import TensorSpec, build_single_op

ACTIVATIONS = {
    "NONE": tfl.ActivationFunctionType.NONE,
    "RELU": tfl.ActivationFunctionType.RELU,
    "RELU6": tfl.ActivationFunctionType.RELU6,
    "RELU_N1_TO_1": tfl.ActivationFunctionType.RELU_N1_TO_1,
}
PADDINGS = {"SAME": tfl.Padding.SAME, "VALID": tfl.Padding.VALID}


def _f32(x) -> float:
    return float(np.float32(x))


def _activation_qparams(rng: np.random.Generator) -> tuple[float, int]:
    return _f32(rng.uniform(0.005, 0.1)), int(rng.integers(-40, 41))


def _weights(rng: np.random.Generator, shape: tuple[int, ...], channel_axis: int, per_channel: bool):
    """Random int8 weights and their per-channel (or single) float32 scales."""
    w = rng.integers(-127, 128, size=shape).astype(np.int8)
    n = shape[channel_axis] if per_channel else 1
    scales = rng.uniform(0.002, 0.05, size=n).astype(np.float32)
    return w, [float(s) for s in scales]


def _output_qparams(rng, in_scale: float, w_scales: list[float], fan_in: int, out_gain: float):
    """An output scale that keeps typical accumulators inside int8, times `out_gain`."""
    typical = in_scale * float(np.mean(w_scales)) * 80.0 * 73.0 * np.sqrt(fan_in)  # rms of acc
    return _f32(typical * 2.5 / 127.0 * out_gain), int(rng.integers(-30, 31))


def _bias(rng, in_scale: float, w_scales: list[float], k: int, fan_in: int) -> TensorSpec:
    data = rng.integers(-400 * fan_in, 400 * fan_in + 1, size=k).astype(np.int32)
    scales = [_f32(in_scale * s) for s in w_scales]
    return TensorSpec("bias", (k,), "int32", scales, 0, 0, data)


def conv2d_model(seed: int, in_hw=(8, 8), in_ch=3, out_ch=4, kernel=(3, 3), stride=(1, 1),
                 dilation=(1, 1), padding="SAME", act="NONE", per_channel=True, out_gain=1.0,
                 batch=1, groups=1):
    """CONV_2D; weights OHWI [out_ch, kh, kw, in_ch / groups]."""
    rng = np.random.default_rng(seed)
    s_in, zp_in = _activation_qparams(rng)
    w, w_scales = _weights(rng, (out_ch, *kernel, in_ch // groups), 0, per_channel)
    fan_in = kernel[0] * kernel[1] * in_ch // groups
    s_out, zp_out = _output_qparams(rng, s_in, w_scales, fan_in, out_gain)
    opts = tfl.Conv2DOptionsT()
    opts.padding, opts.fusedActivationFunction = PADDINGS[padding], ACTIVATIONS[act]
    opts.strideH, opts.strideW = stride
    opts.dilationHFactor, opts.dilationWFactor = dilation
    out_hw = _conv_out_hw(in_hw, kernel, stride, dilation, padding)
    x = TensorSpec("input", (batch, *in_hw, in_ch), "int8", s_in, zp_in)
    model = build_single_op(
        "CONV_2D",
        [x, TensorSpec("filter", w.shape, "int8", w_scales, 0, 0, w), _bias(rng, s_in, w_scales, out_ch, fan_in)],
        [TensorSpec("output", (batch, *out_hw, out_ch), "int8", s_out, zp_out)], opts,
        version=6 if groups > 1 else 3)
    return model, [_random_input(rng, x.shape)]


def depthwise_model(seed: int, in_hw=(8, 8), in_ch=3, multiplier=1, kernel=(3, 3), stride=(1, 1),
                    dilation=(1, 1), padding="SAME", act="NONE", per_channel=True, out_gain=1.0, batch=1):
    """DEPTHWISE_CONV_2D; weights [1, kh, kw, in_ch * multiplier], per-channel on axis 3."""
    rng = np.random.default_rng(seed)
    s_in, zp_in = _activation_qparams(rng)
    k = in_ch * multiplier
    w, w_scales = _weights(rng, (1, *kernel, k), 3, per_channel)
    fan_in = kernel[0] * kernel[1]
    s_out, zp_out = _output_qparams(rng, s_in, w_scales, fan_in, out_gain)
    opts = tfl.DepthwiseConv2DOptionsT()
    opts.padding, opts.fusedActivationFunction = PADDINGS[padding], ACTIVATIONS[act]
    opts.strideH, opts.strideW = stride
    opts.dilationHFactor, opts.dilationWFactor = dilation
    opts.depthMultiplier = multiplier
    out_hw = _conv_out_hw(in_hw, kernel, stride, dilation, padding)
    x = TensorSpec("input", (batch, *in_hw, in_ch), "int8", s_in, zp_in)
    model = build_single_op(
        "DEPTHWISE_CONV_2D",
        [x, TensorSpec("filter", w.shape, "int8", w_scales, 0, 3, w), _bias(rng, s_in, w_scales, k, fan_in)],
        [TensorSpec("output", (batch, *out_hw, k), "int8", s_out, zp_out)], opts, version=3)
    return model, [_random_input(rng, x.shape)]


def fully_connected_model(seed: int, batch=2, in_ch=16, out_ch=8, act="NONE", per_channel=False,
                          out_gain=1.0, with_bias=True):
    """FULLY_CONNECTED; weights [out_ch, in_ch]."""
    rng = np.random.default_rng(seed)
    s_in, zp_in = _activation_qparams(rng)
    w, w_scales = _weights(rng, (out_ch, in_ch), 0, per_channel)
    s_out, zp_out = _output_qparams(rng, s_in, w_scales, in_ch, out_gain)
    opts = tfl.FullyConnectedOptionsT()
    opts.fusedActivationFunction = ACTIVATIONS[act]
    x = TensorSpec("input", (batch, in_ch), "int8", s_in, zp_in)
    bias = _bias(rng, s_in, w_scales, out_ch, in_ch) if with_bias else TensorSpec("", ())
    model = build_single_op(
        "FULLY_CONNECTED", [x, TensorSpec("weights", w.shape, "int8", w_scales, 0, 0, w), bias],
        [TensorSpec("output", (batch, out_ch), "int8", s_out, zp_out)], opts,
        version=12 if per_channel else 4)
    return model, [_random_input(rng, x.shape)]


def transpose_conv_model(seed: int, in_hw=(4, 4), in_ch=3, out_ch=4, kernel=(3, 3), stride=(2, 2),
                         padding="SAME", act="NONE", per_channel=True, out_gain=1.0, out_hw=None):
    """TRANSPOSE_CONV (inputs: output_shape, OHWI weights, input, bias)."""
    rng = np.random.default_rng(seed)
    s_in, zp_in = _activation_qparams(rng)
    w, w_scales = _weights(rng, (out_ch, *kernel, in_ch), 0, per_channel)
    fan_in = max(kernel[0] // stride[0], 1) * max(kernel[1] // stride[1], 1) * in_ch
    s_out, zp_out = _output_qparams(rng, s_in, w_scales, fan_in, out_gain)
    if out_hw is None:
        out_hw = tuple(i * s if padding == "SAME" else (i - 1) * s + k
                       for i, s, k in zip(in_hw, stride, kernel))
    opts = tfl.TransposeConvOptionsT()
    opts.padding, opts.fusedActivationFunction = PADDINGS[padding], ACTIVATIONS[act]
    opts.strideH, opts.strideW = stride
    out_shape = np.array([1, *out_hw, out_ch], dtype=np.int32)
    x = TensorSpec("input", (1, *in_hw, in_ch), "int8", s_in, zp_in)
    model = build_single_op(
        "TRANSPOSE_CONV",
        [TensorSpec("output_shape", (4,), "int32", data=out_shape),
         TensorSpec("filter", w.shape, "int8", w_scales, 0, 0, w), x,
         _bias(rng, s_in, w_scales, out_ch, fan_in)],
        [TensorSpec("output", tuple(out_shape), "int8", s_out, zp_out)], opts,
        version=4 if act != "NONE" else 3)
    return model, [_random_input(rng, x.shape)]


def _conv_out_hw(in_hw, kernel, stride, dilation, padding) -> tuple[int, int]:
    out = []
    for i, k, s, d in zip(in_hw, kernel, stride, dilation):
        eff = (k - 1) * d + 1
        out.append((i + s - 1) // s if padding == "SAME" else (i - eff + s) // s)
    return tuple(out)


def _random_input(rng: np.random.Generator, shape) -> np.ndarray:
    return rng.integers(-128, 128, size=shape).astype(np.int8)
