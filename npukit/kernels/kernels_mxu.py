"""Integer MXU kernels: convolution (plain, grouped, depthwise, transposed) and fully connected.

Bit-exact with LiteRT's int8 reference kernels (reference_integer_ops::ConvPerChannel,
DepthwiseConvPerChannel, TransposeConv, FullyConnected[PerChannel]). Every float -> int
conversion happens in the prepare_* functions, as the TFLite kernel's Prepare does it.
Accumulation uses float64 matmuls on zero-point-shifted int8 values, exact while
|sum| < 2^53 (always, for int8 operands).

Two output stages, because LiteRT's reference kernels differ (see docs/numerics.md):
- conv / depthwise / transpose conv: Q31 multiplier + shift, double-rounding
  MultiplyByQuantizedMultiplier (`conv_output`);
- fully connected: round(double(acc) * effective_scale), ties away from zero (`fc_output`).
  The double scale is carried exactly as an integer mantissa and exponent.
"""
from __future__ import annotations

from dataclasses import dataclass

import math

import numpy as np

from npukit.errors import ModelError
from npukit.ir.graph import Clamp, ConvAttrs
from npukit.kernels import intmath


def activation_range(act: Clamp | None, scale: float, zero_point: int,
                     dtype=np.int8) -> tuple[int, int]:
    """TFLite CalculateActivationRangeQuantized: quantise the clamp bounds, intersect with dtype.

    The bound is quantised as zero_point + TfLiteRound(f / scale), with the division in
    float32 like the reference (`scale` is the tensor's float param).
    """
    info = np.iinfo(dtype)
    lo, hi = int(info.min), int(info.max)
    if act is None:
        return lo, hi

    def quantise(f: float) -> int:
        q = np.float32(f) / np.float32(scale)
        r = float(intmath.round_half_away(np.float64(q)))
        return int(zero_point) + int(np.clip(r, -(2.0 ** 40), 2.0 ** 40))

    if act.lo is not None:
        lo = max(lo, quantise(act.lo))
    if act.hi is not None:
        hi = min(hi, quantise(act.hi))
    if lo > hi:
        raise ModelError(f"activation clamp {act} is empty at scale {scale}, zero point {zero_point}")
    return lo, hi


@dataclass(frozen=True)
class ConvParams:
    """Integer output stage of a conv / FC: per-output-channel Q31 multiplier and shift."""
    input_zp: int
    output_zp: int
    multiplier: np.ndarray    # int32 [K] (or [1] for a per-tensor weight scale)
    shift: np.ndarray         # int32 [K], TFLite convention: > 0 shifts left
    act_min: int
    act_max: int
    # Exact double effective scale per channel, mantissa * 2^exponent (fully connected stage).
    scale_mantissa: np.ndarray | None = None    # int64 [K]
    scale_exponent: np.ndarray | None = None    # int32 [K]

    @property
    def effective_scale(self) -> np.ndarray:
        """The float64 effective scales, reconstructed exactly."""
        if self.scale_mantissa is None or self.scale_exponent is None:
            raise ModelError("these ConvParams carry no exact scale; build them with prepare_conv")
        return np.ldexp(self.scale_mantissa.astype(np.float64), self.scale_exponent.astype(np.int32))


def _exact_scale(scale: float) -> tuple[int, int]:
    """(mantissa, exponent) with scale == mantissa * 2^exponent exactly, |mantissa| < 2^53."""
    m, e = math.frexp(scale)
    return int(m * (1 << 53)), e - 53


