"""Element-wise unary int8 kernels as 256-entry tables (the VPU's LUT instruction).

Where LiteRT has an int8 kernel, the table is that kernel's result on every code:
- LOG: LUTPopulate<int8_t> of logf, with x <= 0 mapped to the output's lowest real value;
- EXP: LUTPopulate<int8_t> of expf;
- ABS: |q - zp_in| requantised by QuantizeMultiplier(s_in / s_out) (or just re-offset when
  the scales are equal);
- SQRT: per element in float32, sqrtf(s_in (q - zp_in)) / s_out truncated toward zero;
- RSQRT: the gemmlowp Newton-Raphson inverse square root of q - zp_in (GetInvSqrtQuantized-
  MultiplierExp) and two MultiplyByQuantizedMultiplier steps;
- NEG (TFLite): the codes negated, ignoring quantisation (int8 wrap: -(-128) is -128);
- ELU (TFLite; no BUILTIN_REF kernel, LiteRT's default one): expm1f below zero, then
  rint(y * (1 / s_out) + zp_out) in float32, ties to even.
LiteRT refuses SQRT and RSQRT of a negative input; the tables give sqrt(0) there and the
largest code for RSQRT (as for q == zp_in). Every other function is a float function table
(`kernels_vpu_act.float_function_table`): round half away of f(x) / s_out, within half an
LSB of the float function.

int16 input (`unary_lut16`): EXP and LOG as LiteRT's int16 kernels build them,
LUTPopulate<int16_t> (513 anchors, linear interpolation; kernels_vpu16.lut16_populate) of
expf / logf (LOG of x <= 0: the output's lowest real value). Other functions have no int16
form here (LiteRT's int16 SQRT / RSQRT / NEG are per-code integer kernels, docs/numerics.md);
ABS of int16 is LiteRT's requantisation of |x - zp|, which the quantiser turns into LEAKY_RELU's
int16 PRELU with a slope of -1 (kernels_relu16.leaky_relu16_as_prelu).
"""
from __future__ import annotations

import functools
import math
from typing import Callable

import numpy as np

from npukit.errors import UnsupportedOpError
from npukit.kernels import fixedpoint as fp
from npukit.kernels import intmath
from npukit.kernels.kernels_vpu_act import CODES, _f32, _lut_populate, float_function_table
from npukit.kernels.kernels_vpu_eltwise import check_scale
from npukit.kernels.kernels_vpu16 import Lut16Params, lut16_populate

def _exponent(a: float | None) -> float:
    assert a is not None, "pow needs its exponent"
    return a


_SELU_ALPHA, _SELU_GAMMA = 1.67326319217681884765625, 1.05070102214813232421875


_ERF_STEPS = 64                  # grid points per unit, on [0, 6]
_ERF_DEGREE = 7


@functools.cache
def _erf_tables() -> tuple[np.ndarray, np.ndarray]:
    """math.erf at each grid point t, and the Taylor coefficients of erf about it:
    erf^(n+1)(t) / (n+1)! = 2 / sqrt(pi) (-1)^n H_n(t) e^(-t^2) / (n+1)! (physicists' Hermite
    polynomials, H_(n+1) = 2t H_n - 2n H_(n-1)), highest degree first."""
    t = np.arange(6 * _ERF_STEPS + 1) / _ERF_STEPS
    hermite, coefs = [np.ones_like(t), 2 * t], []
    for n in range(_ERF_DEGREE):
        coefs.append(2 / math.sqrt(math.pi) * (-1) ** n * hermite[n] * np.exp(-t * t) / math.factorial(n + 1))
        hermite.append(2 * t * hermite[n + 1] - 2 * (n + 1) * hermite[n])
    return np.array([math.erf(v) for v in t]), np.array(coefs[::-1])


def erf(x) -> np.ndarray:
    """math.erf of every element, vectorised, within 1e-15 (numpy has no erf): the degree-7
    Taylor polynomial about the nearest grid point k / 64 (`_erf_tables`). |h| <= 1/128
    bounds the remainder below 1e-17; beyond 6, |erf| rounds to 1 in float64."""
    at, taylor = _erf_tables()
    x = np.asarray(x, np.float64)
    a = np.fmin(np.abs(x), 6.0)           # (NaN: 6, set back below)
    k = np.rint(a * _ERF_STEPS).astype(np.intp)
    h = a - k / _ERF_STEPS
    y = taylor[0][k]
    for c in taylor[1:]:
        y *= h
        y += c[k]
    y *= h
    y += at[k]
    return np.where(np.isnan(x), np.nan, np.copysign(y, x))


