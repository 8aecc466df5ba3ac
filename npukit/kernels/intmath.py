"""Integer arithmetic of the TFLite reference kernels, vectorised, shared by reference and simulator.

Every function takes and returns integer numpy arrays (int64 internally, never floats), and
reproduces gemmlowp / TFLite rounding exactly:
- SaturatingRoundingDoublingHighMul: nudge, then C division truncating toward zero;
- RoundingDivideByPOT: round half away from zero;
- QuantizeMultiplier: frexp of the double scale, Q31 mantissa, with its edge cases.
"""
from __future__ import annotations

import math

import numpy as np

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1


def quantize_multiplier(scale: float) -> tuple[int, int]:
    """(Q31 multiplier, shift) with scale ~= multiplier * 2^(shift - 31); shift > 0 is left."""
    if scale == 0.0:
        return 0, 0
    q, shift = math.frexp(scale)
    q_fixed = int(round_half_away(q * (1 << 31)))
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        shift, q_fixed = 0, 0
    if shift > 30:  # TFLite clamps only under TFLITE_SINGLE_ROUNDING; kept to avoid shifts >= 31
        shift, q_fixed = 30, (1 << 31) - 1
    return q_fixed, shift


def round_half_away(x):
    """TfLiteRound / std::round: half away from zero (numpy's rint is half-to-even).

    Exact for every double: floor(|x| + 0.5) would be wrong for 0.49999999999999994 and
    for odd values above 2^52, where the addition itself rounds.
    """
    t = np.trunc(x)
    return t + np.sign(x) * (np.abs(x - t) >= 0.5)


def _i64(x) -> np.ndarray:
    return np.asarray(x, dtype=np.int64)


def saturating_rounding_doubling_high_mul(a, b) -> np.ndarray:
    """gemmlowp SaturatingRoundingDoublingHighMul on int32 values.

    gemmlowp adds a nudge of 2^30 (ab >= 0) or 1 - 2^30 (ab < 0) and divides by 2^31 truncating;
    for ab < 0 that is ceil((ab + 1 - 2^30) / 2^31) = floor((ab + 2^30) / 2^31), so both signs
    are one arithmetic shift of ab + 2^30. Its one overflow, INT32_MIN * INT32_MIN, shifts to
    2^31, which the saturation to INT32_MAX catches (every other product stays below it)."""
    ab = np.asarray(_i64(a) * _i64(b))      # fits in int64: |a*b| <= 2^62
    ab += 1 << 30
    ab >>= 31
    return np.minimum(ab, INT32_MAX, out=ab)


def rounding_divide_by_pot(x, exponent) -> np.ndarray:
    """gemmlowp RoundingDivideByPOT: arithmetic shift right rounding half away from zero."""
    x, e = _i64(x), _i64(exponent)
    mask = (np.int64(1) << e) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> e) + (remainder > threshold)


def multiply_by_quantized_multiplier(x, multiplier, shift) -> np.ndarray:
    """TFLite MultiplyByQuantizedMultiplier (the double-rounding reference variant).

    The installed LiteRT is built without TFLITE_SINGLE_ROUNDING: its conv, depthwise and
    transpose-conv reference kernels match this variant (tests/quant/test_intmath.py).
    """
    shift = _i64(shift)
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    x = _i64(x) * (np.int64(1) << left)
    x = wrap_int32(x)  # the reference shifts inside int32
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(x, multiplier), right)


def multiply_by_quantized_multiplier_single_rounding(x, multiplier, shift) -> np.ndarray:
    """The TFLITE_SINGLE_ROUNDING variant: (x * M + 2^(30 - shift)) >> (31 - shift), as int32.
    Not what the installed LiteRT's kernels use; kept to document and test the difference."""
    total_shift = 31 - _i64(shift)
    return wrap_int32((_i64(x) * _i64(multiplier) + (np.int64(1) << (total_shift - 1))) >> total_shift)


def multiply_by_quantized_multiplier_int64(x, multiplier, shift) -> np.ndarray:
    """TFLite MultiplyByQuantizedMultiplier for int64 x (16x8 kernels): 16-bit reduced multiplier."""
    m = _i64(multiplier)
    reduced = np.where(m < 0x7FFF0000, (m + (1 << 15)) >> 16, 0x7FFF)
    total_shift = 15 - _i64(shift)
    return wrap_int32((_i64(x) * reduced + (np.int64(1) << (total_shift - 1))) >> total_shift)