def prepare_conv(input_scale: float, weight_scales: np.ndarray, output_scale: float,
                 input_zp: int, output_zp: int, act: Clamp | None, dtype=np.int8) -> ConvParams:
    """As PopulateConvolutionQuantizationParams (also FC's Prepare): per channel,
    double(input_scale) * double(weight_scale) / double(output_scale), then QuantizeMultiplier.

    Scales are first rounded to float32, the type TFLite stores them in.
    """
    s_in = float(np.float32(input_scale))
    s_out = float(np.float32(output_scale))
    w_scales = np.atleast_1d(np.asarray(weight_scales, dtype=np.float32)).astype(np.float64)
    if s_in <= 0 or s_out <= 0 or np.any(w_scales < 0) or w_scales.ndim != 1:
        raise ModelError(f"conv scales must be positive: input {input_scale}, output {output_scale}, "
                         f"weights {weight_scales}")
    effective = [s_in * float(ws) / s_out for ws in w_scales]      # (a * b) / c, as TFLite
    mult, shift = zip(*(intmath.quantize_multiplier(e) for e in effective))
    mant, expo = zip(*(_exact_scale(e) for e in effective))
    act_min, act_max = activation_range(act, output_scale, output_zp, dtype)
    return ConvParams(int(input_zp), int(output_zp), np.asarray(mult, dtype=np.int32),
                      np.asarray(shift, dtype=np.int32), act_min, act_max,
                      np.asarray(mant, dtype=np.int64), np.asarray(expo, dtype=np.int32))


def _shifted_input(x: np.ndarray, attrs: ConvAttrs, input_zp: int) -> np.ndarray:
    """float64 NHWC of (x - input_zp), input-dilated and padded (inserted/padded values are 0)."""
    xs = np.asarray(x).astype(np.float64) - float(input_zp)
    dy, dx = attrs.input_dilation
    if dy < 1 or dx < 1:
        raise ModelError(f"input_dilation must be >= 1, got {attrs.input_dilation}")
    if (dy, dx) != (1, 1):
        n, h, w, c = xs.shape
        dil = np.zeros((n, (h - 1) * dy + 1, (w - 1) * dx + 1, c))
        dil[:, ::dy, ::dx, :] = xs
        xs = dil
    top, left, bottom, right = attrs.pads
    # Negative pads crop (a transposed conv asked for a smaller output than it produces).
    xs = xs[:, max(-top, 0): xs.shape[1] - max(-bottom, 0), max(-left, 0): xs.shape[2] - max(-right, 0)]
    return np.pad(xs, ((0, 0), (max(top, 0), max(bottom, 0)), (max(left, 0), max(right, 0)), (0, 0)))


def _check_conv(x: np.ndarray, w: np.ndarray, attrs: ConvAttrs) -> None:
    if x.ndim != 4 or w.ndim != 4:
        raise ModelError(f"conv expects NHWC input and 4-D weights, got {x.shape} and {w.shape}")
    c = x.shape[3]
    if attrs.depthwise:
        if w.shape[0] != 1 or w.shape[3] % c:
            raise ModelError(f"depthwise weights {w.shape} do not fit {c} input channels")
    elif attrs.groups < 1 or c % attrs.groups or w.shape[0] % attrs.groups or w.shape[3] * attrs.groups != c:
        raise ModelError(f"conv weights {w.shape} with groups={attrs.groups} do not fit {c} input channels")
    if min(attrs.stride) < 1 or min(attrs.dilation) < 1:
        raise ModelError(f"stride {attrs.stride} and dilation {attrs.dilation} must be >= 1")


