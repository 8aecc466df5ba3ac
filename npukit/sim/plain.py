"""The plain definition of every instruction: what it does to machine state, written once.

Each binder checks the instruction's fields, takes its memory views once (bounds-checked by
Machine.view / Machine.strided, so a corrupt binary gives a BinaryError) and returns the action
that applies the shared integer kernels (npukit.kernels) to them: no prepared plans, tables,
micro-ops or compiled code (the VPU's int16 forms: sim/semantics16.py). sim/semantics.py
runs faster paths where they apply and falls back to these; tests/sim/test_fast_paths.py
checks every fast path against them.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from ..errors import BinaryError
from ..ir.graph import ConvAttrs, PoolAttrs
from ..isa import instructions as I
from ..isa import wcodec
from ..isa.immediates import params_from_ints
from ..kernels import (intmath, kernels_mxu, kernels_transformer, kernels_vpu, kernels_vpu16, kernels_vpu_compare,
                       kernels_wide)
from . import semantics16, semantics_gru, semantics_lstm
from .machine import Machine
from .plan import Action
from .tiles import spans

# kind -> (parameter record, kernel f(a, b, params))
ELTWISE_KERNELS: dict[I.Eltwise, tuple[type, Callable[..., np.ndarray]]] = {
                   I.Eltwise.ADD: (kernels_vpu.AddParams, kernels_vpu.add),
                   I.Eltwise.SUB: (kernels_vpu.AddParams, kernels_vpu.add),
                   I.Eltwise.MUL: (kernels_vpu.MulParams, kernels_vpu.mul),
                   I.Eltwise.PRELU: (kernels_vpu.PreluParams, kernels_vpu.prelu),
                   I.Eltwise.COMPARE: (kernels_vpu_compare.ComparisonParams, kernels_vpu_compare.compare),
                   I.Eltwise.LOGICAL: (kernels_vpu_compare.LogicalParams, kernels_vpu_compare.logical)}
TILE_LIMIT = 1 << 30        # bytes of a conv tile's padded window and im2col


def check_geometry(name: str, *sizes: int) -> None:
    """Sizes, strides, dilations and channel offsets must be positive (else BinaryError)."""
    if min(sizes) < 1:
        raise BinaryError(f"{name}: a size, stride, dilation or channel range is not positive")


def tile_pads(in_len: int, dil: int, pad_lo: int, out_len: int, stride: int, k: int, kdil: int):
    """Explicit (lo, hi) padding of a tile so that exactly `out_len` outputs are produced."""
    span = (out_len - 1) * stride + (k - 1) * kdil + 1
    hi = span - pad_lo - ((in_len - 1) * dil + 1)
    return pad_lo, max(hi, 0)  # extra rows beyond the window are sliced off


def check_dma(m: Machine, d: I.Dma) -> None:
    moved = math.prod(d.shape) * d.elem
    if moved > m.space(d.dst_space).size:       # only a repeated (zero-stride) write could: a corrupt binary
        raise BinaryError(f"DMA: moves {moved} bytes, more than space {d.dst_space} holds")
    if d.codec and d.codec != wcodec.RICE:
        raise BinaryError(f"DMA: unknown codec {d.codec}")
    if d.codec and (any(d.src_strides) or d.packed < 0):
        raise BinaryError("DMA: a compressed source is one contiguous stream (strides 0, length >= 0)")


def dma(m: Machine, d: I.Dma) -> Action:
    check_dma(m, d)
    dst = m.strided(d.dst_space, d.dst, d.shape, d.dst_strides, d.elem)
    if not d.codec:
        src = m.strided(d.src_space, d.src, d.shape, d.src_strides, d.elem)
        return lambda: np.copyto(dst, src.copy())      # read everything, then write
    stream = m.view(d.src_space, d.src, (d.packed,), np.uint8)
    return lambda: np.copyto(dst, wcodec.decode(stream, dst.size).reshape(dst.shape))


def fill(m: Machine, f: I.Fill) -> Action:
    dst = m.view(f.space, f.addr, (f.n,), np.uint8)
    return lambda: dst.fill(f.value)


def check_conv(c: I.Conv) -> None:
    if c.in_bytes not in (1, 2) or (c.in_bytes == 2 and c.zp != 0):
        raise BinaryError(f"CONV: input of {c.in_bytes} bytes with zero point {c.zp} (int8, or int16 with 0)")
    check_geometry("CONV", c.in_h, c.in_w, c.c_len, c.k, c.out_h, c.out_w, *c.kernel, *c.stride, *c.dilation,
                   *c.in_dil, c.c_off + 1, c.c_stride - c.c_off - c.c_len + 1)
    span_h, span_w = spans((c.out_h, c.out_w), c.kernel, c.stride, c.dilation)
    operands = span_h * span_w * c.c_len + c.out_h * c.out_w * c.kernel[0] * c.kernel[1] * c.c_len
    if operands > TILE_LIMIT:
        raise BinaryError(f"CONV: its padded window and im2col take {operands} bytes, beyond the simulator's "
                          f"{TILE_LIMIT} (a corrupt stride, dilation or size)")


def conv(m: Machine, c: I.Conv) -> Action:
    check_conv(c)
    kh, kw = c.kernel
    w = m.view(I.WBUF, c.wgt, (c.k, kh, kw, c.c_len))
    out = m.view(I.ACC, c.dst, (c.out_h * c.out_w, c.k), np.int64 if c.in_bytes == 2 else np.int32)
    xs = m.view(I.ABUF, c.src, (1, c.in_h, c.in_w, c.c_stride), np.int16 if c.in_bytes == 2 else np.int8)
    x = xs[..., c.c_off:c.c_off + c.c_len]
    pt, pb = tile_pads(c.in_h, c.in_dil[0], c.pad_t, c.out_h, c.stride[0], kh, c.dilation[0])
    pl, pr = tile_pads(c.in_w, c.in_dil[1], c.pad_l, c.out_w, c.stride[1], kw, c.dilation[1])
    attrs = ConvAttrs(stride=c.stride, dilation=c.dilation, pads=(pt, pl, pb, pr), input_dilation=c.in_dil)

    def run() -> None:
        if c.in_bytes == 2:     # two int8 passes, hi and lo byte (kernels_wide.split_bytes), int64 sums
            acc = kernels_wide.conv2d_acc_16x8(x, w, attrs)[0, :c.out_h, :c.out_w].reshape(-1, c.k)
            out[...] = out + acc if c.accumulate else acc
            return
        acc = kernels_mxu.conv2d_acc(x, w, attrs, c.zp)[0, :c.out_h, :c.out_w].reshape(-1, c.k)
        out[...] = intmath.wrap_int32(out.astype(np.int64) + acc) if c.accumulate else intmath.wrap_int32(acc)
    return run


def check_dwconv(d: I.DwConv) -> None:
    check_geometry("DWCONV", d.in_h, d.in_w, d.c, d.mult, d.out_h, d.out_w, *d.kernel, *d.stride, *d.dilation)
    if d.in_bytes not in (1, 2) or d.out_bytes not in (1, 2) or d.mode not in (0, 2) or (d.in_bytes == 2 and d.zp):
        raise BinaryError(f"DWCONV: input of {d.in_bytes} bytes with zero point {d.zp}, output of {d.out_bytes} "
                          f"bytes, mode {d.mode} (int8 or int16 with zero point 0; modes 0 and 2)")


def dwconv(m: Machine, d: I.DwConv) -> Action:
    """int8 or int16 input (two byte passes as CONV's), int8 or int16 output; mode 2 is the 16x8
    output stage (int64 params) on the engine's int64 sums."""
    check_dwconv(d)
    kh, kw = d.kernel
    k = d.c * d.mult
    x = m.view(I.ABUF, d.src, (1, d.in_h, d.in_w, d.c), np.int16 if d.in_bytes == 2 else np.int8)
    w = m.view(I.WBUF, d.wgt, (1, kh, kw, k))
    bias, mult, shift = m.view(I.WBUF, d.params, (3, k), np.int64 if d.mode == 2 else np.int32)
    out_t = np.int16 if d.out_bytes == 2 else np.int8
    dst = m.view(I.ABUF, d.dst, (d.out_h * d.out_w, k), out_t)
    lo, hi = max(d.act_min, np.iinfo(out_t).min), min(d.act_max, np.iinfo(out_t).max)
    pt, pb = tile_pads(d.in_h, 1, d.pad_t, d.out_h, d.stride[0], kh, d.dilation[0])
    pl, pr = tile_pads(d.in_w, 1, d.pad_l, d.out_w, d.stride[1], kw, d.dilation[1])
    attrs = ConvAttrs(stride=d.stride, dilation=d.dilation, pads=(pt, pl, pb, pr), groups=d.c, depthwise=True)

    def run() -> None:
        if d.in_bytes == 2:
            acc = kernels_wide.conv2d_acc_16x8(x, w, attrs)
        else:
            acc = kernels_mxu.conv2d_acc(x, w, attrs, d.zp)
        acc = acc[0, :d.out_h, :d.out_w].reshape(-1, k)      # the engine's sums: int64 in mode 2
        if d.mode == 2:
            p = kernels_mxu.ConvParams(0, d.out_zp, mult, shift, lo, hi)
            dst[...] = kernels_wide.conv_output_16x8(acc, bias, p)
        else:
            dst[...] = intmath.requantize(intmath.wrap_int32(acc), bias, mult, shift, d.out_zp, lo, hi, out_t)
    return run


def check_requant(r: I.Requant) -> None:
    check_geometry("REQUANT", r.n_pix, r.k)
    if r.mode not in (0, 1, 2, 3):
        raise BinaryError(f"REQUANT: unknown mode {r.mode}")


def requant(m: Machine, r: I.Requant) -> Action:
    """Modes 0 and 1: int32 sums to int8; modes 2 (16x8 conv) and 3 (16x8 fully connected):
    int64 sums to int16 (dst_pix_stride and dst_c_off in elements)."""
    check_requant(r)
    acc = m.view(I.ACC, r.src, (r.n_pix, r.k), np.int64 if r.mode in (2, 3) else np.int32)
    if r.mode in (2, 3):
        bias, mult, shift = m.view(I.WBUF, r.params, (3, r.k), np.int64)
        wide = m.strided(I.ABUF, r.dst + 2 * r.dst_c_off, (r.n_pix, r.k), (2 * r.dst_pix_stride, 2), 2)
        if r.mode == 2:     # int64 bias and multiplier form
            p = kernels_mxu.ConvParams(0, r.out_zp, mult, shift, r.act_min, r.act_max)
            out = lambda: kernels_wide.conv_output_16x8(acc, bias, p)        # noqa: E731
        else:               # mode 1's exact double scale (mantissa, exponent)
            p = kernels_mxu.ConvParams(0, r.out_zp, _NO_Q31, _NO_Q31, r.act_min, r.act_max, mult, shift)
            out = lambda: kernels_mxu.fc_output_wide(acc, bias, p)           # noqa: E731
        return lambda: wide.__setitem__(..., out().view(np.uint8).reshape(r.n_pix, r.k, 2))
    dst = out_rows(m, r)
    if r.mode == 1:
        bias, mantissa, exponent = m.view(I.WBUF, r.params, (3, r.k), np.int64)
        p = kernels_mxu.ConvParams(0, r.out_zp, _NO_Q31, _NO_Q31, r.act_min, r.act_max, mantissa, exponent)
        return lambda: dst.__setitem__(..., kernels_mxu.fc_output(acc, bias, p))
    bias, mult, shift = m.view(I.WBUF, r.params, (3, r.k), np.int32)
    return lambda: dst.__setitem__(..., intmath.requantize(acc, bias, mult, shift, r.out_zp, r.act_min, r.act_max))


def out_rows(m: Machine, r: I.Requant) -> np.ndarray:
    """The int8 [n_pix, k] rows a REQUANT of mode 0 or 1 writes."""
    return m.strided(I.ABUF, r.dst + r.dst_c_off, (r.n_pix, r.k), (r.dst_pix_stride, 1), 1)[..., 0].view(np.int8)


_NO_Q31 = np.zeros(0, np.int32)        # the Q31 multiplier and shift, unused beside an exact scale


def eltwise_operands(m: Machine, e: I.Elementwise) -> tuple[np.ndarray, np.ndarray, np.ndarray, I.Eltwise]:
    a = m.view(e.a_space, e.a, (e.rows, e.cols))
    b = m.strided(e.b_space, e.b, (e.rows, e.cols), e.b_strides, 1)[..., 0].view(np.int8)
    dst = m.view(I.ABUF, e.dst, (e.rows, e.cols))
    check_geometry("ELEMENTWISE", e.rows, e.cols)
    if e.kind not in {k.value for k in I.Eltwise}:
        raise BinaryError(f"ELEMENTWISE: unknown kind {e.kind}")
    return a, b, dst, I.Eltwise(e.kind)


def elementwise(m: Machine, e: I.Elementwise) -> Action:
    if semantics16.elem_dtype("ELEMENTWISE", e.elem) is np.int16:
        return semantics16.elementwise(m, e)
    a, b, dst, kind = eltwise_operands(m, e)
    if kind in (I.Eltwise.MAX, I.Eltwise.MIN):
        fn = np.maximum if kind is I.Eltwise.MAX else np.minimum
        return lambda: np.copyto(dst, fn(a, b))
    cls, kernel = ELTWISE_KERNELS[kind]
    p = params_from_ints(cls, e.qparams)
    return lambda: np.copyto(dst, kernel(a, b, p))


def lut(m: Machine, t: I.Lut) -> Action:
    table = m.view(I.WBUF, t.table, (I.LUT_BYTES,))
    x = m.view(I.ABUF, t.src, (t.n,))
    dst = m.view(I.ABUF, t.dst, (t.n,))
    return lambda: dst.__setitem__(..., kernels_vpu.lut(x, table))


def pool(m: Machine, p: I.Pool) -> Action:
    dt = semantics16.elem_dtype("POOL", p.elem)
    x = m.view(I.ABUF, p.src, (1, p.in_h, p.in_w, p.c), dt)
    dst = m.view(I.ABUF, p.dst, (1, p.out_h, p.out_w, p.c), dt)
    attrs = PoolAttrs(kernel=p.kernel, stride=p.stride, pads=(p.pad_t, p.pad_l, p.pad_b, p.pad_r))
    fn = kernels_vpu.max_pool if p.kind == 0 else kernels_vpu.avg_pool
    return lambda: dst.__setitem__(..., fn(x, attrs, p.act_min, p.act_max)[:, :p.out_h, :p.out_w])


def mean(m: Machine, r: I.Mean) -> Action:
    dt = semantics16.elem_dtype("MEAN", r.elem)
    x = m.view(I.ABUF, r.src, (1, r.n, 1, r.c), dt)
    dst = m.view(I.ABUF, r.dst, (1, 1, 1, r.c), dt)
    if r.kind in (1, 2):
        check_geometry("MEAN", r.n, r.c)
        return lambda: dst.__setitem__(..., kernels_vpu.reduce_extreme(x, (1, 2), r.kind == 1))
    if r.kind == 3 and r.elem == 1:
        s = params_from_ints(kernels_vpu.SumParams, r.qparams)
        return lambda: dst.__setitem__(..., kernels_vpu.reduce_sum(x, (1, 2), s))
    if r.kind != 0:
        raise BinaryError(f"MEAN: kind {r.kind} has no int16 form" if r.elem == 2 and r.kind == 3
                          else f"MEAN: unknown kind {r.kind}")
    p = params_from_ints(kernels_vpu.MeanParams, r.qparams)
    return lambda: dst.__setitem__(..., kernels_vpu.mean(x, (1, 2), p, dtype=dt))


def arg_max(m: Machine, r: I.ArgMax) -> Action:
    if r.elem not in (4, 8) or r.last not in (0, 1) or r.smallest not in (0, 1):
        raise BinaryError(f"ARGMAX: index of {r.elem} bytes, last = {r.last}, smallest = {r.smallest} "
                          "(4 or 8 bytes; 0 or 1)")
    check_geometry("ARGMAX", r.n, r.c)
    x = m.view(I.ABUF, r.src, (r.n, r.c))
    dtype = np.int32 if r.elem == 4 else np.int64
    dst = m.view(I.ABUF, r.dst, (r.c,), dtype)
    return lambda: dst.__setitem__(..., kernels_vpu.arg_max(x, 0, bool(r.last), dtype=dtype, smallest=bool(r.smallest)))


def select(m: Machine, s: I.Select) -> Action:
    cond, a, b, dst = (m.view(I.ABUF, addr, (s.n,)) for addr in (s.cond, s.a, s.b, s.dst))
    return lambda: np.copyto(dst, np.where(cond != 0, a, b))


def matmul(m: Machine, t: I.MatMul) -> Action:
    a = m.view(I.ABUF, t.src, (t.m, t.k_len))
    b = m.view(I.WBUF, t.wgt, (t.n, t.k_len))
    out = m.view(I.ACC, t.dst, (t.m, t.n), np.int32)

    def run() -> None:
        acc = kernels_transformer.matmul_acc(a, b, t.a_zp, t.b_zp, True)
        out[...] = intmath.wrap_int32(out.astype(np.int64) + acc) if t.accumulate else intmath.wrap_int32(acc)
    return run


# SOFTMAX kind -> (parameter record, sum of exponentials, outputs, element type)
SOFTMAX_CHUNK_KERNELS: dict[int, tuple[type, Callable[..., np.ndarray], Callable[..., np.ndarray], type]] = {
    0: (kernels_vpu.SoftmaxParams, kernels_vpu.softmax_sum, kernels_vpu.softmax_out, np.int8),
    1: (kernels_vpu.SoftmaxTableParams, kernels_vpu.softmax_sum, kernels_vpu.softmax_out, np.int8),
    2: (kernels_vpu16.Softmax16Params, kernels_vpu16.softmax16_sum, kernels_vpu16.softmax16_out, np.int16)}


def softmax_chunk(m: Machine, s: I.Softmax) -> Action:
    """One pass over a chunk of rows too long for ABUF (I.Softmax's phases). The row state holds
    the int32 maximum and sum (float32 for kind 1); the maximum used is the state's, at least the
    chunk's own and at most the largest code, so any state gives a defined result."""
    if s.kind not in SOFTMAX_CHUNK_KERNELS or not I.SOFTMAX_MAX_FIRST <= s.phase <= I.SOFTMAX_OUT:
        raise BinaryError(f"SOFTMAX: unknown kind {s.kind} or phase {s.phase}")
    check_geometry("SOFTMAX", s.rows, s.cols)
    record, row_sum, row_out, dt = SOFTMAX_CHUNK_KERNELS[s.kind]
    p = params_from_ints(record, s.qparams)
    x = m.view(I.ABUF, s.src, (s.rows, s.cols), dt)
    state = m.view(I.ABUF, s.state, (s.rows, 2), np.int32)
    total = state[:, 1:].view(np.float32) if s.kind == 1 else state[:, 1:]
    top = np.iinfo(dt).max

    def row_max() -> np.ndarray:
        return np.minimum(np.maximum(state[:, :1].astype(np.int64), x.max(axis=-1, keepdims=True)), top)

    if s.phase == I.SOFTMAX_MAX_FIRST:
        return lambda: state.__setitem__(..., np.stack([x.max(axis=-1), np.zeros(s.rows, np.int64)], axis=-1))
    if s.phase == I.SOFTMAX_MAX:
        return lambda: state[:, 0].__setitem__(..., np.maximum(state[:, 0], x.max(axis=-1)))
    if s.phase == I.SOFTMAX_SUM:
        return lambda: total.__setitem__(..., row_sum(x, row_max(), p, total))
    dst = m.view(I.ABUF, s.dst, (s.rows, s.cols), dt)
    return lambda: dst.__setitem__(..., row_out(x, row_max(), total, p))


def softmax(m: Machine, s: I.Softmax) -> Action:
    if s.phase != I.SOFTMAX_WHOLE:
        return softmax_chunk(m, s)
    if s.kind == 2:
        return semantics16.softmax(m, s)
    x = m.view(I.ABUF, s.src, (s.rows, s.cols))
    dst = m.view(I.ABUF, s.dst, (s.rows, s.cols))
    if s.kind not in (0, 1):
        raise BinaryError(f"Softmax: unknown kind {s.kind}")
    p = params_from_ints(kernels_vpu.SoftmaxTableParams if s.kind else kernels_vpu.SoftmaxParams, s.qparams)
    return lambda: dst.__setitem__(..., kernels_vpu.softmax(x, p))


def resize(m: Machine, r: I.Resize) -> Action:
    dt = semantics16.elem_dtype("RESIZE", r.elem)
    x = m.view(I.ABUF, r.src, (1, r.in_h, r.in_w, r.c), dt)
    dst = m.view(I.ABUF, r.dst, (1, r.out_h, r.out_w, r.c), dt)
    fn = kernels_vpu.resize_bilinear if r.mode else kernels_vpu.resize_nearest
    band = kernels_vpu.Band(r.row0, r.in_row0, r.whole_in_h, r.whole_out_h) if r.whole_in_h else None
    return lambda: dst.__setitem__(..., fn(x, (r.out_h, r.out_w), bool(r.align_corners), bool(r.half_pixel_centers),
                                           band))


def magnitude(m: Machine, g: I.Magnitude) -> Action:
    x = m.view(I.ABUF, g.src, (g.outer, 2, g.c, g.inner), np.int16)
    p = params_from_ints(kernels_wide.MagnitudeParams, g.qparams)
    dst = m.view(I.ABUF, g.dst, (g.outer, g.c, g.inner), np.int16 if p.act_max > 127 else np.int8)
    return lambda: dst.__setitem__(..., kernels_wide.magnitude(x[:, 0], x[:, 1], p))


def gather(m: Machine, g: I.Gather) -> Action:
    """Rows of the table by the ids, with the reference kernel's check: an id out of range is
    a one-line error at run time, as in the integer reference (and TFLite's GATHER)."""
    if g.id_bytes not in (4, 8) or I.ACC in (g.ids_space, g.src_space, g.dst_space):
        raise BinaryError(f"GATHER: ids of {g.id_bytes} bytes (4 or 8), spaces {g.ids_space}, {g.src_space}, "
                          f"{g.dst_space} (not ACC)")
    check_geometry("GATHER", g.n + 1, g.rows + 1, g.row_bytes + 1)
    ids = m.view(g.ids_space, g.ids, (g.n,), np.dtype(f"<i{g.id_bytes}"))
    table = m.view(g.src_space, g.src, (g.rows, g.row_bytes), np.uint8)
    dst = m.view(g.dst_space, g.dst, (g.n, g.row_bytes), np.uint8)
    return lambda: dst.__setitem__(..., kernels_transformer.gather(table, ids))


def layer_norm(m: Machine, t: I.LayerNorm) -> Action:
    """Rows through the integer layer norm; its scalars, gamma and beta are read from the
    parameter block (I.layer_norm_block) when it runs."""
    check_geometry("LAYERNORM", t.rows, t.n)
    out_t = semantics16.elem_dtype("LAYERNORM", t.out_bytes)
    x = m.view(I.ABUF, t.src, (t.rows, t.n), semantics16.elem_dtype("LAYERNORM", t.in_bytes))
    dst = m.view(I.ABUF, t.dst, (t.rows, t.n), out_t)
    g_at, b_at, _ = I.layer_norm_block(t.n)
    eps, scale = m.view(I.ABUF, t.params, (1,), np.int64), m.view(I.ABUF, t.params + 8, (2,), np.int32)
    gamma, beta = m.view(I.ABUF, t.params + g_at, (t.n,), np.int16), m.view(I.ABUF, t.params + b_at, (t.n,), np.int32)
    info = np.iinfo(out_t)
    if not info.min <= t.act_min <= t.act_max <= info.max:
        raise BinaryError(f"LAYERNORM: clamp [{t.act_min}, {t.act_max}] outside the {info.dtype} range")

    def run() -> None:
        if not 0 <= eps[0] < 1 << 62:      # the variance plus eps_q stays a non-negative int64
            raise BinaryError(f"LAYERNORM: eps_q {int(eps[0])} in its parameter block is outside [0, 2^62)")
        p = kernels_transformer.LayerNormParams(t.n, int(eps[0]), gamma, beta, int(scale[0]), int(scale[1]),
                                                t.out_zp, t.act_min, t.act_max)
        dst[...] = kernels_transformer.layer_norm(x, p, out_t)
    return run


BINDERS: dict[type[I.Instr], Callable[..., Action]] = {
    I.Dma: dma, I.Fill: fill, I.Conv: conv, I.DwConv: dwconv, I.Requant: requant, I.Elementwise: elementwise,
    I.Lut: lut, I.Pool: pool, I.Mean: mean, I.ArgMax: arg_max, I.Select: select, I.MatMul: matmul,
    I.Softmax: softmax, I.Resize: resize, I.Magnitude: magnitude, I.Sigmoid16: semantics16.sigmoid16,
    I.Gather: gather, I.LayerNorm: layer_norm, I.Lut16: semantics16.lut16,
    I.LstmCell: semantics_lstm.lstm_cell, I.GruCell: semantics_gru.gru_cell}
