"""What each instruction does to machine state, written once; the functional simulator runs it.

Memory is one flat uint8 array per space. Every access is bounds-checked so a corrupt
binary gives a clear error, not a numpy exception. The arithmetic is the shared kernel
library (npukit.quant), applied to tiles.
"""
from __future__ import annotations

from dataclasses import astuple, fields

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ..errors import BinaryError
from ..ir.graph import ConvAttrs, PoolAttrs
from ..isa import instructions as I
from ..quant import intmath, kernels_mxu, kernels_transformer, kernels_vpu, kernels_wide


def params_to_ints(p) -> tuple[int, ...]:
    return tuple(int(v) for v in astuple(p))


def params_from_ints(cls, ints: tuple[int, ...]):
    if len(ints) != len(fields(cls)):
        raise BinaryError(f"{cls.__name__}: expected {len(fields(cls))} parameters, got {len(ints)}")
    return cls(*ints)


ELTWISE_PARAMS = {I.Eltwise.ADD: kernels_vpu.AddParams, I.Eltwise.SUB: kernels_vpu.AddParams,
                  I.Eltwise.MUL: kernels_vpu.MulParams}


class Machine:
    """SRAMs and off-chip regions as byte arrays."""

    def __init__(self, sram_bytes: dict[int, int], regions: list[np.ndarray]):
        self.mem = {space: np.zeros(n, np.uint8) for space, n in sram_bytes.items()}
        for i, region in enumerate(regions):
            self.mem[I.REGION0 + i] = region

    def view(self, space: int, addr: int, shape, dtype=np.int8) -> np.ndarray:
        """A writable view of a contiguous block; raises BinaryError when out of bounds."""
        mem = self._space(space)
        n = int(np.prod(shape)) * np.dtype(dtype).itemsize
        if addr < 0 or n < 0 or addr + n > mem.size:
            raise BinaryError(f"access [{addr}, {addr + n}) outside space {space} of {mem.size} bytes")
        return mem[addr:addr + n].view(dtype).reshape(shape)

    def strided(self, space: int, addr: int, shape, strides, elem: int) -> np.ndarray:
        mem = self._space(space)
        if min(shape) <= 0:
            return np.zeros((0, elem), np.uint8)
        lo = addr + sum(min(0, s * (n - 1)) for s, n in zip(strides, shape))
        hi = addr + sum(max(0, s * (n - 1)) for s, n in zip(strides, shape)) + elem
        if lo < 0 or hi > mem.size:
            raise BinaryError(f"strided access [{lo}, {hi}) outside space {space} of {mem.size} bytes")
        return as_strided(mem[addr:], shape=tuple(shape) + (elem,), strides=tuple(strides) + (1,))

    def _space(self, space: int) -> np.ndarray:
        if space not in self.mem:
            raise BinaryError(f"instruction names memory space {space}, which does not exist")
        return self.mem[space]


def execute(m: Machine, ins: I.Instr, host_runner=None) -> None:
    _HANDLERS[type(ins)](m, ins) if not isinstance(ins, I.Host) else host_runner(ins.segment)


def _dma(m: Machine, d: I.Dma) -> None:
    src = m.strided(d.src_space, d.src, d.shape, d.src_strides, d.elem)
    dst = m.strided(d.dst_space, d.dst, d.shape, d.dst_strides, d.elem)
    dst[...] = src.copy() if d.src_space == d.dst_space else src


def _fill(m: Machine, f: I.Fill) -> None:
    m.view(f.space, f.addr, (f.n,), np.uint8)[:] = f.value & 0xFF


def _tile_pads(in_len: int, dil: int, pad_lo: int, out_len: int, stride: int, k: int, kdil: int):
    """Explicit (lo, hi) padding of a tile so that exactly `out_len` outputs are produced."""
    span = (out_len - 1) * stride + (k - 1) * kdil + 1
    hi = span - pad_lo - ((in_len - 1) * dil + 1)
    return pad_lo, max(hi, 0)  # extra rows beyond the window are sliced off


