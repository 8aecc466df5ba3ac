"""Activation int8 kernels of the TFLite reference: LOGISTIC, TANH, HARD_SWISH, LEAKY_RELU
(all element-wise, so expressed as 256-entry tables indexed by code + 128) and SOFTMAX.

LOGISTIC and TANH: BUILTIN_REF fills a table in Prepare (LUTPopulate<int8_t>) by evaluating
the float function in float32 on every code; the table builders do the same. HARD_SWISH and
LEAKY_RELU run their integer reference algorithms on all 256 codes; HARD_SWISH of an int16
input is LiteRT's interpolated int16 table of the float function (`hard_swish_lut16`). SOFTMAX (int8 -> int8) in
the reference kernel is the gemmlowp fixed-point algorithm (not a table). An input scale too
small for that kernel's Prepare (it aborts) takes LiteRT's default kernel instead: a float32
table of exponentials (`SoftmaxTableParams`).
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from npukit.errors import InputError, UnsupportedOpError
from npukit.kernels import fixedpoint as fp
from npukit.kernels import intmath
from npukit.kernels.kernels_vpu_eltwise import check_scale as _check_scale
from npukit.kernels.kernels_vpu16 import Lut16Params, lut16_populate

CODES = np.arange(-128, 128, dtype=np.int64)   # every int8 code, table order


def _f32(x) -> np.float32:
    return np.float32(x)


def lut(x: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Apply a 256-entry int8 table (indexed by code + 128)."""
    table = np.asarray(table)
    if table.shape != (256,):
        raise InputError(f"lookup table must have 256 entries, got shape {table.shape}")
    return table[np.asarray(x, dtype=np.int64) + 128]


def _lut_populate(fn: Callable[[np.ndarray], np.ndarray], in_s: float, in_zp: int,
                  out_s: float, out_zp: int) -> np.ndarray:
    """TFLite LUTPopulateInt8<int8_t>: every step in float32, rounding with roundf."""
    _check_scale(in_s, "input")
    _check_scale(out_s, "output")
    dequantized = _f32(in_s) * (CODES - int(in_zp)).astype(np.float32)
    transformed = fn(dequantized).astype(np.float32)
    inverse_scale = _f32(1.0) / _f32(out_s)
    rescaled = intmath.round_half_away((transformed * inverse_scale).astype(np.float64))
    quantized = (rescaled.astype(np.float32) + _f32(out_zp)).astype(np.float64)
    return np.clip(quantized, -128, 127).astype(np.int8)


def _expf(x: np.ndarray) -> np.ndarray:
    """float32 exp, computed in double and rounded once (as a correctly rounded libm expf);
    overflow gives +inf as expf does."""
    with np.errstate(over="ignore"):
        return np.exp(x.astype(np.float64)).astype(np.float32)


def logistic_table(in_s: float, in_zp: int, out_s: float = 1 / 256, out_zp: int = -128) -> np.ndarray:
    """LOGISTIC: table of 1.0f / (1.0f + expf(-x)); TFLite requires out_s == 1/256."""
    if float(_f32(out_s)) != 1 / 256:
        raise UnsupportedOpError(f"int8 LOGISTIC needs output scale 1/256, got {out_s}")
    return _lut_populate(lambda v: _f32(1.0) / (_f32(1.0) + _expf(-v)), in_s, in_zp, out_s, out_zp)


def tanh_table(in_s: float, in_zp: int, out_s: float, out_zp: int) -> np.ndarray:
    """TANH: table of tanhf(x)."""
    return _lut_populate(lambda v: np.tanh(v.astype(np.float64)).astype(np.float32),
                         in_s, in_zp, out_s, out_zp)


def float_function_table(fn: Callable[[np.ndarray], np.ndarray], in_s: float, in_zp: int,
                         out_s: float, out_zp: int) -> np.ndarray:
    """npukit's own table for functions TFLite has no int8 kernel for (e.g. hard sigmoid):
    y = fn(in_s * (q - in_zp)) in float64, code = round_half_away(y / out_s) + out_zp, saturated."""
    _check_scale(in_s, "input")
    _check_scale(out_s, "output")
    y = np.asarray(fn(float(in_s) * (CODES - int(in_zp)).astype(np.float64)), dtype=np.float64)
    q = intmath.round_half_away(y / float(out_s)) + int(out_zp)
    return np.clip(np.nan_to_num(q, nan=float(out_zp)), -128, 127).astype(np.int8)


