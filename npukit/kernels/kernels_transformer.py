"""Integer kernels of transformer layers: batched matmul of two activations, layer norm,
GELU table and embedding gather.

- BATCH_MATMUL follows LiteRT's int8 reference kernel: exact int32 accumulation of
  (a - a_zp) * (b - b_zp), then MultiplyByQuantizedMultiplier with the multiplier of
  double(float32(a_s * b_s)) / double(out_s), plus the output zero point, clamped.
- GELU is LiteRT's int8 GELU: a 256-entry table populated in float32 (LUTPopulate). An int16
  input (LiteRT has no int16 GELU) uses LiteRT's int16 table scheme: 513 anchors, interpolated.
- LAYER_NORM has no int8 kernel in LiteRT. npukit uses an integer-only algorithm in the
  style of I-BERT's integer layer norm: with n channels and codes x,
  d = n * x - sum(x)  (the zero point cancels), sigma = isqrt(sum(d^2) / n + n^2 * eps_q),
  z = round(d * 2^F / sigma)  (the normalised value in Q.F fixed point),
  out = MultiplyByQuantizedMultiplier(z * gamma_q + beta_q, M, shift) + out_zp, clamped;
  gamma_q is int16 (symmetric per tensor), beta_q int32 in units of gamma's scale * 2^-F.
  Its error against float layer norm is within one output step plus gamma's rounding
  (tests/transformer/test_kernels_transformer.py states the bound).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import IndexRangeError, ModelError
from . import intmath
from .kernels_vpu16 import Lut16Params, lut16, lut16_populate
from .kernels_vpu_act import _f32, _lut_populate
from .kernels_vpu_unary import erf

LN_FRAC_BITS = 10           # F: fixed-point bits of the normalised value


@dataclass(frozen=True)
class MatMulParams:
    a_zp: int
    b_zp: int
    output_zp: int
    multiplier: int
    shift: int
    act_min: int
    act_max: int


def prepare_batch_matmul(a_s: float, a_zp: int, b_s: float, b_zp: int, out_s: float, out_zp: int,
                         dtype=np.int8) -> MatMulParams:
    """BATCH_MATMUL Prepare (GetQuantizedConvolutionMultipler, then QuantizeMultiplier)."""
    if min(a_s, b_s, out_s) <= 0:
        raise ModelError(f"matmul scales must be positive: {a_s}, {b_s}, {out_s}")
    product = float(_f32(a_s) * _f32(b_s))           # float32 product, as TFLite
    mult, shift = intmath.quantize_multiplier(product / float(_f32(out_s)))
    info = np.iinfo(dtype)
    return MatMulParams(int(a_zp), int(b_zp), int(out_zp), mult, shift, int(info.min), int(info.max))


def matmul_acc(a: np.ndarray, b: np.ndarray, a_zp: int, b_zp: int, transpose_b: bool) -> np.ndarray:
    """int64 accumulators of (a - a_zp) @ (b - b_zp) over the last axis of a; exact in float64
    while K * 255^2 < 2^53 (any realistic K)."""
    a, b = np.asarray(a), np.asarray(b)
    bf = b.astype(np.float64) - float(b_zp)
    if transpose_b:
        bf = np.swapaxes(bf, -1, -2)
    if a.shape[-1] != bf.shape[-2]:
        raise ModelError(f"matmul operands {a.shape} and {b.shape} (transpose_b={transpose_b}) do not fit")
    return np.matmul(a.astype(np.float64) - float(a_zp), bf).astype(np.int64)


def matmul_output(acc: np.ndarray, p: MatMulParams, dtype=np.int8) -> np.ndarray:
    y = intmath.multiply_by_quantized_multiplier(intmath.wrap_int32(acc), p.multiplier, p.shift)
    return np.clip(y + p.output_zp, p.act_min, p.act_max).astype(dtype)


def batch_matmul(a: np.ndarray, b: np.ndarray, p: MatMulParams, transpose_b: bool = False,
                 dtype=np.int8) -> np.ndarray:
    return matmul_output(matmul_acc(a, b, p.a_zp, p.b_zp, transpose_b), p, dtype)


# ---- GELU ------------------------------------------------------------------------------

def _gelu_f32(v: np.ndarray, approximate: bool) -> np.ndarray:
    v = v.astype(np.float32)
    if approximate:
        inner = _f32(math.sqrt(2.0 / math.pi)) * (v + _f32(0.044715) * v * v * v)
        t = np.tanh(inner.astype(np.float64)).astype(np.float32)
    else:
        t = np.array([math.erf(float(u)) for u in (v * _f32(math.sqrt(0.5)))], np.float32)
    return (_f32(0.5) * v * (_f32(1.0) + t)).astype(np.float32)


def gelu_table(in_s: float, in_zp: int, out_s: float, out_zp: int, approximate: str = "none") -> np.ndarray:
    """LiteRT's int8 GELU table (float32 transform, LUTPopulate rounding)."""
    if approximate not in ("none", "tanh"):
        raise ModelError(f"GELU approximation {approximate!r} (expected none or tanh)")
    return _lut_populate(lambda v: _gelu_f32(v, approximate == "tanh"), in_s, in_zp, out_s, out_zp)


