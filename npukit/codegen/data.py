"""Lowering of data-movement layers to DMA: transpose, slice, concat, pad (reshape is free),
and gather (an embedding lookup: the indexed GATHER instruction)."""
from __future__ import annotations

import itertools

import numpy as np

from ..errors import ScheduleError
from ..ir.graph import DType, Graph, Node, Op
from ..isa import instructions as I
from ..isa.strided import merge_dims
from ..kernels.kernels_vpu import pad_code
from .context import Ctx
from .emitter import dma


def _strides(shape, elem: int = 1) -> list[int]:
    """Byte strides of a C-contiguous tensor of `elem`-byte elements."""
    out, acc = [], elem
    for d in reversed(shape):
        out.append(acc)
        acc *= d
    return out[::-1]


def copy_block(ctx: Ctx, shape, src_space, src, src_strides, dst_space, dst, dst_strides, elem: int = 1) -> None:
    """Emit the DMAs copying a block of `elem`-byte elements (strides in bytes). Axes contiguous
    in both source and destination merge first (merge_dims); a block still needing more than 4
    strided dims becomes a loop of 4-D DMAs over its smallest remaining axes."""
    e = ctx.emitter
    if src_space == e.packed_space and src in e.packed:     # a compressed constant: loaded whole
        dma(e, src_space, src, src_strides, dst_space, dst, dst_strides, shape, elem)
        return
    n, s, d, run = merge_dims(shape, src_strides, dst_strides, elem)
    outer = sorted(sorted(range(len(n)), key=lambda i: n[i])[:max(0, len(n) - 4)])
    inner = [i for i in range(len(n)) if i not in outer]
    for idx in itertools.product(*(range(n[i]) for i in outer)):
        so = sum(j * s[i] for j, i in zip(idx, outer))
        do = sum(j * d[i] for j, i in zip(idx, outer))
        dma(e, src_space, src + so, [s[i] for i in inner], dst_space, dst + do, [d[i] for i in inner],
            [n[i] for i in inner], run)


def lower_transpose(ctx: Ctx, g: Graph, node: Node) -> None:
    x, out = g.tensors[node.inputs[0]], g.tensors[node.outputs[0]]
    eb = x.dtype.itemsize
    st = _strides(x.shape, eb)
    src = [st[p] for p in node.attrs.perm]
    copy_block(ctx, out.shape, ctx.space(x.name), ctx.addr(x.name), src,
               ctx.space(out.name), ctx.addr(out.name), _strides(out.shape, eb), eb)


def lower_slice(ctx: Ctx, g: Graph, node: Node) -> None:
    x, out = g.tensors[node.inputs[0]], g.tensors[node.outputs[0]]
    eb = x.dtype.itemsize
    a, st = node.attrs, _strides(x.shape, eb)
    begins = [range(*slice(b, e, s).indices(dim))[:1] for dim, b, e, s in zip(x.shape, a.begin, a.end, a.step)]
    if any(len(r) == 0 for r in begins):
        return          # empty slice: nothing to move
    start = sum(r[0] * s for r, s in zip(begins, st))
    src = [s * step for s, step in zip(st, a.step)]
    copy_block(ctx, out.shape, ctx.space(x.name), ctx.addr(x.name) + start, src,
               ctx.space(out.name), ctx.addr(out.name), _strides(out.shape, eb), eb)


def lower_concat(ctx: Ctx, g: Graph, node: Node) -> None:
    out = g.tensors[node.outputs[0]]
    axis = node.attrs.axis % len(out.shape)
    eb = out.dtype.itemsize
    ost = _strides(out.shape, eb)
    offset = 0
    for name in node.inputs:
        x = g.tensors[name]
        space, addr = (ctx.consts.space, ctx.const(x.const_data)) if x.is_const else (ctx.space(name), ctx.addr(name))
        copy_block(ctx, x.shape, space, addr, _strides(x.shape, eb), ctx.space(out.name),
                   ctx.addr(out.name) + offset * ost[axis], ost, eb)
        offset += x.shape[axis]