def _with(fn: Callable, **defaults) -> Callable:
    return lambda x, alpha, gamma: fn(x, alpha if alpha is not None else defaults.get("alpha"),
                                      gamma if gamma is not None else defaults.get("gamma"))


def _shrink(x: np.ndarray, lambd: float, bias: float) -> np.ndarray:
    """Compared with lambd in float32, as onnxruntime does: an input code at exactly lambd
    (the attribute's float32 value) is inside the dead zone."""
    x32, lam = np.asarray(x, np.float32), np.float32(lambd)
    return np.where(x32 < -lam, x + bias, np.where(x32 > lam, x - bias, 0.0))


def _softplus(x):
    return np.logaddexp(0.0, x)


# float64 definitions (ONNX semantics); alpha / gamma are the operator's attributes
FLOAT_FUNCTIONS: dict[str, Callable[[np.ndarray, float | None, float | None], np.ndarray]] = {
    "log": lambda x, a, g: np.log(x),
    "exp": lambda x, a, g: np.exp(x),
    "abs": lambda x, a, g: np.abs(x),
    "sqrt": lambda x, a, g: np.sqrt(x),
    "rsqrt": lambda x, a, g: 1.0 / np.sqrt(x),
    "neg": lambda x, a, g: -x,
    "square": lambda x, a, g: x * x,
    "pow": lambda x, a, g: np.power(x, _exponent(a)),   # ONNX Pow by a constant scalar exponent a
    "tfl_neg": lambda x, a, g: -x,
    "tfl_elu": lambda x, a, g: np.where(x > 0, x, np.expm1(np.minimum(x, 0))),
    "reciprocal": lambda x, a, g: 1.0 / x,
    "erf": lambda x, a, g: erf(x),
    "softplus": lambda x, a, g: _softplus(x),
    "softsign": lambda x, a, g: x / (1.0 + np.abs(x)),
    "elu": _with(lambda x, a, g: np.where(x > 0, x, a * np.expm1(np.minimum(x, 0))), alpha=1.0),
    "celu": _with(lambda x, a, g: np.maximum(x, 0) + np.minimum(0, a * np.expm1(np.minimum(x, 0) / a)), alpha=1.0),
    "selu": _with(lambda x, a, g: g * np.where(x > 0, x, a * np.expm1(np.minimum(x, 0))),
                  alpha=_SELU_ALPHA, gamma=_SELU_GAMMA),
    "thresholded_relu": _with(lambda x, a, g: np.where(x > a, x, 0.0), alpha=1.0),
    "shrink": _with(lambda x, a, g: _shrink(x, a, g), alpha=0.5, gamma=0.0),     # ONNX Shrink: lambd, bias
    "mish": lambda x, a, g: x * np.tanh(_softplus(x)),
    "sin": lambda x, a, g: np.sin(x), "cos": lambda x, a, g: np.cos(x), "tan": lambda x, a, g: np.tan(x),
    "asin": lambda x, a, g: np.arcsin(x), "acos": lambda x, a, g: np.arccos(x),
    "atan": lambda x, a, g: np.arctan(x), "sinh": lambda x, a, g: np.sinh(x),
    "cosh": lambda x, a, g: np.cosh(x), "asinh": lambda x, a, g: np.arcsinh(x),
    "acosh": lambda x, a, g: np.arccosh(x), "atanh": lambda x, a, g: np.arctanh(x),
    "sign": lambda x, a, g: np.sign(x), "floor": lambda x, a, g: np.floor(x),
    "ceil": lambda x, a, g: np.ceil(x), "round": lambda x, a, g: np.round(x),    # ONNX Round: half to even
}