def _down_scale_to_int16(multiplier: int) -> int:
    """DownScaleInt32ToInt16Multiplier."""
    if multiplier >= (1 << 31) - 1 - (1 << 15):
        return (1 << 15) - 1
    return (multiplier + (1 << 15)) >> 16


def hard_swish_table(in_s: float, in_zp: int, out_s: float, out_zp: int) -> np.ndarray:
    """HARD_SWISH: HardSwishPrepare (float32 scale arithmetic) + reference_ops::HardSwish<int8>."""
    _check_scale(in_s, "input")
    _check_scale(out_s, "output")
    hires_input_scale = _f32(1.0 / 128.0) * _f32(in_s)
    reluish_scale = _f32(3.0) / _f32(32768.0)
    out_m32, out_exp = intmath.quantize_multiplier(float(hires_input_scale / _f32(out_s)))
    if out_exp > 0:
        raise UnsupportedOpError(f"int8 HARD_SWISH: input scale {in_s} / output scale {out_s} "
                                 "is too large for TFLite's kernel")
    relu_m32, relu_exp = intmath.quantize_multiplier(float(hires_input_scale / reluish_scale))
    out_m16, relu_m16 = _down_scale_to_int16(out_m32), _down_scale_to_int16(relu_m32)

    value = fp.wrap16(CODES - int(in_zp))
    hires = fp.wrap16(value * (1 << 7))
    preshift_out = fp.srdhm16(hires, out_m16)
    reluish = hires
    if relu_exp > 0:
        reluish = fp.saturating_left_shift16(reluish, relu_exp - 1)
    reluish = fp.srdhm16(reluish, relu_m16)
    if relu_exp > 0:
        reluish = fp.saturating_left_shift16(reluish, 1)
    if relu_exp < 0:
        reluish = fp.rounding_divide_by_pot(reluish, -relu_exp)
    reluish = (reluish + (1 << 15)) >> 1
    preshift_result = fp.saturating_doubling_high_mul16(reluish, preshift_out)
    out = fp.wrap16(fp.rounding_divide_by_pot(preshift_result, -out_exp) + int(out_zp))
    return np.clip(out, -128, 127).astype(np.int8)


def hard_swish_f32(v: np.ndarray) -> np.ndarray:
    """x * relu6(x + 3) / 6 in float32, as TFLite's float HARD_SWISH computes it."""
    v = np.asarray(v, np.float32)
    return (v * np.clip(v + _f32(3.0), _f32(0.0), _f32(6.0)) / _f32(6.0)).astype(np.float32)


def hard_swish_lut16(in_s: float, in_zp: int, out_s: float, out_zp: int, out_bytes: int = 2) -> Lut16Params:
    """HARD_SWISH of an int16 input (LiteRT has no int16 HARD_SWISH): LiteRT's int16 table
    scheme (kernels_vpu16.lut16_populate, 513 anchors, linear interpolation), int16 or int8 out.
    Within 2.5 output steps (int8 out: 0.55) plus half the chord error of the parabola, but
    within two anchor steps (256 input codes) of the kinks at -3 and +3, where the chord cuts
    the corner by up to 16 input steps more (docs/numerics.md)."""
    _check_scale(in_s, "input")
    _check_scale(out_s, "output")
    return lut16_populate(hard_swish_f32, in_s, in_zp, out_s, out_zp, out_bytes)


def leaky_relu_table(in_s: float, in_zp: int, out_s: float, out_zp: int, alpha: float) -> np.ndarray:
    """LEAKY_RELU: LeakyReluPrepare + reference_ops::QuantizeLeakyRelu (negative alpha is
    applied as the negated result of a positive multiplier, as the current kernel does)."""
    _check_scale(in_s, "input")
    _check_scale(out_s, "output")
    m_alpha, sh_alpha = intmath.quantize_multiplier(float(_f32(in_s) * _f32(alpha) / _f32(out_s)))
    m_id, sh_id = intmath.quantize_multiplier(float(_f32(in_s) / _f32(out_s)))
    v = CODES - int(in_zp)
    pos = intmath.multiply_by_quantized_multiplier(v, m_id, sh_id)
    neg = intmath.multiply_by_quantized_multiplier(v, abs(m_alpha), sh_alpha)
    neg = -neg if m_alpha < 0 else neg
    return np.clip(np.where(v >= 0, pos, neg) + int(out_zp), -128, 127).astype(np.int8)


