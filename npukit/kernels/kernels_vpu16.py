"""int16 VPU kernels of TFLite's 16x8 scheme: LOGISTIC, TANH and SOFTMAX (int16 in and out,
zero point 0), as LiteRT's reference kernels compute them.

LOGISTIC / TANH (reference_integer_ops::Logistic / Tanh): the input is rescaled to steps of
1 / (3 * 4096) (x * multiplier + rounding) >> shift, its magnitude indexes the 256-entry
Q0.16 table of sigmoid(i / 24) below (9 fraction bits for logistic, 8 for tanh, linear
interpolation between entries) and the sign folds the result back (tanh(x) = 2 sigmoid(2x) - 1).
The output scale is 1 / 32768. The table is LiteRT's `sigmoid_table_uint16` (not a rounding
of the float function: 44 entries sit one above round(65536 sigmoid(i / 24))).

SOFTMAX (reference_ops::SoftmaxInt16): exp(x - max) from a 513-entry interpolated table over
[-10, 0] and 1 / (1 + x) from another over [0, 1], both built as LiteRT 2.3's softmax Prepare
builds them (gen_lut<double>; the float32 LUTPopulate of later sources differs in two entries
of the reciprocal table, and LiteRT's outputs follow the double one); the row sum is
normalised with a count of leading zeros and the output is exp * reciprocal >> (31 - clz),
clamped to [0, 32767] (scale 1 / 32768). LiteRT clamps a difference below -10 to the table's
floor, exp(-10) (about 1.5 / 32768): a row of C classes far below its maximum gains about
C / 32768 in its sum, so a recogniser's 6625-class softmax loses a sixth of its top
probability. The graphs npukit quantises itself count those differences 0 instead
(`Softmax16Params.floor_tail`); a pre-quantised 16x8 model keeps LiteRT's arithmetic.

The ADD / SUB / MUL / pooling / MEAN / RESIZE kernels of kernels_vpu take an int16 dtype;
this module holds only what has no int8 counterpart.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from npukit.errors import UnsupportedOpError
from npukit.kernels import intmath
from npukit.kernels.kernels_vpu_eltwise import check_scale

SIGMOID_TABLE = np.array([
    32768, 33451, 34133, 34813, 35493, 36169, 36843, 37513, 38180, 38841, 39498, 40149, 40794, 41432, 42064, 42688,
    43304, 43912, 44511, 45102, 45683, 46255, 46817, 47369, 47911, 48443, 48964, 49475, 49975, 50464, 50942, 51409,
    51865, 52311, 52745, 53169, 53581, 53983, 54374, 54755, 55125, 55485, 55834, 56174, 56503, 56823, 57133, 57433,
    57724, 58007, 58280, 58544, 58800, 59048, 59288, 59519, 59743, 59959, 60168, 60370, 60565, 60753, 60935, 61110,
    61279, 61441, 61599, 61750, 61896, 62036, 62172, 62302, 62428, 62549, 62666, 62778, 62886, 62990, 63090, 63186,
    63279, 63368, 63454, 63536, 63615, 63691, 63765, 63835, 63903, 63968, 64030, 64090, 64148, 64204, 64257, 64308,
    64357, 64405, 64450, 64494, 64536, 64576, 64614, 64652, 64687, 64721, 64754, 64786, 64816, 64845, 64873, 64900,
    64926, 64950, 64974, 64997, 65019, 65039, 65060, 65079, 65097, 65115, 65132, 65149, 65164, 65179, 65194, 65208,
    65221, 65234, 65246, 65258, 65269, 65280, 65291, 65301, 65310, 65319, 65328, 65337, 65345, 65352, 65360, 65367,
    65374, 65381, 65387, 65393, 65399, 65404, 65410, 65415, 65420, 65425, 65429, 65433, 65438, 65442, 65445, 65449,
    65453, 65456, 65459, 65462, 65465, 65468, 65471, 65474, 65476, 65479, 65481, 65483, 65485, 65488, 65489, 65491,
    65493, 65495, 65497, 65498, 65500, 65501, 65503, 65504, 65505, 65507, 65508, 65509, 65510, 65511, 65512, 65513,
    65514, 65515, 65516, 65517, 65517, 65518, 65519, 65520, 65520, 65521, 65522, 65522, 65523, 65523, 65524, 65524,
    65525, 65525, 65526, 65526, 65526, 65527, 65527, 65528, 65528, 65528, 65529, 65529, 65529, 65529, 65530, 65530,
    65530, 65530, 65531, 65531, 65531, 65531, 65531, 65532, 65532, 65532, 65532, 65532, 65532, 65533, 65533, 65533,
    65533, 65533, 65533, 65533, 65533, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65535,
], np.int64)

OUT_SCALE_16 = 1.0 / 32768


def _f32(x) -> np.float32:
    return np.float32(x)


def checked_log2(x: float) -> tuple[int, bool]:
    """TFLite CheckedLog2 (float32): the rounded log2 and whether x is a power of two."""
    v = _f32(math.log(float(_f32(x)))) * (_f32(1.0) / _f32(math.log(2.0)))
    r = float(np.round(v))          # x_log2 is never exactly k + 0.5 for a scale of interest
    return int(r), abs(float(_f32(v) - _f32(r))) < 1e-3


def _check_unit_output(out_s: float, out_zp: int, what: str) -> None:
    log2, pot = checked_log2(out_s)
    if not pot or log2 != -15 or out_zp != 0:
        raise UnsupportedOpError(f"int16 {what} needs output scale 1/32768 and zero point 0, got {out_s}, {out_zp}")


@dataclass(frozen=True)
class Sigmoid16Params:
    tanh: int                 # 0 logistic, 1 tanh
    input_multiplier: int     # 0: a power-of-two input scale (the kernel uses 3 << shift)
    input_left_shift: int


def prepare_sigmoid16(in_s: float, in_zp: int, out_s: float, out_zp: int, tanh: bool) -> Sigmoid16Params:
    """LOGISTIC / TANH Prepare for int16: input scale to steps of 1 / (3 * 4096)."""
    check_scale(in_s, "input")
    if in_zp != 0:
        raise UnsupportedOpError(f"int16 {'TANH' if tanh else 'LOGISTIC'} needs input zero point 0, got {in_zp}")
    _check_unit_output(out_s, out_zp, "TANH" if tanh else "LOGISTIC")
    log2, pot = checked_log2(in_s)
    shift = 12 + log2
    if pot and (shift == 0 or (tanh and shift == 1)):
        return Sigmoid16Params(int(tanh), 0, shift)
    m, shift = float(_f32(in_s)) * 4096.0 * 3.0, 0
    while m <= 32767.0 / 2.0 and shift <= 30:
        shift, m = shift + 1, m * 2.0
    if m > 32767.0:
        raise UnsupportedOpError(f"int16 {'TANH' if tanh else 'LOGISTIC'}: input scale {in_s} is above 32767 / 12288 "
                                 "(LiteRT's 16-bit input multiplier overflows)")
    return Sigmoid16Params(int(tanh), int(m), shift)


def sigmoid16(x: np.ndarray, p: Sigmoid16Params) -> np.ndarray:
    """reference_integer_ops::Logistic (tanh=0) or Tanh (tanh=1) on int16 codes."""
    m, sh = (3 << p.input_left_shift, 0) if p.input_multiplier == 0 else (p.input_multiplier, p.input_left_shift)
    rnd = (1 << (sh - 1)) if sh > 0 else 0
    v = (np.asarray(x, np.int64) * m + rnd) >> sh
    a = np.abs(v)
    frac = 8 if p.tanh else 9
    uh = a >> frac
    i = np.minimum(uh, 254)
    ua, ub = SIGMOID_TABLE[i], SIGMOID_TABLE[i + 1]
    interp = (ua << frac) + (a & ((1 << frac) - 1)) * (ub - ua)
    if p.tanh:
        r = np.where(uh >= 255, 0xFFFF << 8, interp)
        r = np.where(v >= 0, r - (1 << 23) + (1 << 7), -r + (1 << 23) + (1 << 7) - 1)
        return (r >> 8).astype(np.int16)
    r = np.where(uh >= 255, 0x7FFF << 10, interp)
    r = np.where(v >= 0, r + (1 << 9), (1 << 25) - r + (1 << 9) - 1)
    return (r >> 10).astype(np.int16)


def sigmoid16_float(x: np.ndarray, in_s: float, tanh: bool) -> np.ndarray:
    """The real function in output codes (scale 1/32768), for accuracy bounds."""
    v = np.asarray(x, np.float64) * float(_f32(in_s))
    return (np.tanh(v) if tanh else 1.0 / (1.0 + np.exp(-v))) * 32768.0


# ---- softmax ---------------------------------------------------------------------------

def gen_lut16(fn: Callable[[float], float], in_min: float, in_max: float) -> np.ndarray:
    """LiteRT's gen_lut<double, int16_t, int16_t> with output range [-1, 1]: 512 interpolation
    steps + 1, in double, each entry biased by half the midpoint interpolation error."""
    step = (in_max - in_min) / 512
    half, inv = step / 2, 65536.0 / 2.0

    def rnd(v: float) -> float:
        return float(intmath.round_half_away(np.float64(v)))

    table = np.empty(513, np.float64)
    for i in range(512):
        val, mid, nxt = fn(in_min + i * step), fn(in_min + i * step + half), fn(in_min + (i + 1) * step)
        sample = rnd(val * inv)
        bias = rnd((rnd((nxt * inv + sample) / 2) - rnd(mid * inv)) / 2)
        table[i] = sample - bias
    table[512] = rnd(fn(in_max) * inv)
    return np.clip(table, -32768, 32767).astype(np.int16)


@functools.cache
def exp_lut() -> np.ndarray:
    """exp on [-10, 0] (the tables are built on first use, not at import)."""
    return gen_lut16(math.exp, -10.0, 0.0)


@functools.cache
def recip_lut() -> np.ndarray:
    """1 / (1 + x) on [0, 1]."""
    return gen_lut16(lambda v: 1.0 / (1.0 + v), 0.0, 1.0)


def lut_lookup16(value: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """LiteRT's LUTLookup for int16: base at 256 + (value >> 7), 7-bit interpolation."""
    v = np.asarray(value, np.int64)
    idx = 256 + (v >> 7)
    base = lut[idx].astype(np.int64)
    slope = (lut[idx + 1].astype(np.int64) - base).astype(np.int16).astype(np.int64)
    return (base + ((slope * (v & 0x7F) + 64) >> 7)).astype(np.int16)


