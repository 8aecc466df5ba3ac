"""gemmlowp fixed-point logistic and tanh on int16 raw values (FixedPoint<int16_t, m>), as
TFLite's integer LSTM applies them to its gates (tensor_utils ApplySigmoid / ApplyTanh).

Values are int16 raws held in int64 numpy arrays. gemmlowp's int16 arithmetic wraps (`+`, `-`,
negation go through int and back to int16), saturates only where it says so
(SaturatingRoundingMultiplyByPOT, AddSaturatingIf16Bit), and takes its int32 constants
rounding-divided by 2^16 (RescaleConstantInitializer).
"""
from __future__ import annotations

import numpy as np

from npukit.kernels import intmath
from npukit.kernels.fixedpoint import (INT16_MAX, INT16_MIN, saturating_rounding_multiply_by_pot, srdhm16,
                                       wrap16)


def _const(raw32: int) -> int:
    """RescaleConstantInitializer<int16>: an int32 Q0.31-style constant rounded to 16 bits."""
    return int(intmath.rounding_divide_by_pot(np.int64(raw32), 16))


_EXP_CONSTANT_TERM = _const(1895147668)     # exp(-1/8)
_ONE_THIRD = _const(715827883)
_C48_17 = _const(1515870810)                # 48/17 in Q2.13
_CNEG32_17 = _const(-1010580540)            # -32/17 in Q2.13
_ONE_HALF = _const(1 << 30)
_EXP_BARREL = tuple((e, _const(m)) for e, m in ((-2, 1672461947), (-1, 1302514674), (0, 790015084),
                                                (1, 290630308), (2, 39332535), (3, 720401), (4, 242)))
_ONE_Q2 = 1 << 13                           # F2::One()


def _i64(x) -> np.ndarray:
    return np.asarray(x, dtype=np.int64)


def _add(a, b) -> np.ndarray:
    return wrap16(_i64(a) + _i64(b))


def _sub(a, b) -> np.ndarray:
    return wrap16(_i64(a) - _i64(b))


def _srmbp(x, exponent: int) -> np.ndarray:
    return saturating_rounding_multiply_by_pot(x, exponent, bits=16)


def _exp_quarter(a) -> np.ndarray:
    """exp(a) for a in [-1/4, 0), Q0.15."""
    x = _add(a, 1 << 12)                    # a + 1/8
    x2 = srdhm16(x, x)
    x3 = srdhm16(x2, x)
    x4 = srdhm16(x2, x2)
    poly = _srmbp(_add(srdhm16(_add(_srmbp(x4, -2), x3), _ONE_THIRD), x2), -1)
    s = _EXP_CONSTANT_TERM + srdhm16(_EXP_CONSTANT_TERM, _add(x, poly))
    return np.clip(s, INT16_MIN, INT16_MAX)  # AddSaturatingIf16Bit


def exp_on_negative_values16(a, integer_bits: int) -> np.ndarray:
    """exp(a) for a <= 0 in Q`integer_bits`.(15 - integer_bits), returned in Q0.15."""
    a = _i64(a)
    frac = 15 - integer_bits
    one_quarter = 1 << (frac - 2)
    amq = _sub(a & (one_quarter - 1), one_quarter)
    result = _exp_quarter(_srmbp(amq, integer_bits))
    remainder = _sub(amq, a)
    for exponent, multiplier in _EXP_BARREL:
        if integer_bits > exponent:
            bit = 1 << (frac + exponent)
            result = np.where((remainder & bit) != 0, srdhm16(result, multiplier), result)
    if integer_bits > 5:
        result = np.where(a < _const(-(1 << (36 - integer_bits))), 0, result)
    return np.where(a == 0, INT16_MAX, result)


def _newton(a) -> np.ndarray:
    """Newton-Raphson 1 / (1 + a) for a in [0, 1) (Q0.15 in), Q2.13 out."""
    s = _i64(a) + INT16_MAX                 # RoundingHalfSum(a, One())
    half_denominator = wrap16(np.where(s >= 0, (s + 1) // 2, -((-s + 1) // 2)))
    x = _add(_C48_17, srdhm16(half_denominator, _CNEG32_17))
    for _ in range(3):
        one_minus = _sub(_ONE_Q2, srdhm16(half_denominator, x))
        x = _add(x, _srmbp(srdhm16(x, one_minus), 2))
    return x


def logistic16(a, integer_bits: int) -> np.ndarray:
    """gemmlowp::logistic on FixedPoint<int16, integer_bits>, result Q0.15."""
    a = _i64(a)
    positive = a > 0
    abs_input = np.where(positive, a, wrap16(-a))
    if_positive = _srmbp(_newton(exp_on_negative_values16(wrap16(-abs_input), integer_bits)), 1)
    if_negative = _sub(INT16_MAX, if_positive)
    return np.where(a == 0, _ONE_HALF, np.where(positive, if_positive, if_negative))


def tanh16(a, integer_bits: int) -> np.ndarray:
    """gemmlowp::tanh on FixedPoint<int16, integer_bits>, result Q0.15."""
    a = _i64(a)
    negative = a < 0
    n = np.where(negative, a, wrap16(-a))
    t = _srmbp(_sub(_newton(exp_on_negative_values16(n, integer_bits + 1)), _ONE_Q2), 2)
    return np.where(a == 0, 0, np.where(negative, wrap16(-t), t))