SOFTMAX_SCALED_DIFF_INTEGER_BITS = 5
SOFTMAX_ACCUMULATION_INTEGER_BITS = 12


@dataclass(frozen=True)
class SoftmaxParams:
    input_multiplier: int
    input_left_shift: int
    diff_min: int
    output_zp: int = -128


def _quantize_multiplier_greater_than_one(real: float) -> tuple[int, int]:
    """QuantizeMultiplier without intmath's single-rounding clamp of shifts above 30 (the
    double-rounding reference keeps shift 31 for multipliers near 2^31)."""
    q, shift = math.frexp(real)
    q_fixed = int(intmath.round_half_away(q * (1 << 31)))
    if q_fixed == 1 << 31:
        q_fixed, shift = q_fixed // 2, shift + 1
    return q_fixed, shift


@dataclass(frozen=True)
class SoftmaxTableParams:
    """LiteRT's default (optimized) int8 softmax: float32 bit patterns of -(beta * input
    scale) and of the output scale, and the output zero point."""
    neg_beta_scale_bits: int
    output_scale_bits: int
    output_zp: int = -128


def _f32_bits(x: float | np.floating) -> int:
    return int(np.float32(x).view(np.int32))


def _f32_from_bits(bits: int) -> np.float32:
    return np.int32(bits).view(np.float32)


def prepare_softmax(in_s: float, beta: float = 1.0, out_s: float = 1 / 256,
                    out_zp: int = -128) -> SoftmaxParams | SoftmaxTableParams:
    """SoftmaxPrepare for the reference kernel: PreprocessSoftmaxScaling + CalculateInputRadius.
    Where that would abort (beta * input scale * 2^26 <= 1), the default kernel's table params."""
    _check_scale(in_s, "input")
    if out_zp != -128 or abs(float(_f32(out_s)) - 1 / 256) > 0.001 / 256:
        raise UnsupportedOpError(f"int8 SOFTMAX needs output scale 1/256 and zero point -128, "
                                 f"got {out_s}, {out_zp}")
    bits = SOFTMAX_SCALED_DIFF_INTEGER_BITS
    real = min(float(_f32(beta)) * float(_f32(in_s)) * float(1 << (31 - bits)), float((1 << 31) - 1))
    if not real > 1.0:
        return prepare_softmax_table(in_s, beta, out_s, out_zp)
    multiplier, left_shift = _quantize_multiplier_greater_than_one(real)
    radius = ((1 << bits) - 1) * (1 << (31 - bits)) / (1 << left_shift)
    return SoftmaxParams(multiplier, left_shift, -int(np.floor(radius)), int(out_zp))


def prepare_softmax_table(in_s: float, beta: float = 1.0, out_s: float = 1 / 256,
                          out_zp: int = -128) -> SoftmaxTableParams:
    """SoftmaxPrepare for LiteRT's default kernel (-input scale * beta in float32)."""
    return SoftmaxTableParams(_f32_bits(-(_f32(in_s) * _f32(beta))), _f32_bits(out_s), int(out_zp))


def softmax_exp_table(p: SoftmaxTableParams) -> np.ndarray:
    """PopulateSoftmaxLookupTable: table[255 - d] = expf(-beta * input scale * d), d = 0..255,
    the product in float32, the exponential rounded to float32 from double precision."""
    d = _f32_from_bits(p.neg_beta_scale_bits) * np.arange(256, dtype=np.float32)
    return np.array([math.exp(v) for v in d.astype(np.float64).tolist()], np.float64).astype(np.float32)[::-1]


