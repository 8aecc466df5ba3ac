"""16-bit activation kernels: the 16x8 convolution and the magnitude |re + i im|.

16x8 convolution (LiteRT's reference_integer_ops::ConvPerChannel for int16 input, and
DepthwiseConvPerChannel for depthwise attrs: the same output stage): int16
activations with zero point 0, int8 per-channel weights, int64 bias and accumulators, and
the output stage MultiplyByQuantizedMultiplier(int64 x, ...) (the multiplier reduced to 16
bits, one rounding), clamped to int16. With int32 bias LiteRT 2.3's reference kernel gives
wrong results, so the quantiser always emits int64 bias for it.

The MXU multiplies int8 by int8, so it runs an int16 input as two byte passes:
x = 256 * hi + lo with hi = x >> 8 (signed) and lo = x & 255 (unsigned); the lo pass is an
ordinary int8 pass over lo - 128 with zero point -128. Each pass is exact with the int8
kernel, and 256 * acc_hi + acc_lo is the exact int16 sum, kept in int64 accumulators as
LiteRT keeps it (an int32 sum could overflow past 511 taps).

Magnitude: out = clamp(round(sqrt(re^2 + im^2) * s_in / s_out) + zp) with re and im int16
at one scale. The sum of squares is exact (< 2^31), the scale a 15-bit multiplier A / 2^k,
and the root exact: round(sqrt(S * A^2) / 2^k) = (isqrt(S * A^2) + 2^(k-1)) >> k.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ModelError
from ..ir.graph import ConvAttrs
from . import intmath
from .kernels_mxu import ConvParams, conv2d_acc

def split_bytes(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(hi, lo - 128) as int8: x = 256 * hi + lo exactly; lo - 128 is read with zero point -128."""
    x = np.asarray(x, np.int16).astype(np.int32)
    return (x >> 8).astype(np.int8), ((x & 0xFF) - 128).astype(np.int8)


def conv2d_acc_16x8(x: np.ndarray, w: np.ndarray, attrs: ConvAttrs) -> np.ndarray:
    """int64 NHWK accumulators of an int16 input (zero point 0): the two byte passes."""
    hi, lo = split_bytes(x)
    return 256 * conv2d_acc(hi, w, attrs, 0) + conv2d_acc(lo, w, attrs, -128)


def conv_output_16x8(acc: np.ndarray, bias: np.ndarray | None, p: ConvParams) -> np.ndarray:
    """(acc + int64 bias) -> MultiplyByQuantizedMultiplier(int64) -> clamp -> int16."""
    x = np.asarray(acc, np.int64)
    if bias is not None:
        x = x + np.asarray(bias, np.int64)
    y = intmath.multiply_by_quantized_multiplier_int64(x, p.multiplier, p.shift) + p.output_zp
    return np.clip(y, p.act_min, p.act_max).astype(np.int16)


def conv2d_16x8(x, w, bias, attrs: ConvAttrs, p: ConvParams) -> np.ndarray:
    if p.input_zp != 0:
        raise ModelError(f"16x8 convolution needs input zero point 0, got {p.input_zp}")
    return conv_output_16x8(conv2d_acc_16x8(x, w, attrs), bias, p)


# ---- magnitude ----

MAG_MULT_BITS = 15


@dataclass(frozen=True)
class MagnitudeParams:
    mult: int        # A: s_in / s_out ~= A / 2^shift, 2^14 <= A < 2^15
    shift: int
    out_zp: int
    act_min: int
    act_max: int


def prepare_magnitude(in_scale: float, out_scale: float, out_zp: int, dtype=np.int8) -> MagnitudeParams:
    """`dtype`: the output's, int8 or int16 (its range is the clamp; an int16 output, zero point 0,
    keeps a spectrum's quiet bins that int8 steps round away)."""
    s_in, s_out = float(np.float32(in_scale)), float(np.float32(out_scale))
    ratio = s_in / s_out if s_in > 0 and s_out > 0 else 0.0
    if not ratio > 0 or not np.isfinite(ratio):
        raise ModelError(f"magnitude scales must be positive: input {in_scale}, output {out_scale}")
    mant, exp = np.frexp(ratio)                       # ratio = mant * 2^exp, 0.5 <= mant < 1
    mult, shift = int(round(mant * (1 << MAG_MULT_BITS))), MAG_MULT_BITS - int(exp)
    if mult == 1 << MAG_MULT_BITS:
        mult, shift = mult >> 1, shift - 1
    if not 1 <= shift <= 62 - 2 * MAG_MULT_BITS:
        raise ModelError(f"magnitude scale ratio {ratio:g} is outside the VPU's range")
    info = np.iinfo(dtype)
    return MagnitudeParams(mult, shift, int(out_zp), int(info.min), int(info.max))


def isqrt(n: np.ndarray) -> np.ndarray:
    """floor(sqrt(n)) of non-negative int64 values, exactly (float estimate, integer fix-up)."""
    n = np.asarray(n, np.int64)
    if np.any(n < 0):
        raise ValueError("isqrt of a negative number")
    r = np.floor(np.sqrt(n.astype(np.float64))).astype(np.int64)
    r = np.minimum(r, 3037000499)                     # floor(sqrt(2^63 - 1)): r * r stays in int64
    for _ in range(3):
        r = np.where(r * r > n, r - 1, r)
    for _ in range(3):
        up = r + 1
        r = np.where((up <= 3037000499) & (up * up <= n), up, r)
    return r


def magnitude(re: np.ndarray, im: np.ndarray, p: MagnitudeParams) -> np.ndarray:
    """round(sqrt(re^2 + im^2) * A / 2^shift) + zp, clamped to int8 (or int16: act_max > 127);
    re and im int16."""
    r, i = np.asarray(re, np.int64), np.asarray(im, np.int64)
    s = r * r + i * i                                 # <= 2^31
    y = (isqrt(s * (p.mult * p.mult)) + (1 << (p.shift - 1))) >> p.shift
    return np.clip(y + p.out_zp, p.act_min, p.act_max).astype(np.int16 if p.act_max > 127 else np.int8)


def magnitude_pairs(x: np.ndarray, axis: int, p: MagnitudeParams) -> np.ndarray:
    """Magnitude of x's two halves along `axis`: re = first half, im = second half."""
    c = x.shape[axis] // 2
    if x.shape[axis] != 2 * c:
        raise ModelError(f"magnitude needs an even length on axis {axis}, got {x.shape}")
    re, im = np.split(np.asarray(x), 2, axis=axis)
    return magnitude(re, im, p)
