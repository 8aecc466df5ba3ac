"""Compiled (numba) one-pass kernels for the simulator's requantisation, depthwise conv and input quantisation.

Each computes exactly what the numpy kernels compute, element by element in int64 scalars
(the compiler vectorises the channel loop):
- requantize: intmath.requantize of int32 accumulators into an int8 view;
- depthwise_requant: wrap_int32(kernels_mxu.conv2d_acc(depthwise)) then requantize, for one
  DwConv tile, without the int32 accumulators ever leaving the cache;
- quantize: kernels_vpu.quantize of a float input at the model boundary.

The requantisation is intmath.multiply_by_quantized_multiplier_fused's single shift,
(a*M + 2^30 + [e > 0](2^(30+e) - [a*M < 0] 2^31)) >> (31 + e), after the int32-wrapping
bias add and left shift. Its one exception, SRDHM(INT32_MIN, INT32_MIN) = INT32_MAX, is folded
in: a*M = 2^62 is replaced by INT32_MAX * 2^31, whose rounded high half is INT32_MAX. So every
int32 accumulator, bias and multiplier is covered; shifts must lie in [-31, 31] (ValueError
otherwise: the fused form is proven there, and quantize_multiplier stays within [-31, 30]).

With every multiplier >= 0 and every shift <= 0 (the usual parameters) the requantisation runs
branch-free on per-channel constants (_right_consts: rounding term, correction, total shift),
and the depthwise products are int16 (|(x - zp) * w| <= 255 * 128): `python
benchmarks/jit_kernels.py` measured requantisation 0.26-0.36 against 0.37-0.51 ns per element
and a 3x3 depthwise tile (multiplier 1) 0.75-0.97 against 0.94-1.08 ns per output.

Compiled with cache=True (on-disk, beside this file or in NUMBA_CACHE_DIR); the first call
of a new signature compiles it.
"""
from __future__ import annotations

import functools

import numba
import numpy as np

from ..kernels.kernels_vpu_eltwise import check_scale

INT32_MIN = -(1 << 31)
DEPTHWISE_PRODUCT = 255 * 128       # |(x - zp) * w| for int8 codes and an int8 zero point
# geometry vector of depthwise_requant, in this order
GEOMETRY = ("in_h", "in_w", "c", "mult", "kh", "kw", "stride_h", "stride_w", "dil_h", "dil_w",
            "pad_t", "pad_l", "out_h", "out_w", "zp", "out_zp", "act_min", "act_max")

_jit = numba.njit(cache=True, nogil=True)


@numba.njit(cache=True, nogil=True, inline="always")
def _requant1(acc, bias, mult, shift, out_zp, act_min, act_max):
    """intmath.requantize of one int32 accumulator (as an int64), before the int8 cast."""
    a = np.int64(np.int32(np.int64(acc) + np.int64(bias)))          # int32 wrap
    a = np.int64(np.int32(a << max(np.int64(shift), 0)))            # the left shift wraps in int32
    m = np.int64(mult)
    e = max(-np.int64(shift), 0)
    ab = a * m - (np.int64((a == INT32_MIN) & (m == INT32_MIN)) << 31)   # SRDHM saturation
    t = ab + (1 << 30)
    if e > 0:
        t += (np.int64(1) << (30 + e)) - (np.int64(ab < 0) << 31)
    y = (t >> (31 + e)) + out_zp
    return min(max(y, act_min), act_max)


@numba.njit(cache=True, nogil=True, inline="always")
def _requant1_right(acc, bias, mult, shift, out_zp, act_min, act_max):
    """_requant1 for shift <= 0 and mult >= 0 (the usual parameters; 30% fewer operations):
    no left shift, no saturation, and a*M < 0 only where a < 0."""
    a = np.int64(np.int32(np.int64(acc) + np.int64(bias)))
    e = -np.int64(shift)
    t = a * np.int64(mult) + (1 << 30)
    if e > 0:
        t += (np.int64(1) << (30 + e)) - (np.int64(a < 0) << 31)
    y = (t >> (31 + e)) + out_zp
    return min(max(y, act_min), act_max)


@_jit
def _right_only(mult, shift) -> bool:
    """Whether every shift is <= 0 and every multiplier >= 0; ValueError for a shift outside
    [-31, 31]."""
    right = True
    for j in range(shift.shape[0]):
        if shift[j] < -31 or shift[j] > 31:
            raise ValueError("requantize: shift outside [-31, 31]")
        right &= shift[j] <= 0 and mult[j] >= 0
    return right