def multiply_by_quantized_multiplier_smaller_than_one_exp(x, multiplier, left_shift) -> np.ndarray:
    x, m, s = np.asarray(x), _i64(multiplier), _i64(left_shift)
    if s.size and s.max() <= 0 and _fusable(x, m, s):
        return _fused(x, m, -s)
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(x, multiplier), -_i64(left_shift))


def wrap_int32(x) -> np.ndarray:
    """Two's-complement wrap to int32 range, kept in int64."""
    x = _i64(x)
    return ((x + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def saturate(x, dtype) -> np.ndarray:
    info = np.iinfo(dtype)
    return np.clip(x, info.min, info.max).astype(dtype)


def multiply_by_quantized_multiplier_fused(x, multiplier, shift) -> np.ndarray:
    """multiply_by_quantized_multiplier in a few int64 passes, bit-identical to it.

    gemmlowp's nudge-then-truncate equals a floor: SRDHM(a, M) = (a*M + 2^30) >> 31 (save
    a = M = INT32_MIN). RoundingDivideByPOT(q, e) = (q + 2^(e-1) - [q < 0]) >> e for e > 0,
    and floor((floor(t / 2^31) + h) / 2^e) = floor((t + h 2^31) / 2^(31+e)), so both roundings
    are one shift: (a*M + 2^30 + [e > 0](2^(30+e) - [a*M < 0] 2^31)) >> (31 + e).
    (For -2^30 <= a*M < 0 the sign term changes nothing: the quotient is 0 either way.)
    Falls back to the two-step form outside its proven range (M = INT32_MIN, shifts beyond
    [-31, 31], values beyond int32).
    """
    m, s = _i64(multiplier), _i64(shift)
    x = np.asarray(x)
    if not _fusable(x, m, s):
        return multiply_by_quantized_multiplier(x, m, s)
    if s.max() > 0:
        x = wrap_int32(_i64(x) << np.maximum(s, 0))
    return _fused(x, m, np.maximum(-s, 0))


def _fusable(x: np.ndarray, m: np.ndarray, s: np.ndarray) -> bool:
    return bool(m.size and m.min() > INT32_MIN and m.max() <= INT32_MAX and s.min() >= -31 and s.max() <= 31
                and (x.dtype == np.int32 or not x.size or (x.min() >= INT32_MIN and x.max() <= INT32_MAX)))


def _fused(x: np.ndarray, m: np.ndarray, e: np.ndarray) -> np.ndarray:
    """RoundingDivideByPOT(SRDHM(x, m), e) for int32-range x, M > INT32_MIN, 0 <= e <= 31."""
    pos = (1 << 30) + np.where(e > 0, np.int64(1) << (30 + e), 0)
    ab = np.multiply(x, m, dtype=np.int64)          # |a*M| < 2^62: no overflow with the terms
    ab += np.where(ab < 0, pos - np.where(e > 0, 1 << 31, 0), pos)
    ab >>= 31 + e
    return ab


def requantize(acc, bias, multiplier, shift, out_zp, act_min, act_max, dtype=np.int8,
               out: np.ndarray | None = None) -> np.ndarray:
    """Conv / FC output stage: (acc + bias) * M >> s + zp, clamped. Channels on the last axis.
    With `out`, the result is written there (and returned)."""
    acc = np.asarray(acc)
    if bias is not None:
        bias = np.asarray(bias)
        if acc.dtype == np.int32 and bias.dtype == np.int32:
            x = acc + bias                  # int32 arithmetic wraps: wrap_int32(acc + bias)
        else:
            x = wrap_int32(_i64(acc) + _i64(bias)).astype(np.int32)
    else:
        x = acc if acc.dtype == np.int32 else wrap_int32(acc).astype(np.int32)   # the shift wraps anyway
    y = multiply_by_quantized_multiplier_fused(x, multiplier, shift)
    y += int(out_zp)
    np.clip(y, act_min, act_max, out=y)
    if out is None:
        return y.astype(dtype)
    np.copyto(out, y, casting="unsafe")
    return out


def count_leading_zeros(x) -> np.ndarray:
    """CLZ of non-negative int32 values (32 for zero)."""
    x = _i64(x)
    out = np.full(x.shape, 32, dtype=np.int64)
    nz = x > 0
    out[nz] = 31 - np.floor(np.log2(x[nz].astype(np.float64))).astype(np.int64)
    # guard float log2 at exact powers of two near 2^31
    fix = nz & ((np.int64(1) << (31 - out)) > x)
    out[fix] += 1
    return out