@dataclass(frozen=True)
class Softmax16Params:
    input_multiplier: int
    input_left_shift: int
    floor_tail: int = 1     # 1: a difference below the exp table's floor (-10) counts exp(-10), as
                            # LiteRT clamps it; 0: it counts 0 (npukit's own int16 graphs: a row of
                            # C such classes otherwise gains C / 32768 in its sum, docs/numerics.md)


def prepare_softmax16(in_s: float, in_zp: int, beta: float, out_s: float, out_zp: int,
                      floor_tail: bool = True) -> Softmax16Params:
    """SoftmaxPrepare for int16: QuantizeMultiplier(in_s * beta / (10 / 65535)); `floor_tail`
    False: differences below -10 count 0, not exp(-10) (Softmax16Params.floor_tail)."""
    check_scale(in_s, "input")
    if in_zp != 0:
        raise UnsupportedOpError(f"int16 SOFTMAX needs input zero point 0, got {in_zp}")
    if out_zp != 0 or abs(float(_f32(out_s)) - OUT_SCALE_16) > 0.001 * OUT_SCALE_16:
        raise UnsupportedOpError(f"int16 SOFTMAX needs output scale 1/32768 and zero point 0, got {out_s}, {out_zp}")
    m, sh = intmath.quantize_multiplier(float(_f32(in_s)) * float(_f32(beta)) / (10.0 / 65535.0))
    return Softmax16Params(m, sh, int(floor_tail))