def gelu_table_wide(in_s: float, in_zp: int, out_s: float, out_zp: int, approximate: str = "none") -> np.ndarray:
    """GELU of an int8 input with an int16 output: 256 int16 entries indexed by code + 128,
    each as LUTPopulate computes it (float32 transform, round half away), clamped to int16."""
    _check_gelu(in_s, out_s, approximate)
    codes = np.arange(-128, 128, dtype=np.int64) - int(in_zp)
    v = (_f32(in_s) * codes.astype(np.float32)).astype(np.float32)
    t = _gelu_f32(v, approximate == "tanh")
    q = intmath.round_half_away((t * (_f32(1.0) / _f32(out_s))).astype(np.float64))
    return np.clip(q.astype(np.float32).astype(np.float64) + out_zp, -32768, 32767).astype(np.int16)


def gelu_lut16(in_s: float, in_zp: int, out_s: float, out_zp: int, approximate: str = "none",
               out_bytes: int = 2) -> Lut16Params:
    """GELU of an int16 input (LiteRT has no int16 GELU): LiteRT's int16 table scheme
    (kernels_vpu16.lut16_populate, 513 anchors, linear interpolation), int16 or int8 out."""
    _check_gelu(in_s, out_s, approximate)
    return lut16_populate(lambda v: _gelu_f32(v, approximate == "tanh"), in_s, in_zp, out_s, out_zp, out_bytes)


def _check_gelu(in_s: float, out_s: float, approximate: str) -> None:
    if approximate not in ("none", "tanh"):
        raise ModelError(f"GELU approximation {approximate!r} (expected none or tanh)")
    if min(in_s, out_s) <= 0:
        raise ModelError(f"GELU scales must be positive: {in_s}, {out_s}")


def gelu_float(x: np.ndarray, approximate: str = "none") -> np.ndarray:
    x = np.asarray(x, np.float64)
    if approximate == "tanh":
        return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
    return 0.5 * x * (1 + erf(x / math.sqrt(2)))


# ---- layer norm ------------------------------------------------------------------------

@dataclass(frozen=True)
class LayerNormParams:
    n: int                   # channels normalised over (the last axis)
    eps_q: int               # n^2 * epsilon in input code units squared (rounded)
    gamma: np.ndarray        # int16 [n]
    beta: np.ndarray         # int32 [n]
    multiplier: int
    shift: int
    output_zp: int
    act_min: int
    act_max: int