def _conv(m: Machine, c: I.Conv) -> None:
    if c.in_bytes not in (1, 2) or (c.in_bytes == 2 and c.zp != 0):
        raise BinaryError(f"CONV: input of {c.in_bytes} bytes with zero point {c.zp} (int8, or int16 with 0)")
    dtype = np.int16 if c.in_bytes == 2 else np.int8
    x = m.view(I.ABUF, c.src, (1, c.in_h, c.in_w, c.c_stride), dtype)[..., c.c_off:c.c_off + c.c_len]
    kh, kw = c.kernel
    w = m.view(I.WBUF, c.wgt, (c.k, kh, kw, c.c_len))
    pt, pb = _tile_pads(c.in_h, c.in_dil[0], c.pad_t, c.out_h, c.stride[0], kh, c.dilation[0])
    pl, pr = _tile_pads(c.in_w, c.in_dil[1], c.pad_l, c.out_w, c.stride[1], kw, c.dilation[1])
    attrs = ConvAttrs(stride=c.stride, dilation=c.dilation, pads=(pt, pl, pb, pr), input_dilation=c.in_dil)
    if c.in_bytes == 2:     # two int8 passes, hi and lo byte (kernels_wide.split_bytes)
        acc = kernels_wide.conv2d_acc_16x8(x, w, attrs)[0, :c.out_h, :c.out_w].reshape(-1, c.k)
    else:
        acc = kernels_mxu.conv2d_acc(x, w, attrs, c.zp)[0, :c.out_h, :c.out_w].reshape(-1, c.k)
    _accumulate(m, c.dst, acc, c.accumulate)


def _accumulate(m: Machine, addr: int, acc: np.ndarray, accumulate: int) -> None:
    out = m.view(I.ACC, addr, acc.shape, np.int32)
    out[...] = intmath.wrap_int32(out.astype(np.int64) + acc) if accumulate else intmath.wrap_int32(acc)


def _dwconv(m: Machine, d: I.DwConv) -> None:
    x = m.view(I.ABUF, d.src, (1, d.in_h, d.in_w, d.c))
    kh, kw = d.kernel
    w = m.view(I.WBUF, d.wgt, (1, kh, kw, d.c * d.mult))
    pt, pb = _tile_pads(d.in_h, 1, d.pad_t, d.out_h, d.stride[0], kh, d.dilation[0])
    pl, pr = _tile_pads(d.in_w, 1, d.pad_l, d.out_w, d.stride[1], kw, d.dilation[1])
    attrs = ConvAttrs(stride=d.stride, dilation=d.dilation, pads=(pt, pl, pb, pr), groups=d.c, depthwise=True)
    k = d.c * d.mult
    acc = kernels_mxu.conv2d_acc(x, w, attrs, d.zp)[0, :d.out_h, :d.out_w].reshape(-1, k)
    bias, mult, shift = m.view(I.WBUF, d.params, (3, k), np.int32)
    out = intmath.requantize(intmath.wrap_int32(acc), bias, mult, shift, d.out_zp, d.act_min, d.act_max)
    m.view(I.ABUF, d.dst, out.shape)[...] = out


def _requant(m: Machine, r: I.Requant) -> None:
    acc = m.view(I.ACC, r.src, (r.n_pix, r.k), np.int32)
    if r.mode == 0:
        bias, mult, shift = m.view(I.WBUF, r.params, (3, r.k), np.int32)
        out = intmath.requantize(acc, bias, mult, shift, r.out_zp, r.act_min, r.act_max)
    elif r.mode == 1:
        bias, mantissa, exponent = m.view(I.WBUF, r.params, (3, r.k), np.int64)
        p = kernels_mxu.ConvParams(0, r.out_zp, None, None, r.act_min, r.act_max, mantissa, exponent)
        out = kernels_mxu.fc_output(acc, bias, p)
    elif r.mode == 2:       # 16x8: int64 bias and multiplier form, int16 out
        bias, mult, shift = m.view(I.WBUF, r.params, (3, r.k), np.int64)
        p = kernels_mxu.ConvParams(0, r.out_zp, mult, shift, r.act_min, r.act_max)
        out = kernels_wide.conv_output_16x8(acc, bias, p)
    else:
        raise BinaryError(f"REQUANT: unknown mode {r.mode}")
    size = out.itemsize
    dst = m.strided(I.ABUF, r.dst + r.dst_c_off * size, (r.n_pix, r.k), (r.dst_pix_stride * size, size), size)
    dst[...] = out.view(np.uint8).reshape(r.n_pix, r.k, size)