def _exps(x: np.ndarray, row_max: np.ndarray,
          p: SoftmaxParams | SoftmaxTableParams) -> tuple[np.ndarray, np.ndarray | None]:
    """(exponential of each code's difference from its row's maximum, whether it counts): Q0.31
    fixed point by the reference kernel (none below diff_min), float32 from the table otherwise."""
    x = np.asarray(x, dtype=np.int64)
    if isinstance(p, SoftmaxTableParams):
        return softmax_exp_table(p)[255 - np.asarray(row_max, np.int64) + x], None
    diff = x - row_max
    if diff.size > 256 and diff.min() >= -255:     # int8 codes: the 256 differences' exponentials, indexed
        return _reference_exps(p)[diff + 255], diff >= p.diff_min
    return _reference_exp(diff, p), diff >= p.diff_min


def _reference_exp(diff: np.ndarray, p: SoftmaxParams) -> np.ndarray:
    """The reference kernel's Q0.31 exponential of code differences (0 below diff_min)."""
    rescaled = fp.srdhm(fp.wrap32(diff * (1 << p.input_left_shift)), p.input_multiplier)
    return np.where(diff >= p.diff_min, fp.exp_on_negative_values(rescaled, SOFTMAX_SCALED_DIFF_INTEGER_BITS), 0)


@functools.lru_cache(maxsize=64)
def _reference_exps(p: SoftmaxParams) -> np.ndarray:
    """`_reference_exp` of every int8 difference -255 .. 0, at index difference + 255."""
    return _reference_exp(np.arange(-255, 1, dtype=np.int64), p)


def softmax_sum(x: np.ndarray, row_max: np.ndarray, p: SoftmaxParams | SoftmaxTableParams,
                start: np.ndarray | int = 0) -> np.ndarray:
    """`start` plus the sum of each row's exponentials ([rows, 1]): the reference kernel's
    wrapping int32 sum of them in Q12.19, or the default kernel's float32 sum in column order
    (a float32 `start`). Either continues exactly over the row's next chunk of columns."""
    return _sum(_exps(x, row_max, p)[0], p, start)


def softmax_out(x: np.ndarray, row_max: np.ndarray, total: np.ndarray,
                p: SoftmaxParams | SoftmaxTableParams) -> np.ndarray:
    """The int8 outputs of codes `x` from their rows' maximum and sum of exponentials."""
    return _out(*_exps(x, row_max, p), total, p)


def _sum(e: np.ndarray, p: SoftmaxParams | SoftmaxTableParams, start: np.ndarray | int) -> np.ndarray:
    if isinstance(p, SoftmaxTableParams):
        head = np.broadcast_to(np.asarray(start, np.float32), (*e.shape[:-1], 1))
        return np.add.accumulate(np.concatenate([head, e], axis=-1), axis=-1, dtype=np.float32)[..., -1:]
    accum = fp.rescale(e, 0, SOFTMAX_ACCUMULATION_INTEGER_BITS)
    return fp.wrap32(np.asarray(start, np.int64) + accum.sum(axis=-1, keepdims=True))


def _out(e: np.ndarray, used: np.ndarray | None, total: np.ndarray,
         p: SoftmaxParams | SoftmaxTableParams) -> np.ndarray:
    if isinstance(p, SoftmaxTableParams):
        inv = np.float32(1.0) / (np.asarray(total, np.float32) * _f32_from_bits(p.output_scale_bits))
        prob = intmath.round_half_away((e * inv).astype(np.float64))
        return np.clip(prob + p.output_zp, -128, 127).astype(np.int8)
    shifted_scale, num_bits_over_unit = fp.get_reciprocal(total, SOFTMAX_ACCUMULATION_INTEGER_BITS)
    exponent = num_bits_over_unit + 31 - 8
    out = fp.rounding_divide_by_pot(fp.srdhm(shifted_scale, e), exponent) - 128
    assert used is not None         # (the reference kernel's exponentials say which count)
    return np.where(used, np.clip(out, -128, 127), -128).astype(np.int8)


def softmax(x: np.ndarray, p: SoftmaxParams | SoftmaxTableParams) -> np.ndarray:
    """reference_ops::Softmax<int8_t, int8_t> over the last axis; for table params LiteRT's
    default optimized_ops::Softmax<int8_t, int8_t> (float32 exponentials of the code differences
    from the row maximum, summed in order, each scaled by 1 / (sum * output scale) in float32
    and rounded half away from zero). The exponentials are computed once for both passes."""
    x = np.asarray(x, dtype=np.int64)
    e, used = _exps(x, x.max(axis=-1, keepdims=True), p)
    return _out(e, used, _sum(e, p, 0), p)
