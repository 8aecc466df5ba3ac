"""Lowering of data-movement layers to DMA: transpose, slice, concat, pad (reshape is free)."""
from __future__ import annotations

import numpy as np

from ..ir.graph import Graph, Node, Op
from ..isa import instructions as I
from ..quant.qexec import pad_code
from .context import Ctx
from .emitter import dma


def _strides(shape) -> list[int]:
    out, acc = [], 1
    for d in reversed(shape):
        out.append(acc)
        acc *= d
    return out[::-1]


def _merge(shape, src, dst) -> tuple[list, list, list, int]:
    """Drop unit dims, merge dims contiguous in both source and destination, and peel a
    trailing contiguous run off as the element size."""
    dims = [(n, s, d) for n, s, d in zip(shape, src, dst) if n != 1]
    merged: list[list[int]] = []
    for n, s, d in dims:
        if merged and merged[-1][1] == s * n and merged[-1][2] == d * n:
            merged[-1] = [merged[-1][0] * n, s, d]
        else:
            merged.append([n, s, d])
    elem = 1
    if merged and merged[-1][1] == 1 and merged[-1][2] == 1:
        elem = merged.pop()[0]
    return [m[0] for m in merged], [m[1] for m in merged], [m[2] for m in merged], elem


def copy_block(ctx: Ctx, shape, src_space, src, src_strides, dst_space, dst, dst_strides) -> bool:
    """Emit DMAs copying a block; False if it needs more than 4 strided dims."""
    n, s, d, elem = _merge(shape, src_strides, dst_strides)
    if len(n) > 4:
        return False
    pad = 4 - len(n)
    dma(ctx.emitter, src_space, src, [0] * pad + s, dst_space, dst, [0] * pad + d, [1] * pad + n, elem)
    return True


def lower_transpose(ctx: Ctx, g: Graph, node: Node) -> bool:
    x, out = g.tensors[node.inputs[0]], g.tensors[node.outputs[0]]
    st = _strides(x.shape)
    src = [st[p] for p in node.attrs.perm]
    return copy_block(ctx, out.shape, ctx.act_space, ctx.addr(x.name), src,
                      ctx.act_space, ctx.addr(out.name), _strides(out.shape))


def lower_slice(ctx: Ctx, g: Graph, node: Node) -> bool:
    x, out = g.tensors[node.inputs[0]], g.tensors[node.outputs[0]]
    a, st = node.attrs, _strides(x.shape)
    begins = [range(*slice(b, e, s).indices(dim))[:1] for dim, b, e, s in zip(x.shape, a.begin, a.end, a.step)]
    if any(len(r) == 0 for r in begins):
        return True     # empty slice: nothing to move
    start = sum(r[0] * s for r, s in zip(begins, st))
    src = [s * step for s, step in zip(st, a.step)]
    return copy_block(ctx, out.shape, ctx.act_space, ctx.addr(x.name) + start, src,
                      ctx.act_space, ctx.addr(out.name), _strides(out.shape))


def lower_concat(ctx: Ctx, g: Graph, node: Node) -> bool:
    out = g.tensors[node.outputs[0]]
    axis = node.attrs.axis % len(out.shape)
    ost = _strides(out.shape)
    offset = 0
    for name in node.inputs:
        x = g.tensors[name]
        space, addr = (ctx.consts.space, ctx.const(x.data)) if x.is_const else (ctx.act_space, ctx.addr(name))
        if not copy_block(ctx, x.shape, space, addr, _strides(x.shape), ctx.act_space,
                          ctx.addr(out.name) + offset * ost[axis], ost):
            return False
        offset += x.shape[axis]
    return True


def lower_pad(ctx: Ctx, g: Graph, node: Node) -> bool:
    x, out = g.tensors[node.inputs[0]], g.tensors[node.outputs[0]]
    code = pad_code(node, x.quant) if x.quant is not None else 0
    dst = ctx.addr(out.name)
    ctx.emitter.emit(lambda L, d: I.Fill(L, d, ctx.act_space, dst, out.nbytes, code & 0xFF), [],
                     [(ctx.act_space, dst, dst + out.nbytes)])
    ost = _strides(out.shape)
    start = sum(p0 * s for (p0, _), s in zip(node.attrs.pads, ost))
    return copy_block(ctx, x.shape, ctx.act_space, ctx.addr(x.name), _strides(x.shape),
                      ctx.act_space, dst + start, ost)


DATA_LOWERING = {Op.TRANSPOSE: lower_transpose, Op.SLICE: lower_slice, Op.CONCAT: lower_concat,
                 Op.PAD: lower_pad}

_ = np