def lower_pad(ctx: Ctx, g: Graph, node: Node) -> None:
    """Constant: fill, then copy the body. Reflect: copy the body, then per padded axis (last
    first) mirror the slab next to each edge with one negative-stride DMA; each axis reads
    what the previous ones wrote, so the corners come out as numpy's reflect."""
    x, out = g.tensors[node.inputs[0]], g.tensors[node.outputs[0]]
    eb = x.dtype.itemsize
    dst = ctx.addr(out.name)
    o_space = ctx.space(out.name)
    if node.attrs.mode == "constant":
        code = pad_code(node.attrs.value, x.quant.s, x.quant.zp) if x.quant is not None else 0
        if eb > 1 and code not in (0, -1):
            raise ScheduleError(f"{node.name}: an int16 PAD fills with code {code} (the DMA fill sets bytes)")
        ctx.emitter.emit(lambda L, d: I.Fill(L, d, o_space, dst, out.nbytes, code & 0xFF))
    ost = _strides(out.shape, eb)
    pads = node.attrs.pads
    start = sum(p0 * s for (p0, _), s in zip(pads, ost))
    copy_block(ctx, x.shape, ctx.space(x.name), ctx.addr(x.name), _strides(x.shape, eb), o_space, dst + start,
               ost, eb)
    if node.attrs.mode != "reflect":
        return
    region = [[p0, n] for (p0, _), n in zip(pads, x.shape)]      # (first index, extent) written so far
    for ax in reversed(range(len(x.shape))):
        p0, p1 = pads[ax]
        lo, n = region[ax]
        for count, src_i, dst_i, step in ((p0, lo + 1, lo - 1, -1), (p1, lo + n - 2, lo + n, 1)):
            if count == 0:
                continue
            shape = [e for _, e in region]
            shape[ax] = count
            base = sum(f * s for (f, _), s in zip(region, ost))
            src = base + (src_i - lo) * ost[ax]
            dsts = base + (dst_i - lo) * ost[ax]
            s_str, d_str = list(ost), list(ost)
            s_str[ax], d_str[ax] = -step * ost[ax], step * ost[ax]
            copy_block(ctx, shape, o_space, dst + src, s_str, o_space, dst + dsts, d_str, eb)
        region[ax] = [0, lo + n + p1]


def gather_support(g: Graph, node: Node) -> str:
    """'' if a GATHER is an indexed DMA: rows of a constant table (axis 0) by computed ids of
    int32 / int64, into an output of the table's type (a float table of a graph typed without
    params, as placement sees it, becomes the int8 output's: quant.quantize_transformer)."""
    table, ids, out = (g.tensors[n] for n in (*node.inputs[:2], node.outputs[0]))
    if not table.is_const or ids.is_const or node.attrs.axis != 0:
        return "no NPU kernel for Gather of activation rows"
    quantised_later = table.dtype is DType.F32 and out.dtype is DType.I8
    if ids.dtype not in (DType.I32, DType.I64) or table.dtype is not out.dtype and not quantised_later:
        return f"gather of {table.dtype.value} rows by {ids.dtype.value} ids"
    return ""


def lower_gather(ctx: Ctx, g: Graph, node: Node) -> None:
    """One GATHER instruction: each id read from where the ids live, its row of the table
    (in the constant image) copied to the output."""
    table, ids, out = (g.tensors[n] for n in (*node.inputs[:2], node.outputs[0]))
    if ids.size == 0 or out.nbytes == 0:
        return
    rows, row = table.shape[0], table.nbytes // table.shape[0]
    src, w = ctx.const(np.ascontiguousarray(table.const_data)), ctx.consts.space
    i_space, i_addr, o_space, o_addr = ctx.space(ids.name), ctx.addr(ids.name), ctx.space(out.name), ctx.addr(out.name)
    idb = ids.dtype.itemsize
    ctx.emitter.emit(lambda L, d: I.Gather(L, d, i_space, i_addr, ids.size, idb, w, src, rows, row, o_space, o_addr))


DATA_LOWERING = {Op.TRANSPOSE: lower_transpose, Op.SLICE: lower_slice, Op.CONCAT: lower_concat,
                 Op.PAD: lower_pad, Op.GATHER: lower_gather}