def _elementwise(m: Machine, e: I.Elementwise) -> None:
    a = m.view(e.a_space, e.a, (e.rows, e.cols))
    b = m.strided(e.b_space, e.b, (e.rows, e.cols), e.b_strides, 1)[..., 0].view(np.int8)
    kind = I.Eltwise(e.kind)
    if kind in (I.Eltwise.MAX, I.Eltwise.MIN):
        out = (np.maximum if kind is I.Eltwise.MAX else np.minimum)(a, b)
    elif kind is I.Eltwise.PRELU:
        out = kernels_vpu.prelu(a, b, params_from_ints(kernels_vpu.PreluParams, e.qparams))
    else:
        p = params_from_ints(ELTWISE_PARAMS[kind], e.qparams)
        out = (kernels_vpu.mul if kind is I.Eltwise.MUL else kernels_vpu.add)(a, b, p)
    m.view(I.ABUF, e.dst, (e.rows, e.cols))[...] = out


def _lut(m: Machine, t: I.Lut) -> None:
    table = m.view(I.WBUF, t.table, (256,))
    x = m.view(I.ABUF, t.src, (t.n,))
    m.view(I.ABUF, t.dst, (t.n,))[...] = kernels_vpu.lut(x, table)


def _pool(m: Machine, p: I.Pool) -> None:
    x = m.view(I.ABUF, p.src, (1, p.in_h, p.in_w, p.c))
    attrs = PoolAttrs(kernel=p.kernel, stride=p.stride, pads=(p.pad_t, p.pad_l, p.pad_b, p.pad_r))
    fn = kernels_vpu.max_pool if p.kind == 0 else kernels_vpu.avg_pool
    out = fn(x, attrs, p.act_min, p.act_max)
    m.view(I.ABUF, p.dst, (1, p.out_h, p.out_w, p.c))[...] = out[:, :p.out_h, :p.out_w]


def _mean(m: Machine, r: I.Mean) -> None:
    x = m.view(I.ABUF, r.src, (1, r.n, 1, r.c))
    p = params_from_ints(kernels_vpu.MeanParams, r.qparams)
    m.view(I.ABUF, r.dst, (1, 1, 1, r.c))[...] = kernels_vpu.mean(x, (1, 2), p)


def _matmul(m: Machine, t: I.MatMul) -> None:
    a = m.view(I.ABUF, t.src, (t.m, t.k_len))
    b = m.view(I.WBUF, t.wgt, (t.n, t.k_len))
    _accumulate(m, t.dst, kernels_transformer.matmul_acc(a, b, t.a_zp, t.b_zp, True), t.accumulate)


def _softmax(m: Machine, s: I.Softmax) -> None:
    x = m.view(I.ABUF, s.src, (s.rows, s.cols))
    p = params_from_ints(kernels_vpu.SoftmaxParams, s.qparams)
    m.view(I.ABUF, s.dst, (s.rows, s.cols))[...] = kernels_vpu.softmax(x, p)


def _resize(m: Machine, r: I.Resize) -> None:
    x = m.view(I.ABUF, r.src, (1, r.in_h, r.in_w, r.c))
    fn = kernels_vpu.resize_bilinear if r.mode else kernels_vpu.resize_nearest
    out = fn(x, (r.out_h, r.out_w), bool(r.align_corners), bool(r.half_pixel_centers))
    m.view(I.ABUF, r.dst, (1, r.out_h, r.out_w, r.c))[...] = out


def _magnitude(m: Machine, g: I.Magnitude) -> None:
    x = m.view(I.ABUF, g.src, (g.outer, 2, g.c, g.inner), np.int16)
    p = params_from_ints(kernels_wide.MagnitudeParams, g.qparams)
    m.view(I.ABUF, g.dst, (g.outer, g.c, g.inner))[...] = kernels_wide.magnitude(x[:, 0], x[:, 1], p)


_HANDLERS = {I.Magnitude: _magnitude, I.Softmax: _softmax, I.Resize: _resize, I.MatMul: _matmul, I.Dma: _dma, I.Fill: _fill, I.Conv: _conv, I.DwConv: _dwconv, I.Requant: _requant,
             I.Elementwise: _elementwise, I.Lut: _lut, I.Pool: _pool, I.Mean: _mean}
