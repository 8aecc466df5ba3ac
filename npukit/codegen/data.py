"""Lowering of data-movement layers to DMA: transpose, slice, concat, pad (reshape is free)."""
from __future__ import annotations

from ..ir.graph import Graph, Node, Op
from ..isa import instructions as I
from ..quant.qexec import pad_code
from .context import Ctx
from .emitter import dma, merge_dims


def _strides(shape) -> list[int]:
    out, acc = [], 1
    for d in reversed(shape):
        out.append(acc)
        acc *= d
    return out[::-1]


def copy_block(ctx: Ctx, shape, src_space, src, src_strides, dst_space, dst, dst_strides) -> bool:
    """Emit a DMA copying a block; False if it needs more than 4 strided dims."""
    if len(merge_dims(shape, src_strides, dst_strides)[0]) > 4:
        return False
    dma(ctx.emitter, src_space, src, src_strides, dst_space, dst, dst_strides, shape, 1)
    return True


def lower_transpose(ctx: Ctx, g: Graph, node: Node) -> bool:
    x, out = g.tensors[node.inputs[0]], g.tensors[node.outputs[0]]
    st = _strides(x.shape)
    src = [st[p] for p in node.attrs.perm]
    return copy_block(ctx, out.shape, ctx.space(x.name), ctx.addr(x.name), src,
                      ctx.space(out.name), ctx.addr(out.name), _strides(out.shape))


def lower_slice(ctx: Ctx, g: Graph, node: Node) -> bool:
    x, out = g.tensors[node.inputs[0]], g.tensors[node.outputs[0]]
    a, st = node.attrs, _strides(x.shape)
    begins = [range(*slice(b, e, s).indices(dim))[:1] for dim, b, e, s in zip(x.shape, a.begin, a.end, a.step)]
    if any(len(r) == 0 for r in begins):
        return True     # empty slice: nothing to move
    start = sum(r[0] * s for r, s in zip(begins, st))
    src = [s * step for s, step in zip(st, a.step)]
    return copy_block(ctx, out.shape, ctx.space(x.name), ctx.addr(x.name) + start, src,
                      ctx.space(out.name), ctx.addr(out.name), _strides(out.shape))


def lower_concat(ctx: Ctx, g: Graph, node: Node) -> bool:
    out = g.tensors[node.outputs[0]]
    axis = node.attrs.axis % len(out.shape)
    ost = _strides(out.shape)
    offset = 0
    for name in node.inputs:
        x = g.tensors[name]
        space, addr = (ctx.consts.space, ctx.const(x.data)) if x.is_const else (ctx.space(name), ctx.addr(name))
        if not copy_block(ctx, x.shape, space, addr, _strides(x.shape), ctx.space(out.name),
                          ctx.addr(out.name) + offset * ost[axis], ost):
            return False
        offset += x.shape[axis]
    return True


def lower_pad(ctx: Ctx, g: Graph, node: Node) -> bool:
    x, out = g.tensors[node.inputs[0]], g.tensors[node.outputs[0]]
    code = pad_code(node, x.quant) if x.quant is not None else 0
    dst = ctx.addr(out.name)
    o_space = ctx.space(out.name)
    ctx.emitter.emit(lambda L, d: I.Fill(L, d, o_space, dst, out.nbytes, code & 0xFF), [],
                     [(o_space, dst, dst + out.nbytes)])
    ost = _strides(out.shape)
    start = sum(p0 * s for (p0, _), s in zip(node.attrs.pads, ost))
    return copy_block(ctx, x.shape, ctx.space(x.name), ctx.addr(x.name), _strides(x.shape),
                      o_space, dst + start, ost)


DATA_LOWERING = {Op.TRANSPOSE: lower_transpose, Op.SLICE: lower_slice, Op.CONCAT: lower_concat,
                 Op.PAD: lower_pad}