def conv2d_acc(x: np.ndarray, w: np.ndarray, attrs: ConvAttrs, input_zp: int) -> np.ndarray:
    """int64 NHWK accumulators: sum of (x - input_zp) * w over each window (no bias)."""
    x, w = np.asarray(x), np.asarray(w)
    _check_conv(x, w, attrs)
    xp = _shifted_input(x, attrs, input_zp)
    n, hp, wp, c = xp.shape
    kh, kw = w.shape[1], w.shape[2]
    (sh, sw), (dh, dw) = attrs.stride, attrs.dilation
    oh = (hp - (kh - 1) * dh - 1) // sh + 1
    ow = (wp - (kw - 1) * dw - 1) // sw + 1
    if oh < 1 or ow < 1:
        raise ModelError(f"conv window {kh}x{kw} (dilation {attrs.dilation}) larger than padded input {hp}x{wp}")
    k = w.shape[3] if attrs.depthwise else w.shape[0]
    groups = 1 if attrs.depthwise else attrs.groups
    if groups == 1 and not attrs.depthwise:
        return _conv_gemm(xp, w, (oh, ow), (sh, sw), (dh, dw))
    wf = w.astype(np.float64)
    if attrs.depthwise:
        xp = xp[..., np.arange(k) // (k // c)]          # output channel k reads input k // multiplier
    else:                                                 # [G, Cg, Kg] weight blocks per tap
        wf = wf.reshape(groups, k // groups, kh, kw, c // groups).transpose(2, 3, 0, 4, 1)
    acc = np.zeros((n, oh, ow, k), dtype=np.float64)     # exact: |sum| < 2^53
    for ky in range(kh):
        for kx in range(kw):
            y0, x0 = ky * dh, kx * dw
            tap = xp[:, y0: y0 + (oh - 1) * sh + 1: sh, x0: x0 + (ow - 1) * sw + 1: sw, :]
            if attrs.depthwise:
                part = tap * wf[0, ky, kx]
            else:
                blocks = tap.reshape(n * oh * ow, groups, c // groups).transpose(1, 0, 2)
                part = np.matmul(blocks, wf[ky, kx]).transpose(1, 0, 2).reshape(n, oh, ow, k)
            acc += part
    return acc.astype(np.int64)


GEMM_CHUNK = 512   # float32 sums of (x - zp) * w stay exact while below 2^24: 512 x 255 x 128
BAND_VALUES = 1 << 22   # im2col values of one band of output rows (16 MiB of float32)


def _conv_gemm(xp: np.ndarray, w: np.ndarray, out_hw, stride, dilation) -> np.ndarray:
    """Dense conv as im2col GEMMs in float32 K-chunks small enough to stay exact (their sums
    in float64, exact below 2^53), over bands of output rows: a large map's im2col is never
    held whole."""
    n, _, _, c = xp.shape
    k, kh, kw, _ = w.shape
    (oh, ow), (sh, sw), (dh, dw) = out_hw, stride, dilation
    xp = xp.astype(np.float32)
    s = xp.strides
    patches = np.lib.stride_tricks.as_strided(
        xp, (n, oh, ow, kh, kw, c), (s[0], s[1] * sh, s[2] * sw, s[1] * dh, s[2] * dw, s[3]), writeable=False)
    depth = kh * kw * c
    wm = w.reshape(k, depth).T.astype(np.float32)
    acc = np.empty((n, oh, ow, k), np.int64)
    rows = max(1, BAND_VALUES // (ow * depth))
    for b in range(n):
        for r in range(0, oh, rows):
            cols = patches[b, r:r + rows].reshape(-1, depth)
            if depth <= GEMM_CHUNK:
                part = cols @ wm
            else:
                part = np.zeros((cols.shape[0], k), np.float64)
                for i in range(0, depth, GEMM_CHUNK):
                    part += cols[:, i:i + GEMM_CHUNK] @ wm[i:i + GEMM_CHUNK]
            acc[b, r:r + rows] = part.reshape(-1, ow, k)
    return acc


def fully_connected_acc(x: np.ndarray, w: np.ndarray, input_zp: int) -> np.ndarray:
    """int64 [..., K] accumulators: (x - input_zp) @ w.T for weights [K, C]."""
    x, w = np.asarray(x), np.asarray(w)
    if w.ndim != 2 or x.shape[-1] != w.shape[1]:
        raise ModelError(f"fully connected weights {w.shape} do not fit input {x.shape}")
    xs = x.astype(np.float64) - float(input_zp)
    return (xs @ w.astype(np.float64).T).astype(np.int64)


def _check_bias(bias, channels: int) -> np.ndarray | None:
    if bias is None:
        return None
    bias = np.asarray(bias, dtype=np.int64)
    if bias.shape not in ((channels,), (1,)):
        raise ModelError(f"bias of shape {bias.shape} does not fit {channels} channels")
    return bias


def conv_output(acc: np.ndarray, bias: np.ndarray | None, p: ConvParams, dtype=np.int8) -> np.ndarray:
    """Conv output stage on the last (channel) axis: (acc + bias) * M >> s + zp, clamped."""
    bias = _check_bias(bias, acc.shape[-1])
    return intmath.requantize(acc, bias, p.multiplier, p.shift, p.output_zp, p.act_min, p.act_max, dtype)


def fc_output(acc: np.ndarray, bias: np.ndarray | None, p: ConvParams, dtype=np.int8) -> np.ndarray:
    """FULLY_CONNECTED output stage of LiteRT's reference kernel:
    int32(round(double(acc + bias) * effective_scale)) + zp, clamped; round is half away."""
    bias = _check_bias(bias, acc.shape[-1])
    x = np.asarray(acc, dtype=np.int64)
    if bias is not None:
        x = intmath.wrap_int32(x + bias)
    y = intmath.round_half_away(x.astype(np.float64) * p.effective_scale)
    y = np.clip(y, intmath.INT32_MIN, intmath.INT32_MAX).astype(np.int64) + p.output_zp
    return np.clip(y, p.act_min, p.act_max).astype(dtype)


def fc_output_wide(acc: np.ndarray, bias: np.ndarray | None, p: ConvParams, dtype=np.int16) -> np.ndarray:
    """FULLY_CONNECTED output stage of LiteRT's 16x8 reference kernel (int16 activations,
    int8 weights): int64 accumulators (no int32 wrap), then round(double(acc + bias) *
    effective_scale) + zp, clamped. An int8 input is the same kernel on the int16 values
    x - x_zp (zero point 0), so int8 -> int16 layers use it too."""
    bias = _check_bias(bias, acc.shape[-1])
    x = np.asarray(acc, dtype=np.int64) + (0 if bias is None else bias)
    y = intmath.round_half_away(x.astype(np.float64) * p.effective_scale)
    y = np.clip(y, intmath.INT32_MIN, intmath.INT32_MAX).astype(np.int64) + p.output_zp
    return np.clip(y, p.act_min, p.act_max).astype(dtype)


def conv2d(x: np.ndarray, w: np.ndarray, bias: np.ndarray | None, attrs: ConvAttrs,
           p: ConvParams, dtype=np.int8) -> np.ndarray:
    return conv_output(conv2d_acc(x, w, attrs, p.input_zp), bias, p, dtype)


def fully_connected(x: np.ndarray, w: np.ndarray, bias: np.ndarray | None, p: ConvParams,
                    dtype=np.int8) -> np.ndarray:
    return fc_output(fully_connected_acc(x, w, p.input_zp), bias, p, dtype)


# ---- TFLite padding helpers (frontends and tests) --------------------------------------

def same_pads(in_size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TFLite SAME padding (before, after) along one axis; the extra pixel goes after."""
    out = (in_size + stride - 1) // stride
    eff = (kernel - 1) * dilation + 1
    total = max((out - 1) * stride + eff - in_size, 0)
    return total // 2, total - total // 2


def transpose_conv_attrs(in_hw: tuple[int, int], out_hw: tuple[int, int], kernel_hw: tuple[int, int],
                         stride: tuple[int, int], same: bool, act: Clamp | None = None) -> ConvAttrs:
    """ConvAttrs computing TFLite TRANSPOSE_CONV as a conv over the stride-dilated input.

    The weight must be flipped spatially (w[:, ::-1, ::-1, :]); TRANSPOSE_CONV's OHWI layout
    is already the conv layout. TFLite's pad p is ComputePaddingHeightWidth with the output as
    the 'input'.
    """
    crop_h, crop_w = (max(((o + s - 1) // s - 1) * s + k - o, 0) // 2 if same else 0
                      for o, k, s in zip(out_hw, kernel_hw, stride))
    return cropped_transpose_conv_attrs(in_hw, out_hw, kernel_hw, stride, (crop_h, crop_w), act)


def cropped_transpose_conv_attrs(in_hw: tuple[int, int], out_hw: tuple[int, int], kernel_hw: tuple[int, int],
                                 stride: tuple[int, int], crop: tuple[int, int],
                                 act: Clamp | None = None) -> ConvAttrs:
    """ConvAttrs for a transposed conv whose output pixel y is pixel y + crop of the full
    (unpadded, (in-1)*stride+kernel long) output, computed as a conv over the stride-dilated
    input with the flipped kernel: a conv pad of kernel-1-crop before, and whatever makes the
    size match after."""
    pads = []
    for i, o, k, s, p in zip(in_hw, out_hw, kernel_hw, stride, crop):
        before = k - 1 - p
        pads.append((before, o - 1 + k - before - ((i - 1) * s + 1)))
    (t, b), (l, r) = pads
    return ConvAttrs(stride=(1, 1), pads=(t, l, b, r), input_dilation=(stride[0], stride[1]), act=act)