@_jit
def _requant_rows(acc, bias, mult, shift, zp, lo, hi, right, out):
    """out[i, j] = int8(requantised acc[i, j]) over acc's rows; shapes checked by the caller."""
    n, k = acc.shape
    if right:
        for i in range(n):
            row, dst = acc[i], out[i]
            for j in range(k):
                dst[j] = np.int8(_requant1_right(row[j], bias[j], mult[j], shift[j], zp, lo, hi))
    else:
        for i in range(n):
            row, dst = acc[i], out[i]
            for j in range(k):
                dst[j] = np.int8(_requant1(row[j], bias[j], mult[j], shift[j], zp, lo, hi))


@_jit
def _right_consts(shift):
    """Per-channel constants of _requant1_right, as int64 rows: the rounding term
    2^30 + [e > 0] 2^(30+e), the correction [e > 0] 2^31 taken where a*M < 0, and the total
    shift 31 + e (e = -shift)."""
    k = shift.shape[0]
    cst = np.empty((3, k), np.int64)
    for j in range(k):
        e = -np.int64(shift[j])
        cst[0, j] = (1 << 30) + ((np.int64(1) << (30 + e)) if e > 0 else 0)
        cst[1, j] = (np.int64(1) << 31) if e > 0 else 0
        cst[2, j] = 31 + e
    return cst


@numba.njit(cache=True, nogil=True, inline="always")
def _requant1_pre(acc, bias, mult, r, d, s, out_zp, act_min, act_max):
    """_requant1_right on _right_consts' r, d, s, branch-free: a*M < 0 stands for a < 0 (the
    same except for M = 0, where both round to 0), so the correction is ((a*M) >> 63) & d."""
    p = np.int64(np.int32(np.int64(acc) + np.int64(bias))) * np.int64(mult)
    y = ((p + r - ((p >> 63) & d)) >> s) + out_zp
    return min(max(y, act_min), act_max)


@_jit
def _requant_rows_right(acc, bias, mult, cst, zp, lo, hi, out):
    """_requant_rows for right-only parameters, on _right_consts(shift) (the compiler
    vectorises the channel loop: 64-bit multiplies and variable shifts, 8 lanes)."""
    n, k = acc.shape
    r, d, s = cst[0], cst[1], cst[2]
    for i in range(n):
        row, dst = acc[i], out[i]
        for j in range(k):
            dst[j] = np.int8(_requant1_pre(row[j], bias[j], mult[j], r[j], d[j], s[j], zp, lo, hi))


@_jit
def requantize(acc, bias, mult, shift, out_zp, act_min, act_max, out):
    """out[i, j] = intmath.requantize(acc, bias, mult, shift, out_zp, act_min, act_max)[i, j]:
    acc int32 [n, k], bias / mult / shift int32 [k], out int8 [n, k] (rows may be strided),
    written in place."""
    n, k = acc.shape
    if bias.shape[0] != k or mult.shape[0] != k or shift.shape[0] != k or out.shape[0] != n or out.shape[1] != k:
        raise ValueError("requantize: shapes of acc, bias, mult, shift and out differ")
    zp, lo, hi = np.int64(out_zp), np.int64(act_min), np.int64(act_max)
    if _right_only(mult, shift):
        _requant_rows_right(acc, bias, mult, _right_consts(shift), zp, lo, hi, out)
    else:
        _requant_rows(acc, bias, mult, shift, zp, lo, hi, False, out)


