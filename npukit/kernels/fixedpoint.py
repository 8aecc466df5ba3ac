"""gemmlowp fixed-point arithmetic (fixedpoint.h) on int32 values held in int64 numpy arrays.

A value in format Qm.n (m = integer bits, n = 31 - m) is its raw int32. The functions here
reproduce gemmlowp's scalar implementation bit for bit, including its wrapping int32
additions, so the softmax and activation kernels built on them match TFLite's reference.
"""
from __future__ import annotations

import numpy as np

from npukit.kernels import intmath

INT32_MIN, INT32_MAX = intmath.INT32_MIN, intmath.INT32_MAX
INT16_MIN, INT16_MAX = -(1 << 15), (1 << 15) - 1

srdhm = intmath.saturating_rounding_doubling_high_mul
rounding_divide_by_pot = intmath.rounding_divide_by_pot
wrap32 = intmath.wrap_int32


def _i64(x) -> np.ndarray:
    return np.asarray(x, dtype=np.int64)


def add(a, b) -> np.ndarray:
    """gemmlowp Add on int32: a plain (wrapping) addition."""
    return wrap32(_i64(a) + _i64(b))


def sub(a, b) -> np.ndarray:
    return wrap32(_i64(a) - _i64(b))


def saturating_rounding_multiply_by_pot(x, exponent: int, bits: int = 32) -> np.ndarray:
    """SaturatingRoundingMultiplyByPOT<exponent>: saturating left shift or rounding right shift."""
    x = _i64(x)
    if exponent == 0:
        return x
    if exponent < 0:
        return rounding_divide_by_pot(x, -exponent)
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    threshold = (1 << (bits - 1 - exponent)) - 1
    shifted = x << exponent
    shifted = wrap32(shifted) if bits == 32 else wrap16(shifted)
    return np.where(x > threshold, hi, np.where(x < -threshold, lo, shifted))


def rescale(x, src_integer_bits: int, dst_integer_bits: int) -> np.ndarray:
    """gemmlowp Rescale<dst>(FixedPoint<int32, src>)."""
    return saturating_rounding_multiply_by_pot(x, src_integer_bits - dst_integer_bits)


def rounding_half_sum(a, b) -> np.ndarray:
    """(a + b) / 2 rounded half away from zero (C division truncates toward zero)."""
    s = _i64(a) + _i64(b)
    s = s + np.where(s >= 0, 1, -1)
    return np.where(s >= 0, s // 2, -((-s) // 2))


def one(integer_bits: int) -> int:
    """FixedPoint::One(): the raw value of 1.0 (saturated to INT32_MAX in Q0.31)."""
    return INT32_MAX if integer_bits == 0 else 1 << (31 - integer_bits)


def _exp_on_interval_between_negative_one_quarter_and_0_excl(a) -> np.ndarray:
    constant_term = 1895147668          # exp(-1/8) in Q0.31
    constant_1_over_3 = 715827883
    x = add(a, 1 << 28)                 # a + 1/8
    x2 = srdhm(x, x)
    x3 = srdhm(x2, x)
    x4 = srdhm(x2, x2)
    x4_over_4 = saturating_rounding_multiply_by_pot(x4, -2)
    poly = saturating_rounding_multiply_by_pot(
        add(srdhm(add(x4_over_4, x3), constant_1_over_3), x2), -1)
    return add(constant_term, srdhm(constant_term, add(x, poly)))


_EXP_BARREL = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308),
               (2, 39332535), (3, 720401), (4, 242))


def exp_on_negative_values(a, integer_bits: int) -> np.ndarray:
    """exp(a) for a <= 0 in Q`integer_bits`, returned in Q0.31."""
    a = _i64(a)
    fractional_bits = 31 - integer_bits
    one_quarter = 1 << (fractional_bits - 2)
    mask = one_quarter - 1
    a_mod_quarter_minus_one_quarter = sub(a & mask, one_quarter)
    result = _exp_on_interval_between_negative_one_quarter_and_0_excl(
        rescale(a_mod_quarter_minus_one_quarter, integer_bits, 0))
    remainder = sub(a_mod_quarter_minus_one_quarter, a)
    for exponent, multiplier in _EXP_BARREL:
        if integer_bits > exponent:
            bit = 1 << (fractional_bits + exponent)
            result = np.where((remainder & bit) != 0, srdhm(result, multiplier), result)
    if integer_bits > 5:
        clamp = -(1 << (36 - integer_bits))
        result = np.where(a < clamp, 0, result)
    return np.where(a == 0, one(0), result)


def one_over_one_plus_x_for_x_in_0_1(a) -> np.ndarray:
    """1 / (1 + a) for a in [0, 1) in Q0.31 (Newton-Raphson, three iterations)."""
    half_denominator = rounding_half_sum(a, one(0))
    constant_48_over_17 = 1515870810         # Q2.29
    constant_neg_32_over_17 = -1010580540    # Q2.29
    x = add(constant_48_over_17, srdhm(half_denominator, constant_neg_32_over_17))
    for _ in range(3):
        half_denominator_times_x = srdhm(half_denominator, x)
        one_minus_half_denominator_times_x = sub(one(2), half_denominator_times_x)
        x = add(x, rescale(srdhm(x, one_minus_half_denominator_times_x), 4, 2))
    return rescale(x, 1, 0)                  # Rescale<0>(ExactMulByPot<-1>(x))


def get_reciprocal(x, x_integer_digits: int) -> tuple[np.ndarray, np.ndarray]:
    """TFLite GetReciprocal: (1/x scaled into Q0.31, num_bits_over_unit) for x > 0."""
    x = _i64(x)
    headroom_plus_one = intmath.count_leading_zeros(x)
    num_bits_over_unit = x_integer_digits - headroom_plus_one
    shifted_sum_minus_one = ((x << headroom_plus_one) & 0xFFFFFFFF) - (1 << 31)
    return one_over_one_plus_x_for_x_in_0_1(wrap32(shifted_sum_minus_one)), num_bits_over_unit


# ---- int16 variants (used by the quantised HARD_SWISH reference) ----

def wrap16(x) -> np.ndarray:
    x = _i64(x)
    return ((x + (1 << 15)) & 0xFFFF) - (1 << 15)


def srdhm16(a, b) -> np.ndarray:
    """gemmlowp SaturatingRoundingDoublingHighMul on int16 values."""
    a, b = _i64(a), _i64(b)
    overflow = (a == INT16_MIN) & (b == INT16_MIN)
    ab = a * b
    num = ab + np.where(ab >= 0, 1 << 14, 1 - (1 << 14))
    q = np.where(num >= 0, num >> 15, -((-num) >> 15))
    return np.where(overflow, INT16_MAX, wrap16(q))


def saturating_doubling_high_mul16(a, b) -> np.ndarray:
    """TFLite SaturatingDoublingHighMul (int16, truncating toward zero, no rounding nudge)."""
    a, b = _i64(a), _i64(b)
    overflow = (a == INT16_MIN) & (b == INT16_MIN)
    ab = a * b
    q = np.where(ab >= 0, ab >> 15, -((-ab) >> 15))
    return np.where(overflow, INT16_MAX, wrap16(q))


def saturating_left_shift16(x, amount: int) -> np.ndarray:
    return np.clip(_i64(x) * (1 << amount), INT16_MIN, INT16_MAX)
