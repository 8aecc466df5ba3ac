"""Element-wise int8 kernels of the TFLite reference: ADD, SUB, MUL, MAXIMUM/MINIMUM, PRELU,
QUANTIZE (float -> int and int -> int rescale) and DEQUANTIZE.

Scales are the tensors' float32 params; each prepare_* repeats the Prepare arithmetic of the
TFLite kernel, including where it runs in float32 and where in double.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from npukit.errors import InputError, UnsupportedOpError
from npukit.ir.graph import Clamp
from npukit.kernels import intmath
from npukit.kernels.kernels_mxu import activation_range

ADD_LEFT_SHIFT = 20   # the 8-bit path of TFLite ADD/SUB
ADD_LEFT_SHIFT_INT16 = 15   # TFLite's general-scale int16 path (int16 operands, zero point 0)


def _f32(x: float) -> np.float32:
    return np.float32(x)


def _i64(x) -> np.ndarray:
    return np.asarray(x, dtype=np.int64)


def _check_zero_point(zp: int, dtype, what: str) -> None:
    info = np.iinfo(dtype)
    if not info.min <= int(zp) <= info.max:
        raise InputError(f"{what} zero point {zp} is outside the {np.dtype(dtype).name} range")


def _broadcast_shape(x1, x2, op: str) -> tuple[int, ...]:
    try:
        return np.broadcast_shapes(np.shape(x1), np.shape(x2))
    except ValueError:
        raise InputError(f"{op}: shapes {np.shape(x1)} and {np.shape(x2)} do not broadcast") from None


def check_scale(scale: float, what: str) -> None:
    """A tensor scale must be a positive finite float32."""
    if not (np.isfinite(scale) and float(_f32(scale)) > 0.0):
        raise InputError(f"{what} scale {scale} must be a positive finite float32")


@dataclass(frozen=True)
class AddParams:
    """TFLite ArithmeticParams of the 8-bit ADD / SUB path (shifts: <= 0, i.e. right)."""
    input1_offset: int
    input2_offset: int
    output_offset: int
    left_shift: int
    input1_multiplier: int
    input1_shift: int
    input2_multiplier: int
    input2_shift: int
    output_multiplier: int
    output_shift: int
    act_min: int
    act_max: int
    subtract: bool = False


def _smaller_than_one(m: float, what: str) -> tuple[int, int]:
    if not 0.0 <= m < 1.0:
        raise UnsupportedOpError(f"{what} rescale factor {m:.6g} is not in [0, 1); TFLite's "
                                 "8-bit ADD/SUB cannot represent it")
    return intmath.quantize_multiplier(m)


def prepare_add(s1: float, zp1: int, s2: float, zp2: int, so: float, zpo: int,
                act: Clamp | None, sub: bool = False, dtype=np.int8,
                left_shift: int = ADD_LEFT_SHIFT) -> AddParams:
    """ADD (or SUB with sub=True) Prepare: both inputs rescaled to 2*max(s1, s2) / 2^left_shift
    (20 for int8 operands, 15 when an operand is int16, as TFLite's int16 ADD)."""
    for s, what in ((s1, "input 1"), (s2, "input 2"), (so, "output")):
        check_scale(s, what)
    for zp, what in ((zp1, "input 1"), (zp2, "input 2"), (zpo, "output")):
        _check_zero_point(zp, dtype, what)
    twice_max_input_scale = 2.0 * float(max(_f32(s1), _f32(s2)))
    real1 = float(_f32(s1)) / twice_max_input_scale
    real2 = float(_f32(s2)) / twice_max_input_scale
    real_out = twice_max_input_scale / (float(1 << left_shift) * float(_f32(so)))
    m1, sh1 = _smaller_than_one(real1, "input 1")
    m2, sh2 = _smaller_than_one(real2, "input 2")
    mo, sho = _smaller_than_one(real_out, "output")
    lo, hi = activation_range(act, so, zpo, dtype)
    return AddParams(-int(zp1), -int(zp2), int(zpo), int(left_shift), m1, sh1, m2, sh2,
                     mo, sho, lo, hi, bool(sub))


def _scale_smaller_than_one(x, multiplier: int, shift: int) -> np.ndarray:
    return intmath.multiply_by_quantized_multiplier_smaller_than_one_exp(x, multiplier, shift)


def add(x1: np.ndarray, x2: np.ndarray, p: AddParams, dtype=np.int8) -> np.ndarray:
    """reference_integer_ops::AddFunc (or reference_ops SUB), with numpy broadcasting."""
    _broadcast_shape(x1, x2, "SUB" if p.subtract else "ADD")
    a = (_i64(x1) + p.input1_offset) * (1 << p.left_shift)
    b = (_i64(x2) + p.input2_offset) * (1 << p.left_shift)
    a = _scale_smaller_than_one(a, p.input1_multiplier, p.input1_shift)
    b = _scale_smaller_than_one(b, p.input2_multiplier, p.input2_shift)
    raw = intmath.wrap_int32(a - b if p.subtract else a + b)
    out = _scale_smaller_than_one(raw, p.output_multiplier, p.output_shift) + p.output_offset
    return np.clip(out, p.act_min, p.act_max).astype(dtype)


def sub(x1: np.ndarray, x2: np.ndarray, p: AddParams, dtype=np.int8) -> np.ndarray:
    if not p.subtract:
        raise InputError("sub() needs params from prepare_add(..., sub=True)")
    return add(x1, x2, p, dtype)


@dataclass(frozen=True)
class MulParams:
    input1_offset: int
    input2_offset: int
    output_offset: int
    multiplier: int
    shift: int          # TFLite convention: > 0 shifts left
    act_min: int
    act_max: int


def prepare_mul(s1: float, zp1: int, s2: float, zp2: int, so: float, zpo: int,
                act: Clamp | None, dtype=np.int8) -> MulParams:
    """MUL Prepare: real multiplier s1*s2/so evaluated in float32, then QuantizeMultiplier."""
    for s, what in ((s1, "input 1"), (s2, "input 2"), (so, "output")):
        check_scale(s, what)
    real = float(_f32(s1) * _f32(s2) / _f32(so))
    m, sh = intmath.quantize_multiplier(real)
    lo, hi = activation_range(act, so, zpo, dtype)
    return MulParams(-int(zp1), -int(zp2), int(zpo), m, sh, lo, hi)


def mul(x1: np.ndarray, x2: np.ndarray, p: MulParams, dtype=np.int8) -> np.ndarray:
    _broadcast_shape(x1, x2, "MUL")
    if x1.dtype == x2.dtype == np.int8:     # |offset code| <= 256: the product fits int32
        prod = (x1.astype(np.int32) + p.input1_offset) * (x2.astype(np.int32) + p.input2_offset)
    else:
        prod = intmath.wrap_int32((_i64(x1) + p.input1_offset) * (_i64(x2) + p.input2_offset))
    out = intmath.multiply_by_quantized_multiplier_fused(prod, p.multiplier, p.shift)
    out += p.output_offset
    return np.clip(out, p.act_min, p.act_max).astype(dtype)


def maximum(x1: np.ndarray, x2: np.ndarray) -> np.ndarray:
    """MAXIMUM on raw codes (both inputs and the output share scale and zero point)."""
    _broadcast_shape(x1, x2, "MAXIMUM")
    return np.maximum(x1, x2)


def minimum(x1: np.ndarray, x2: np.ndarray) -> np.ndarray:
    _broadcast_shape(x1, x2, "MINIMUM")
    return np.minimum(x1, x2)


@dataclass(frozen=True)
class PreluParams:
    input_offset: int
    alpha_offset: int
    output_offset: int
    multiplier_pos: int    # x >= 0: in_s / out_s
    shift_pos: int
    multiplier_neg: int    # x < 0: in_s * alpha_s / out_s
    shift_neg: int


def prepare_prelu(in_s: float, in_zp: int, alpha_s: float, alpha_zp: int,
                  out_s: float, out_zp: int) -> PreluParams:
    """PRELU Prepare (both multipliers evaluated in float32, as the kernel does)."""
    for s, what in ((in_s, "input"), (alpha_s, "alpha"), (out_s, "output")):
        check_scale(s, what)
    m1, sh1 = intmath.quantize_multiplier(float(_f32(in_s) / _f32(out_s)))
    m2, sh2 = intmath.quantize_multiplier(float(_f32(in_s) * _f32(alpha_s) / _f32(out_s)))
    return PreluParams(-int(in_zp), -int(alpha_zp), int(out_zp), m1, sh1, m2, sh2)


def prelu(x: np.ndarray, alpha_q: np.ndarray, p: PreluParams, dtype=np.int8) -> np.ndarray:
    """reference_ops::Prelu / BroadcastPrelu4DSlow; alpha broadcasts against x (e.g. [C])."""
    if _broadcast_shape(x, alpha_q, "PRELU") != np.shape(x):
        raise InputError(f"PRELU: alpha shape {np.shape(alpha_q)} does not broadcast to {np.shape(x)}")
    v, a = np.broadcast_arrays(_i64(x) + p.input_offset, _i64(alpha_q) + p.alpha_offset)
    pos = intmath.multiply_by_quantized_multiplier(v, p.multiplier_pos, p.shift_pos)
    neg = intmath.multiply_by_quantized_multiplier(intmath.wrap_int32(v * a), p.multiplier_neg,
                                                   p.shift_neg)
    return intmath.saturate(np.where(v >= 0, pos, neg) + p.output_offset, dtype)


@dataclass(frozen=True)
class RequantParams:
    input_zp: int
    output_zp: int
    multiplier: int
    shift: int


def prepare_requantize(in_s: float, in_zp: int, out_s: float, out_zp: int) -> RequantParams:
    """QUANTIZE (int -> int) Prepare: QuantizeMultiplier(double(in_s) / double(out_s))."""
    check_scale(in_s, "input")
    check_scale(out_s, "output")
    m, sh = intmath.quantize_multiplier(float(_f32(in_s)) / float(_f32(out_s)))
    return RequantParams(int(in_zp), int(out_zp), m, sh)


def requantize(x: np.ndarray, p: RequantParams, dtype=np.int8) -> np.ndarray:
    """reference_ops::Requantize (int8/uint8/int16 in, int8/uint8/int16 out)."""
    v = intmath.multiply_by_quantized_multiplier(_i64(x) - p.input_zp, p.multiplier, p.shift)
    return intmath.saturate(v + p.output_zp, dtype)


def pad_code(value: float, scale: float, zp: int) -> int:
    """The int8 code a PAD fills with: its value quantised at the tensor's scale, saturated
    (-inf, or float32's lowest before a max pool: the lowest code)."""
    return int(quantize_saturated(np.asarray([value], np.float32), scale, zp)[0])


def quantize_saturated(x_float: np.ndarray, scale: float, zp: int, dtype=np.int8) -> np.ndarray:
    """`quantize` of values clipped in float to the codes' range first, so that -inf and
    masking constants (-1e9, float32's lowest) are the lowest code: npukit's own quantisation
    of a float model's constants, where LiteRT's cast of an out-of-range quotient would wrap."""
    info = np.iinfo(dtype)
    return quantize(np.clip(x_float, (info.min - zp) * scale, (info.max - zp) * scale), scale, zp, dtype)


def quantize(x_float: np.ndarray, scale: float, zp: int, dtype=np.int8) -> np.ndarray:
    """reference_ops::AffineQuantize: round_half_away(float32(x) / float32(scale)) + zp, saturated.

    Quotients outside int32 (and NaN) make the C++ float -> int32 cast undefined; like x86's
    cvttss2si they become INT32_MIN here, and adding the zero point wraps as int32.
    """
    check_scale(scale, "output")
    q = np.asarray(x_float, dtype=np.float32) / _f32(scale)
    if q.size and np.max(np.abs(q)) < 2.0 ** 30:      # finite, no int32 wrap: the common case
        return _quantize_small(q, int(zp), dtype)
    q = intmath.round_half_away(q.astype(np.float64))
    in_range = (q >= -(2.0 ** 31)) & (q < 2.0 ** 31)
    q = np.where(in_range, np.nan_to_num(q), float(intmath.INT32_MIN)).astype(np.int64)
    return intmath.saturate(intmath.wrap_int32(q + int(zp)), dtype)


def _quantize_small(q: np.ndarray, zp: int, dtype) -> np.ndarray:
    """`quantize` of float32 quotients below 2^30 in a few in-place passes (embedding tables
    have millions of values). floor(|q| + 0.5) is exact in float64 for a float32 q: its 24
    significant bits and the 0.5 fit in 53 bits unless |q| < 2^-29, where the sum rounds
    to 0.5 (floor 0, as it should be), so no sum crosses an integer it should not."""
    r = np.abs(q, out=np.empty(q.shape))       # an array even for a 0-d q (a scalar constant)
    r += 0.5
    np.floor(r, out=r)
    np.copysign(r, q, out=r)
    r += zp
    info = np.iinfo(dtype)
    return np.clip(r, info.min, info.max, out=r).astype(dtype)


def dequantize(x: np.ndarray, scale: float, zp: int) -> np.ndarray:
    """reference_ops::Dequantize: float32(double(scale) * (q - zp))."""
    return (float(_f32(scale)) * (_i64(x) - int(zp)).astype(np.float64)).astype(np.float32)
