"""LAYER_NORM (last axis) on the VPU: the LAYERNORM instruction over tiles of whole rows.

The parameter block (the kernel's eps_q, multiplier, shift, int16 gamma and int32 beta;
isa.instructions.layer_norm_block) is loaded into ABUF once per layer; input rows stream in
through ping-pong slots, as many whole rows per tile as ABUF holds, int8 or int16 in and out.
"""
from __future__ import annotations

import numpy as np

from ..errors import ScheduleError
from ..ir.graph import DType, Graph, Node
from ..isa import instructions as I
from ..kernels.kernels_transformer import LayerNormParams
from .context import Ctx, SlotPair
from .emitter import contiguous


def _sizes(g: Graph, node: Node) -> tuple[int, int, int, int]:
    """(rows, row length, input bytes, output bytes per element)."""
    x, out = g.tensors[node.inputs[0]], g.tensors[node.outputs[0]]
    n = x.shape[-1]
    return x.size // max(n, 1), n, x.dtype.itemsize, out.dtype.itemsize


def _abuf_bytes(n: int, rows: int, ib: int, ob: int, nbuf: int) -> int:
    """ABUF a tile of `rows` rows takes (in and out `nbuf` times), with the parameter block."""
    return nbuf * (I.align(rows * n * ib) + I.align(rows * n * ob)) + I.align(I.layer_norm_block(n)[2])


def layer_norm_support(g: Graph, node: Node, work_abuf: int) -> str:
    """'' if the VPU runs this layer norm (int8 / int16, one row in and out double-buffered
    beside its parameter block in the working ABUF), else why not."""
    kinds = {g.tensors[t].dtype for t in (node.inputs[0], node.outputs[0])}
    if kinds - {DType.I8, DType.I16}:
        return "layer norm of a type other than int8 / int16"
    _, n, ib, ob = _sizes(g, node)
    if _abuf_bytes(n, 1, ib, ob, 2) > work_abuf:
        return f"layer norm row of {n} elements (with its gamma and beta) larger than ABUF"
    return ""


def param_block(p: LayerNormParams) -> np.ndarray:
    """The LAYERNORM parameter block's bytes (I.layer_norm_block)."""
    g_at, b_at, size = I.layer_norm_block(p.n)
    block = np.zeros(size, np.uint8)
    block[:8] = np.array([p.eps_q], "<i8").view(np.uint8)
    block[8:16] = np.array([p.multiplier, p.shift], "<i4").view(np.uint8)
    block[g_at:g_at + 2 * p.n] = np.asarray(p.gamma, "<i2").view(np.uint8)
    block[b_at:] = np.asarray(p.beta, "<i4").view(np.uint8)
    return block


def lower_layer_norm(ctx: Ctx, g: Graph, node: Node) -> dict:
    """Whole rows per tile: the most that fit beside the parameter block (max_tile_rows caps it)."""
    e, p = ctx.emitter, node.params
    rows, n, ib, ob = _sizes(g, node)
    a_slots, _, _ = ctx.slots()
    nb = ctx.nbuf
    room = a_slots.size - I.align(I.layer_norm_block(n)[2]) - 2 * nb * I.ALIGN
    tr = min(rows, room // (nb * n * (ib + ob)), ctx.options.max_tile_rows or rows)
    if tr < 1 or _abuf_bytes(n, tr, ib, ob, nb) > a_slots.size:
        raise ScheduleError(f"{node.name}: a layer norm row of {n} elements does not fit ABUF")
    block = param_block(p)
    pa = a_slots.take(block.size, 1)[0]
    contiguous(e, ctx.consts.space, ctx.const(block, True), I.ABUF, pa, block.size)
    ins, outs = SlotPair(a_slots.take(tr * n * ib, nb)), SlotPair(a_slots.take(tr * n * ob, nb))
    src, dst = ctx.addr(node.inputs[0]), ctx.addr(node.outputs[0])
    for r0 in range(0, rows, tr):
        rl = min(tr, rows - r0)
        xa, oa = ins.next(), outs.next()
        contiguous(e, ctx.space(node.inputs[0]), src + r0 * n * ib, I.ABUF, xa, rl * n * ib)
        e.emit(lambda L, d: I.LayerNorm(L, d, xa, rl, n, ib, pa, oa, ob, p.output_zp, p.act_min, p.act_max))
        contiguous(e, I.ABUF, oa, ctx.space(node.outputs[0]), dst + r0 * n * ob, rl * n * ob)
    return {"tiling": f"{tr} rows of {rows} (x {n})"}