@_jit
def depthwise_requant(x, w, bias, mult, shift, geometry, out):
    """One DwConv tile: x int8 [in_h, in_w, c], w int8 [kh, kw, c*mult], bias / mult / shift
    int32 [c*mult], geometry int64 [18] (GEOMETRY's order), out int8 [out_h*out_w, c*mult].
    acc[oy, ox, ch*mult + m] = sum over taps of (x[iy, ix, ch] - zp) * w[ky, kx, ch*mult + m],
    iy = oy*stride_h + ky*dil_h - pad_t, ix likewise (taps outside the tile add 0), in int32,
    requantised into out one output row at a time."""
    if geometry.shape[0] != 18:
        raise ValueError("depthwise_requant: geometry must hold 18 values")
    ih, iw, c, cm, kh, kw = geometry[0], geometry[1], geometry[2], geometry[3], geometry[4], geometry[5]
    sh, sw, dh, dw, pt, pl = geometry[6], geometry[7], geometry[8], geometry[9], geometry[10], geometry[11]
    oh, ow, zp, out_zp, lo, hi = geometry[12], geometry[13], geometry[14], geometry[15], geometry[16], geometry[17]
    k = c * cm
    if min(ih, iw, c, cm, kh, kw, sh, sw, dh, dw, oh, ow) < 1:
        raise ValueError("depthwise_requant: sizes, strides and dilations must be positive")
    if (x.shape[0] != ih or x.shape[1] != iw or x.shape[2] != c or w.shape[0] != kh or w.shape[1] != kw
            or w.shape[2] != k or bias.shape[0] != k or mult.shape[0] != k or shift.shape[0] != k
            or out.shape[0] != oh * ow or out.shape[1] != k):
        raise ValueError("depthwise_requant: array shapes differ from the geometry")
    if zp < -128 or zp > 127:
        raise ValueError("depthwise_requant: input zero point outside int8")
    if kh * kw * DEPTHWISE_PRODUCT >= 1 << 31:
        raise ValueError("depthwise_requant: kernel too large for int32 accumulators")
    right = _right_only(mult, shift)
    cst = _right_consts(shift)
    r, d, s = cst[0], cst[1], cst[2]
    wi = np.empty((kh, kw, k), np.int32)
    wh = np.empty((kh, kw, k), np.int16)
    for ky in range(kh):
        for kx in range(kw):
            for j in range(k):
                wi[ky, kx, j] = w[ky, kx, j]
                wh[ky, kx, j] = w[ky, kx, j]
    acc = np.empty((ow, k), np.int32)
    z, z16 = np.int32(zp), np.int16(zp)
    for oy in range(oh):
        acc[:] = 0
        for ky in range(kh):
            iy = oy * sh + ky * dh - pt
            if iy < 0 or iy >= ih:
                continue
            xrow = x[iy]
            for kx in range(kw):
                wr, w16 = wi[ky, kx], wh[ky, kx]
                for ox in range(ow):
                    ix = ox * sw + kx * dw - pl
                    if ix < 0 or ix >= iw:      # (a precomputed ox range runs slower)
                        continue
                    xr, ar = xrow[ix], acc[ox]
                    if cm == 1:
                        for j in range(k):      # |(x - zp) * w| <= DEPTHWISE_PRODUCT: an int16 product
                            ar[j] += np.int32(np.int16(np.int16(np.int16(xr[j]) - z16) * w16[j]))
                    else:
                        for ch in range(c):
                            xv = np.int32(xr[ch]) - z
                            for q in range(ch * cm, ch * cm + cm):
                                ar[q] += xv * wr[q]
        # the requantisation inlined: a call per row costs 10%
        if right:
            for ox in range(ow):
                dst, ar = out[oy * ow + ox], acc[ox]
                for j in range(k):
                    dst[j] = np.int8(_requant1_pre(ar[j], bias[j], mult[j], r[j], d[j], s[j], out_zp, lo, hi))
        else:
            for ox in range(ow):
                dst, ar = out[oy * ow + ox], acc[ox]
                for j in range(k):
                    dst[j] = np.int8(_requant1(ar[j], bias[j], mult[j], shift[j], out_zp, lo, hi))


@_jit
def _quantize_flat(x, scale, zp, lo, hi, out):
    for i in range(x.shape[0]):
        q = np.float64(np.float32(x[i]) / scale)          # the float32 division, then exact in double
        t = np.trunc(q)
        r = t + np.sign(q) * (abs(q - t) >= 0.5)          # half away from zero
        v = np.int64(INT32_MIN)                           # out of int32 or NaN: as cvttss2si gives
        if r >= -2.0 ** 31 and r < 2.0 ** 31:
            v = np.int64(r)
        v = np.int64(np.int32(v + zp))                    # the zero point added in int32
        out[i] = min(max(v, lo), hi)


def quantize(x: np.ndarray, scale: float, zp: int, dtype=np.int8) -> np.ndarray:
    """kernels_vpu.quantize (reference_ops::AffineQuantize) in one compiled pass: float32(x) /
    float32(scale) rounded half away from zero, INT32_MIN outside int32 (and for NaN), plus
    the zero point in int32, saturated to `dtype`."""
    check_scale(scale, "output")
    info = np.iinfo(dtype)
    x = np.ascontiguousarray(x, np.float32)
    out = np.empty(x.shape, dtype)
    _quantize_flat(x.reshape(-1), np.float32(scale), np.int64(zp), np.int64(info.min), np.int64(info.max),
                   out.reshape(-1))
    return out


def geometry(in_hw, c: int, mult: int, kernel, stride, dilation, pads_tl, out_hw, zp: int,
             out_zp: int, act_min: int, act_max: int) -> np.ndarray:
    """The int64 geometry vector of depthwise_requant."""
    return np.array([*in_hw, c, mult, *kernel, *stride, *dilation, *pads_tl, *out_hw, zp, out_zp,
                     act_min, act_max], np.int64)


def bind(kernel, *args):
    """kernel(*args) as a zero-argument callable on fixed arguments: the compiled entry point
    for their types (compiled now if new), called without numba's per-call type dispatch
    (about 0.3 instead of 0.45 us a call)."""
    sig = tuple(kernel.typeof_pyval(a) for a in args)
    return functools.partial(kernel.compile(sig), *args)
