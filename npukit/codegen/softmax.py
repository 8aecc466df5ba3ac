"""SOFTMAX (last axis) on the VPU.

A row that fits runs whole: tiles of as many whole rows as ABUF holds, one SOFTMAX each. A row
too long for ABUF runs in chunks of columns, three passes over them per block of rows (the
maximum, the sum of exponentials, the outputs: isa's SOFTMAX phases), the row state between
chunks in a small ABUF slot. A chunk still resident from the previous pass is not loaded again.
"""
from __future__ import annotations

import math

from ..errors import ScheduleError
from ..ir.graph import Graph, Node
from ..isa import instructions as I
from ..isa.immediates import params_to_ints
from ..kernels import kernels_vpu as kv
from .context import Ctx, SlotPair
from .emitter import contiguous, dma

PASSES = ((I.SOFTMAX_MAX_FIRST, I.SOFTMAX_MAX), (I.SOFTMAX_SUM,) * 2, (I.SOFTMAX_OUT,) * 2)  # (first chunk, others)


def _whole_rows(cols: int, eb: int, abuf: int, nbuf: int) -> int:
    """Whole rows per tile (in and out, `nbuf` times); 0 when one row does not fit."""
    return (abuf // nbuf - 32) // (2 * cols * eb)


def _chunk_abuf(tr: int, cw: int, eb: int, nbuf: int) -> int:
    """ABUF a chunked tile takes: `tr` rows of `cw` columns in and out, and their row state, `nbuf` times."""
    return nbuf * (2 * I.align(tr * cw * eb) + I.align(tr * I.SOFTMAX_STATE_BYTES))


def chunk_plan(rows: int, cols: int, eb: int, abuf: int, nbuf: int) -> tuple[int, int] | None:
    """(rows per tile, columns per chunk) of rows too long for ABUF: as few chunks as fit, of
    equal width, then as many rows as fit; None when not even one element of a row fits."""
    wide = (abuf // nbuf - I.align(I.SOFTMAX_STATE_BYTES)) // 2 // I.ALIGN * I.ALIGN // eb  # one row's chunk
    if wide < 1:
        return None
    cw = math.ceil(cols / math.ceil(cols / wide))
    tr = 1
    while tr < rows and _chunk_abuf(tr + 1, cw, eb, nbuf) <= abuf:
        tr += 1
    return tr, cw


def softmax_fits(g: Graph, node: Node, abuf_bytes: int) -> bool:
    """A softmax runs on the NPU when a chunk of one row, in and out, fits double-buffered
    (a whole row runs in one pass, a longer one in chunks)."""
    x = g.tensors[node.inputs[0]]
    return chunk_plan(1, x.shape[-1], x.dtype.itemsize, abuf_bytes, 2) is not None


def lower_softmax(ctx: Ctx, g: Graph, node: Node) -> dict:
    """Tiles of whole rows where one row fits (the one-instruction form), else chunks."""
    e, x = ctx.emitter, g.tensors[node.inputs[0]]
    cols, eb = x.shape[-1], x.dtype.itemsize       # eb 2: int16 in and out (kind 2)
    rows = x.size // cols
    a_slots, _, _ = ctx.slots()
    src, dst = ctx.addr(node.inputs[0]), ctx.addr(node.outputs[0])
    qp, kind = params_to_ints(node.params), 2 if eb == 2 else int(isinstance(node.params, kv.SoftmaxTableParams))
    tr = min(rows, _whole_rows(cols, eb, a_slots.size, ctx.nbuf))
    if tr < 1:
        return _lower_chunked(ctx, g, node, qp, kind)
    ins, outs = SlotPair(a_slots.take(tr * cols * eb, ctx.nbuf)), SlotPair(a_slots.take(tr * cols * eb, ctx.nbuf))
    for r0 in range(0, rows, tr):
        rl = min(tr, rows - r0)
        xa, oa = ins.next(), outs.next()
        contiguous(e, ctx.space(node.inputs[0]), src + r0 * cols * eb, I.ABUF, xa, rl * cols * eb)
        e.emit(lambda L, d: I.Softmax(L, d, xa, rl, cols, oa, qp, kind))
        contiguous(e, I.ABUF, oa, ctx.space(node.outputs[0]), dst + r0 * cols * eb, rl * cols * eb)
    return {}


def _lower_chunked(ctx: Ctx, g: Graph, node: Node, qp: tuple[int, ...], kind: int) -> dict:
    """Blocks of `tr` rows, each as three passes over chunks of `cw` columns (in column order:
    kind 1's float32 sum is summed in order)."""
    e, x = ctx.emitter, g.tensors[node.inputs[0]]
    cols, eb = x.shape[-1], x.dtype.itemsize
    rows = x.size // cols
    a_slots, _, _ = ctx.slots()
    plan = chunk_plan(rows, cols, eb, a_slots.size, ctx.nbuf)
    if plan is None:
        raise ScheduleError(f"{node.name}: not even a chunk of a softmax row fits ABUF ({a_slots.size} B)")
    tr, cw = plan
    ins, outs = SlotPair(a_slots.take(tr * cw * eb, ctx.nbuf)), SlotPair(a_slots.take(tr * cw * eb, ctx.nbuf))
    states = SlotPair(a_slots.take(tr * I.SOFTMAX_STATE_BYTES, ctx.nbuf))
    src, dst = ctx.addr(node.inputs[0]), ctx.addr(node.outputs[0])
    x_space, o_space = ctx.space(node.inputs[0]), ctx.space(node.outputs[0])
    for r0 in range(0, rows, tr):
        rl, sa = min(tr, rows - r0), states.next()
        for first, rest in PASSES:
            for c0 in range(0, cols, cw):
                cl, phase = min(cw, cols - c0), rest if c0 else first
                xa, load = ins.lookup((r0, c0))
                if load:
                    dma(e, x_space, src + (r0 * cols + c0) * eb, (0, 0, 0, cols * eb), I.ABUF, xa,
                        (0, 0, 0, cl * eb), (1, 1, 1, rl), cl * eb)
                oa = outs.next() if phase == I.SOFTMAX_OUT else 0
                e.emit(lambda L, d: I.Softmax(L, d, xa, rl, cl, oa, qp, kind, phase, sa))
                if phase == I.SOFTMAX_OUT:
                    dma(e, I.ABUF, oa, (0, 0, 0, cl * eb), o_space, dst + (r0 * cols + c0) * eb,
                        (0, 0, 0, cols * eb), (1, 1, 1, rl), cl * eb)
    return {}