def _exps16(x: np.ndarray, row_max: np.ndarray, p: Softmax16Params) -> np.ndarray:
    """The int16 exponentials of each code's difference from its row's maximum (exp table)."""
    diff = np.asarray(x, np.int64) - row_max
    scaled = intmath.multiply_by_quantized_multiplier(diff, p.input_multiplier, p.input_left_shift)
    e = lut_lookup16(np.clip(scaled + 32767, -32768, 32767), exp_lut()).astype(np.int64)
    return e if p.floor_tail else np.where(scaled + 32767 < -32768, 0, e)


def softmax16_sum(x: np.ndarray, row_max: np.ndarray, p: Softmax16Params, start: np.ndarray | int = 0) -> np.ndarray:
    """`start` plus the wrapping int32 sum of each row's exponentials ([rows, 1]); it continues
    exactly over the row's next chunk of columns."""
    return _sum16(_exps16(x, row_max, p), start)


def softmax16_out(x: np.ndarray, row_max: np.ndarray, total: np.ndarray, p: Softmax16Params) -> np.ndarray:
    """The int16 outputs of codes `x` from their rows' maximum and sum of exponentials."""
    return _out16(_exps16(x, row_max, p), total)


def _sum16(e: np.ndarray, start: np.ndarray | int) -> np.ndarray:
    return intmath.wrap_int32(np.asarray(start, np.int64) + e.sum(axis=-1, keepdims=True))