def prepare_layer_norm(in_s: float, gamma: np.ndarray, beta: np.ndarray, epsilon: float,
                       out_s: float, out_zp: int, dtype=np.int8) -> LayerNormParams:
    gamma, beta = np.asarray(gamma, np.float64).ravel(), np.asarray(beta, np.float64).ravel()
    n = gamma.size
    if beta.size != n or n == 0:
        raise ModelError(f"layer norm gamma ({gamma.size}) and beta ({beta.size}) must match")
    g_max, b_max = max(float(np.max(np.abs(gamma))), 1e-12), float(np.max(np.abs(beta)))
    z_max = math.sqrt(n) * (1 << LN_FRAC_BITS) + 1        # |z| <= sqrt(n) * 2^F
    qmax = 32767
    while qmax > 1 and z_max * qmax + b_max * qmax * (1 << LN_FRAC_BITS) / g_max > intmath.INT32_MAX:
        qmax //= 2                                        # keep the accumulator inside int32
    g_scale = g_max / qmax
    gq = np.clip(np.round(gamma / g_scale), -qmax, qmax).astype(np.int16)
    unit = g_scale / (1 << LN_FRAC_BITS)                  # real value of one accumulator step
    bq = np.clip(np.round(beta / unit), intmath.INT32_MIN, intmath.INT32_MAX).astype(np.int32)
    mult, shift = intmath.quantize_multiplier(unit / float(_f32(out_s)))
    eps_q = int(round(n * n * epsilon / (float(in_s) ** 2)))
    info = np.iinfo(dtype)
    return LayerNormParams(n, eps_q, gq, bq, mult, shift, int(out_zp), int(info.min), int(info.max))


def isqrt(v: np.ndarray) -> np.ndarray:
    """floor(sqrt(v)) of non-negative int64 values, exactly (float guess, integer correction)."""
    v = np.asarray(v, np.int64)
    r = np.floor(np.sqrt(v.astype(np.float64))).astype(np.int64)
    r = np.where(r * r > v, r - 1, r)
    return np.where((r + 1) * (r + 1) <= v, r + 1, r)


def layer_norm(x: np.ndarray, p: LayerNormParams, dtype=np.int8) -> np.ndarray:
    """Integer layer norm over the last axis (the algorithm in the module docstring)."""
    x = np.asarray(x, np.int64)
    if x.shape[-1] != p.n:
        raise ModelError(f"layer norm over {p.n} channels, input has {x.shape[-1]}")
    d = p.n * x - x.sum(axis=-1, keepdims=True)
    var = (d * d).sum(axis=-1, keepdims=True) // p.n + p.eps_q
    sigma = np.maximum(isqrt(var), 1)
    num = d << LN_FRAC_BITS
    z = (np.abs(num) + sigma // 2) // sigma * np.sign(num)           # round half away
    acc = intmath.wrap_int32(z * p.gamma.astype(np.int64) + p.beta.astype(np.int64))
    y = intmath.multiply_by_quantized_multiplier(acc, p.multiplier, p.shift) + p.output_zp
    return np.clip(y, p.act_min, p.act_max).astype(dtype)


def layer_norm_float(x: np.ndarray, gamma, beta, epsilon: float) -> np.ndarray:
    x = np.asarray(x, np.float64)
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    return (x - mu) / np.sqrt(var + epsilon) * np.asarray(gamma) + np.asarray(beta)


# ---- gather ----------------------------------------------------------------------------

def gather(table: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """Rows of `table` by integer indices; out-of-range indices are an input error."""
    idx = np.asarray(indices).astype(np.int64)
    if idx.size and (idx.min() < 0 or idx.max() >= table.shape[0]):
        raise IndexRangeError(f"gather index out of range [0, {table.shape[0]}): {int(idx.min())}..{int(idx.max())}")
    return np.take(table, idx, axis=0)




def run_transformer_node(node, ins: list[np.ndarray]) -> np.ndarray:
    """Integer execution of MATMUL / LAYER_NORM / GELU / GATHER (used by qexec); the output
    type (int8 or int16) follows the params' clamp range."""
    from ..ir.graph import Op
    p = node.params
    if node.op is Op.GATHER:
        return gather(ins[0], ins[1])
    if isinstance(p, Lut16Params):   # GELU of an int16 input: the interpolated table
        return lut16(ins[0], p)
    if node.op is Op.GELU:           # int8 input: 256 entries, int8 or int16
        return np.asarray(p.table)[np.asarray(ins[0], np.int64) + 128]
    dtype = np.int16 if p.act_max > 127 else np.int8
    if node.op is Op.MATMUL:
        return batch_matmul(ins[0], ins[1], p, node.attrs.transpose_b, dtype)
    return layer_norm(ins[0], p, dtype)