def unary_float(fn: str, x: np.ndarray, alpha: float | None = None, gamma: float | None = None) -> np.ndarray:
    """The float function (float32 in and out), as the calibration run evaluates it."""
    if fn not in FLOAT_FUNCTIONS:
        raise UnsupportedOpError(f"unknown element-wise function {fn!r}")
    with np.errstate(all="ignore"):
        return np.asarray(FLOAT_FUNCTIONS[fn](np.asarray(x, np.float64), alpha, gamma), np.float32)


def log_table(in_s: float, in_zp: int, out_s: float, out_zp: int) -> np.ndarray:
    """LOG: LogLUTPrepare; log of a non-positive input is the output's lowest real value."""
    lowest = _f32(_f32(-128 - int(out_zp)) * _f32(out_s))

    def fn(v: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            y = np.log(v.astype(np.float64)).astype(np.float32)
        return np.where(v <= 0, lowest, y)
    return _lut_populate(fn, in_s, in_zp, out_s, out_zp)


def exp_table(in_s: float, in_zp: int, out_s: float, out_zp: int) -> np.ndarray:
    """EXP: LUTPopulate<int8_t> of expf."""
    with np.errstate(over="ignore", invalid="ignore"):      # expf overflows to +inf: code 127
        return _lut_populate(lambda v: np.exp(v.astype(np.float64)).astype(np.float32), in_s, in_zp, out_s, out_zp)


def abs_table(in_s: float, in_zp: int, out_s: float, out_zp: int) -> np.ndarray:
    """ABS: AbsEvalQuantized."""
    check_scale(in_s, "input")
    check_scale(out_s, "output")
    value = np.abs(CODES - int(in_zp))
    if _f32(in_s) == _f32(out_s):
        out = value + int(out_zp)
    else:
        m, shift = intmath.quantize_multiplier(float(_f32(in_s) / _f32(out_s)))
        out = intmath.multiply_by_quantized_multiplier(value, m, shift) + int(out_zp)
    return np.clip(out, -128, 127).astype(np.int8)


def sqrt_table(in_s: float, in_zp: int, out_s: float, out_zp: int) -> np.ndarray:
    """SQRT: SqrtEvalQuantized (float32, truncation toward zero); negative inputs as 0."""
    check_scale(in_s, "input")
    check_scale(out_s, "output")
    x = _f32(in_s) * (CODES - int(in_zp)).astype(np.float32)
    root = np.sqrt(np.maximum(x, np.float32(0)).astype(np.float64)).astype(np.float32)
    q = np.trunc((root / _f32(out_s)).astype(np.float64))
    return np.clip(np.clip(q, -(1 << 31), (1 << 31) - 1) + int(out_zp), -128, 127).astype(np.int8)


def inv_sqrt_multiplier_exp(value: int) -> tuple[int, int]:
    """GetInvSqrtQuantizedMultiplierExp(value, kReverseShift = -1): a Q31 multiplier and a
    shift with 1 / sqrt(value) = multiplier * 2^(shift - 31), by five Newton-Raphson steps in
    gemmlowp fixed point (3 integer bits)."""
    if value <= 1:
        return intmath.INT32_MAX, 0
    shift = 11
    while value >= 1 << 29:
        value //= 4
        shift += 1
    pairs = ((32 - value.bit_length()) - 1) // 2 - 1
    shift -= pairs
    value <<= 2 * pairs
    half_input = int(fp.saturating_rounding_multiply_by_pot(value >> 1, -1))
    half_three = (1 << 28) + (1 << 27)
    x = 1 << 28                                      # 1.0 with 3 integer bits
    for _ in range(5):
        x3 = int(fp.rescale(fp.srdhm(fp.srdhm(x, x), x), 9, 3))
        x = int(fp.rescale(fp.sub(fp.srdhm(half_three, x), fp.srdhm(half_input, x3)), 6, 3))
    x = int(fp.srdhm(x, 1518500250))                 # times sqrt(2) / 2
    if shift < 0:
        x <<= -shift
        shift = 0
    return x, -shift


def rsqrt_table(in_s: float, in_zp: int, out_s: float, out_zp: int) -> np.ndarray:
    """RSQRT: RsqrtEvalQuantizedInt8 (q == zp_in, and below, give the largest code)."""
    check_scale(in_s, "input")
    check_scale(out_s, "output")
    m, shift = intmath.quantize_multiplier(1.0 / (math.sqrt(float(_f32(in_s))) * float(_f32(out_s))))
    out = np.full(256, 127, np.int64)
    for i, value in enumerate(CODES - int(in_zp)):
        if value > 0:
            inv_m, inv_shift = inv_sqrt_multiplier_exp(int(value))
            data = intmath.multiply_by_quantized_multiplier(1, inv_m, inv_shift + 20)
            out[i] = int(intmath.multiply_by_quantized_multiplier(data, m, shift - 20)) + int(out_zp)
    return np.clip(out, -128, 127).astype(np.int8)


def elu_table(in_s: float, in_zp: int, out_s: float, out_zp: int) -> np.ndarray:
    """ELU as LiteRT's default int8 kernel fills its table (float32, ties to even)."""
    check_scale(in_s, "input")
    check_scale(out_s, "output")
    x = (_f32(in_s) * (CODES - int(in_zp)).astype(np.float32)).astype(np.float32)
    y = np.where(x < 0, np.expm1(np.minimum(x, 0).astype(np.float64)).astype(np.float32), x)
    q = np.rint((y * (_f32(1) / _f32(out_s)) + _f32(out_zp)).astype(np.float32).astype(np.float64))
    return np.clip(q, -128, 127).astype(np.int8)


def negate_table() -> np.ndarray:
    """TFLite NEG on int8: the code negated (two's complement), quantisation ignored."""
    return (-CODES).astype(np.int8)


_LITERT_TABLES = {"log": log_table, "exp": exp_table, "abs": abs_table, "sqrt": sqrt_table,
                  "rsqrt": rsqrt_table, "tfl_elu": elu_table}


def unary_table(fn: str, in_s: float, in_zp: int, out_s: float, out_zp: int,
                alpha: float | None = None, gamma: float | None = None) -> np.ndarray:
    """The 256-entry table of element-wise function `fn` between two int8 quantisations."""
    if fn == "tfl_neg":
        return negate_table()
    if fn in _LITERT_TABLES:
        return _LITERT_TABLES[fn](in_s, in_zp, out_s, out_zp)
    if fn not in FLOAT_FUNCTIONS:
        raise UnsupportedOpError(f"unknown element-wise function {fn!r}")
    with np.errstate(all="ignore"):         # poles and domain edges: +-inf saturate, NaN gives out_zp
        return float_function_table(lambda v: FLOAT_FUNCTIONS[fn](v, alpha, gamma), in_s, in_zp, out_s, out_zp)


UNARY_16 = ("exp", "log")       # the functions with an int16-input table (LiteRT's LUTPopulate<int16_t>)
INT16_FUNCTIONS = (*UNARY_16, "abs")    # and ABS, quantised as LEAKY_RELU's int16 PRELU of slope -1


def unary_lut16(fn: str, in_s: float, in_zp: int, out_s: float, out_zp: int, out_bytes: int) -> Lut16Params:
    """EXP / LOG of an int16 input: LiteRT's int16 table (int16 out, zero points 0; elementwise.cc
    and exp.cc populate it with LUTPopulate<int16_t>); an int8 output is npukit's form of the
    same anchors (kernels_vpu16.Lut16Params)."""
    if fn not in UNARY_16:
        raise UnsupportedOpError(f"element-wise {fn} of an int16 input (int16 tables: {', '.join(UNARY_16)})")
    check_scale(in_s, "input")
    check_scale(out_s, "output")
    if out_bytes == 2 and (in_zp != 0 or out_zp != 0):
        raise UnsupportedOpError(f"int16 {fn} needs zero points 0, got {in_zp}, {out_zp}")
    low_code = -32768 if out_bytes == 2 else -128
    lowest = _f32(_f32(low_code - int(out_zp)) * _f32(out_s))

    def f(v: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):     # expf overflows to +inf (the table saturates), logf of <= 0
            y = (np.exp if fn == "exp" else np.log)(v.astype(np.float64)).astype(np.float32)
        return y if fn == "exp" else np.where(v <= 0, lowest, y)
    with np.errstate(invalid="ignore", over="ignore"):
        return lut16_populate(f, in_s, in_zp, out_s, out_zp, out_bytes)