def _out16(e: np.ndarray, total: np.ndarray) -> np.ndarray:
    total = np.asarray(total, np.int64)
    hp1 = intmath.count_leading_zeros(total)
    shifted = ((total << (hp1 - 1)) + (1 << 13)) >> 14
    recip = lut_lookup16(np.clip(shifted - (1 << 15) - (1 << 16), -32768, 32767), recip_lut()).astype(np.int64)
    rs = 31 - hp1
    out = (e * recip + (np.int64(1) << (rs - 1))) >> rs
    return np.clip(out, 0, 32767).astype(np.int16)


def softmax16(x: np.ndarray, p: Softmax16Params) -> np.ndarray:
    """reference_ops::SoftmaxInt16 over the last axis (its exponentials computed once)."""
    x = np.asarray(x, np.int64)
    e = _exps16(x, x.max(axis=-1, keepdims=True), p)
    return _out16(e, _sum16(e, 0))


# ---- interpolated int16 tables (LUTPopulate<int16_t> / LUTLookup) ----------------------

LUT16_ENTRIES = 513
LUT16_INT8_FRAC = 7         # an int8 output's anchors carry 7 fraction bits


@dataclass(frozen=True)
class Lut16Params:
    """A function of an int16 input as LiteRT tabulates its int16 activations: 513 int16
    anchors over the input range, read by `lut_lookup16` (7-bit linear interpolation).
    out_bytes 2: int16 output, the anchors in output codes (LiteRT's scheme). out_bytes 1
    (npukit's int8 form): the anchors in 1/128 output steps without the zero point; the
    interpolated value is rounded to steps, out_zp added, clamped to [-128, 127]."""
    table: np.ndarray         # int16[513]
    out_bytes: int
    out_zp: int


def lut16_populate(fn: Callable[[np.ndarray], np.ndarray], in_s: float, in_zp: int, out_s: float, out_zp: int,
                   out_bytes: int) -> Lut16Params:
    """LiteRT's LUTPopulateInt16<float> for `fn` (float32 in, float32 out): 512 steps over the
    int16 input range, each anchor biased by half its midpoint interpolation error. For an int16
    output the scaling is LiteRT's 65536 / (output_max - output_min) (= 65536 / (65535 out_s));
    for an int8 output it is 128 / out_s."""
    f = np.float32
    s_in, s_out = f(in_s), f(out_s)
    lo, hi = s_in * f(-32768 - in_zp), s_in * f(32767 - in_zp)
    step = (hi - lo) / f(512)
    i = np.arange(513).astype(np.float32)
    at = (lo + i * step).astype(np.float32)               # input_min + i * step, in float32
    val, nxt = (np.asarray(fn(v), np.float32) for v in (at[:512], at[1:]))
    mid = np.asarray(fn((at[:512] + step / f(2)).astype(np.float32)), np.float32)
    if out_bytes == 2:
        inv = f(65536) / (s_out * f(32767 - out_zp) - s_out * f(-32768 - out_zp))
    else:
        inv = f(1 << LUT16_INT8_FRAC) / s_out

    def rnd(v: np.ndarray) -> np.ndarray:
        return intmath.round_half_away(np.asarray(v, np.float32).astype(np.float64)).astype(np.float32)

    sample = rnd(val * inv)
    bias = rnd((rnd((nxt * inv + sample) / f(2)) - rnd(mid * inv)) / f(2))
    last = rnd(np.asarray(fn(np.array([hi], np.float32)), np.float32) * inv)
    table = np.clip(np.concatenate([sample - bias, last]), -32768, 32767).astype(np.int16)
    return Lut16Params(table, int(out_bytes), 0 if out_bytes == 2 else int(out_zp))


def lut16(x: np.ndarray, p: Lut16Params) -> np.ndarray:
    """LiteRT's LUTLookup(int16_t) over the anchors (an int8 output: rounded to steps, plus
    the zero point, clamped)."""
    y = lut_lookup16(x, np.asarray(p.table, np.int16))
    if p.out_bytes == 2:
        return y
    half = 1 << (LUT16_INT8_FRAC - 1)
    return np.clip(((y.astype(np.int64) + half) >> LUT16_INT8_FRAC) + p.out_zp, -128, 127).astype(np.int8)
