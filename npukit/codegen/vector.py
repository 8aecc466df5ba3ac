"""Lowering of VPU layers: element-wise arithmetic, tables, pooling and reductions."""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from ..errors import ScheduleError
from ..ir.graph import Graph, Node, Op
from ..isa import instructions as I
from ..isa.immediates import params_to_ints
from ..kernels.kernels_vpu_compare import PREDICATES, SWAPPED
from .context import Ctx, SlotPair
from .emitter import contiguous, dma
from .widen import IDENTITY, unit_weight, widen

ELTWISE_KIND = {Op.ADD: I.Eltwise.ADD, Op.SUB: I.Eltwise.SUB, Op.MUL: I.Eltwise.MUL,
                Op.MAXIMUM: I.Eltwise.MAX, Op.MINIMUM: I.Eltwise.MIN, Op.PRELU: I.Eltwise.PRELU,
                Op.COMPARE: I.Eltwise.COMPARE, Op.LOGICAL: I.Eltwise.LOGICAL}
COMMUTATIVE = {Op.ADD, Op.MUL, Op.MAXIMUM, Op.MINIMUM, Op.COMPARE, Op.LOGICAL}   # COMPARE: predicate mirrored


def _b_pattern(b_shape, out_shape) -> tuple[int, int, int] | None:
    """(b's stride per row, per column, columns) of a [rows, columns] view of the output in
    which operand b is the whole tensor, one value per column, one per row or one value: the
    columns are the last axis where that serves ([pixels, channels]), else the trailing axes
    from the first split that does (a [1, C, 1, H, W] map times [1, C, 1, 1, 1]: C rows)."""
    out = tuple(out_shape)
    b_shape = (1,) * (len(out) - len(b_shape)) + tuple(b_shape)
    c = out[-1] if out else 1
    if b_shape == out:
        return c, 1, c
    lead_one = all(d == 1 for d in b_shape[:-1])
    if lead_one and b_shape[-1] == c:
        return 0, 1, c
    if lead_one and b_shape[-1] == 1:
        return 0, 0, c
    if b_shape[-1] == 1 and b_shape[:-1] == out[:-1]:
        return 1, 0, c
    for k in range(len(out) - 2, 0, -1):            # rows out[:k], columns out[k:]
        cols = math.prod(out[k:])
        if all(d == 1 for d in b_shape[:k]) and b_shape[k:] == out[k:]:
            return 0, 1, cols
        if b_shape[:k] == out[:k] and all(d == 1 for d in b_shape[k:]):
            return 1, 0, cols
    return None


def _swapped(params):
    """The same arithmetic with the operands exchanged (commutative ops only)."""
    fields = params.__dataclass_fields__
    pairs = [("input1_offset", "input2_offset"), ("input1_multiplier", "input2_multiplier"),
             ("input1_shift", "input2_shift")]
    changes = {}
    for f1, f2 in pairs:
        if f1 in fields:
            changes[f1], changes[f2] = getattr(params, f2), getattr(params, f1)
    if "predicate" in fields:            # a > b is b < a
        changes["predicate"] = PREDICATES.index(SWAPPED[PREDICATES[params.predicate]])
    return replace(params, **changes)


def eltwise_plan(g: Graph, node: Node):
    """(a, b, params, (b's strides per row and column, columns)) with the broadcast operand
    second, or None if unsupported."""
    out = g.tensors[node.outputs[0]].shape
    a, b = node.inputs
    params = node.params
    pat = _b_pattern(g.tensors[b].shape, out)
    if g.tensors[a].shape != out or pat is None:
        if node.op not in COMMUTATIVE or g.tensors[b].shape != out:
            return None
        a, b = b, a
        params = _swapped(params) if params is not None else None
        pat = _b_pattern(g.tensors[b].shape, out)
        if pat is None or g.tensors[a].shape != out:
            return None
    return a, b, params, pat


def _location(ctx: Ctx, g: Graph, name: str, eb: int = 1) -> tuple[int, int]:
    t = g.tensors[name]
    if t.is_const:        # an int8 constant of an int16 layer is stored as the int16 values x - zp
        data = t.const_data if t.dtype.itemsize == eb else t.const_data.astype(np.int16) - np.int16(t.qp.zp)
        return ctx.consts.space, ctx.const(data)
    return ctx.space(name), ctx.addr(name)


def lower_eltwise(ctx: Ctx, g: Graph, node: Node, plan) -> dict:
    a, b, params, (bs_r, bs_c, c) = plan
    e, out = ctx.emitter, g.tensors[node.outputs[0]]
    eb = out.dtype.itemsize             # 2: int16 operands and output (16x8)
    # int8 activations of an int16 layer are widened per tile to x - zp (TFLite's int16 ADD / MUL
    # takes an int8 operand so), their offsets dropped from the params
    narrow = [n for n in (a, b) if eb == 2 and g.tensors[n].dtype.itemsize == 1]
    if narrow:
        params = replace(params, **{f"input{i + 1}_offset": 0 for i, n in enumerate((a, b)) if n in narrow})
    stage = {n: g.tensors[n].qp.zp for n in narrow if not g.tensors[n].is_const}
    a_slots, w_slots, _ = ctx.slots()

    def rows_fitting(c: int) -> int:
        """Rows of c elements a tile holds (< 1: not one)."""
        b_cols = 1 if bs_c == 0 else c
        per_row = 2 * c * eb + (b_cols * eb if bs_r else 0) + (c if a in stage else 0) + (b_cols if b in stage and bs_r else 0)
        fixed = 0 if bs_r else b_cols * (eb + (b in stage))
        return min(out.size // c, (a_slots.size // ctx.nbuf - 64 - fixed - 32 * len(stage)) // max(per_row, 1))
    tr = rows_fitting(c)
    if tr < 1 and (bs_r, bs_c) in ((c, 1), (0, 0)):     # element by element: rows of any length will do
        c = next((d for d in range(c - 1, 0, -1) if out.size % d == 0 and rows_fitting(d) >= 1), c)
        bs_r, tr = (c if bs_r else 0), rows_fitting(c)
    if tr < 1:
        raise ScheduleError(f"{node.name}: a row of {c} channels does not fit ABUF")
    p_rows = out.size // c
    b_cols = 1 if bs_c == 0 else c
    a_buf = SlotPair(a_slots.take(tr * c * eb, ctx.nbuf))
    o_buf = SlotPair(a_slots.take(tr * c * eb, ctx.nbuf))
    b_len_max = tr * b_cols if bs_r else b_cols
    b_buf = SlotPair(a_slots.take(b_len_max * eb, ctx.nbuf))
    staged = {n: SlotPair(a_slots.take(tr * c if n == a else b_len_max, ctx.nbuf)) for n in stage}
    unit = unit_weight(ctx, w_slots, *IDENTITY) if stage else 0
    a_space, a_addr = _location(ctx, g, a, eb)
    b_space, b_addr = _location(ctx, g, b, eb)
    o_addr = ctx.addr(node.outputs[0])
    qparams = params_to_ints(params) if params is not None else ()
    kind = int(ELTWISE_KIND[node.op])

    def load(name: str, space: int, base: int, off: int, n: int, to: int) -> None:
        """Elements [off, off + n) of an operand into ABUF at `to` as int16 (eb 2) or int8."""
        if name in stage:                  # the int8 tile, then its widening
            st = staged[name].next()
            contiguous(e, space, base + off, I.ABUF, st, n)
            widen(e, st, n, stage[name], to, unit)
        else:
            contiguous(e, space, base + off * eb, I.ABUF, to, n * eb)

    for r0 in range(0, p_rows, tr):
        rl = min(tr, p_rows - r0)
        aa, _ = a_buf.lookup(("a", r0))
        load(a, a_space, a_addr, r0 * c, rl * c, aa)
        ba, fresh = b_buf.lookup(("b", r0) if bs_r else ("b",))
        if fresh:
            load(b, b_space, b_addr, r0 * b_cols if bs_r else 0, rl * b_cols if bs_r else b_cols, ba)
        oa = o_buf.next()
        strides = (b_cols if bs_r else 0, 1 if bs_c else 0)
        e.emit(lambda L, d: I.Elementwise(L, d, kind, I.ABUF, aa, I.ABUF, ba, strides, oa, rl, c, qparams, eb))
        contiguous(e, I.ABUF, oa, ctx.space(node.outputs[0]), o_addr + r0 * c * eb, rl * c * eb)
    return {}


def lower_lut(ctx: Ctx, g: Graph, node: Node, table: np.ndarray | None = None) -> dict:
    """A 256-entry table per int8 element; `table` defaults to the node's own."""
    table_data = node.params.table if table is None else table
    e, n = ctx.emitter, g.tensors[node.outputs[0]].size
    a_slots, w_slots, _ = ctx.slots()
    chunk = min(n, (a_slots.size // (2 * ctx.nbuf)) // I.ALIGN * I.ALIGN or n)
    ins, outs = SlotPair(a_slots.take(chunk, ctx.nbuf)), SlotPair(a_slots.take(chunk, ctx.nbuf))
    table_at = w_slots.take(256, 1)[0]
    contiguous(e, ctx.consts.space, ctx.const(np.asarray(table_data).view(np.int8), True), I.WBUF, table_at, 256)
    src, dst = ctx.addr(node.inputs[0]), ctx.addr(node.outputs[0])
    for i in range(0, n, chunk):
        ln = min(chunk, n - i)
        xa = ins.next()
        contiguous(e, ctx.space(node.inputs[0]), src + i, I.ABUF, xa, ln)
        oa = outs.next()
        e.emit(lambda L, d: I.Lut(L, d, xa, ln, table_at, oa))
        contiguous(e, I.ABUF, oa, ctx.space(node.outputs[0]), dst + i, ln)
    return {}


def _merged_shapes(g: Graph, node: Node) -> tuple[tuple[int, ...], list[tuple[int, ...]]]:
    """The output's and operands' shapes, an output of more than 4 axes with adjacent axes
    merged where every operand is whole on both or broadcast on both ([2, 3, 4, 4, 4] by
    [1, 3, 1, 1, 1]: [2, 3, 64] by [1, 3, 1]); the flat layout is the same."""
    out = tuple(g.tensors[node.outputs[0]].shape)
    shapes = [(1,) * (len(out) - len(g.tensors[n].shape)) + tuple(g.tensors[n].shape) for n in node.inputs]
    if len(out) <= 4:
        return out, shapes
    groups: list[list[int]] = []
    last = None
    for d, n in enumerate(out):
        status = None if n == 1 else tuple(s[d] == n for s in shapes)
        if groups and (status is None or last is None or status == last):
            groups[-1].append(d)
        else:
            groups.append([d])
        last = status if status is not None else last
    return (tuple(math.prod(out[d] for d in grp) for grp in groups),
            [tuple(math.prod(s[d] for d in grp) for grp in groups) for s in shapes])


def broadcast_supported(g: Graph, node: Node) -> bool:
    """Operands read with broadcast (zero) strides: any shapes that merge to 4-D or fewer axes."""
    return len(_merged_shapes(g, node)[0]) <= 4


def _broadcast_strides(shape, out4) -> tuple[int, ...]:
    """Element strides of an operand read as the 4-D output shape (0 on broadcast axes)."""
    shape = (1,) * (4 - len(shape)) + tuple(shape)
    strides = [math.prod(shape[d + 1:]) for d in range(4)]
    return tuple(0 if shape[d] == 1 and out4[d] != 1 else strides[d] for d in range(4))


MATERIALISE_BYTES = 1 << 16


def _broadcast_blocks(ctx: Ctx, g: Graph, node: Node):
    """Blocks of the output (whole trailing axes, a run of the first axis that does not fit
    whole): loads every operand's block into ABUF with its broadcast strides and yields
    (operand tiles, output tile, length, flat offset); the caller computes and stores."""
    e, out = ctx.emitter, g.tensors[node.outputs[0]]
    out_shape, in_shapes = _merged_shapes(g, node)
    out4 = (1,) * (4 - len(out_shape)) + out_shape
    a_slots, _, _ = ctx.slots()
    n_bufs = len(node.inputs) + 1
    cap = max(1, a_slots.size // (n_bufs * ctx.nbuf) - 16)
    axis = next(d for d in range(4) if math.prod(out4[d + 1:]) <= cap)
    inner = math.prod(out4[axis + 1:])
    k = max(1, min(out4[axis], cap // inner))
    bufs = [SlotPair(a_slots.take(k * inner, ctx.nbuf)) for _ in range(n_bufs)]
    operands = []
    for name, shape in zip(node.inputs, in_shapes):
        t = g.tensors[name]
        if t.is_const:       # stored expanded (contiguous reads) unless that costs over 64 KiB
            data = t.const_data.reshape(shape)
            data = data if out.size > MATERIALISE_BYTES else np.broadcast_to(data, out_shape)
            operands.append((ctx.consts.space, ctx.const(np.ascontiguousarray(data).view(np.int8)),
                             _broadcast_strides(data.shape, out4)))
        else:
            operands.append((ctx.space(name), ctx.addr(name), _broadcast_strides(shape, out4)))
    for prefix in np.ndindex(*out4[:axis]):
        for j0 in range(0, out4[axis], k):
            kl = min(k, out4[axis] - j0)
            idx = (*prefix, j0) + (0,) * (3 - axis)
            shape = (1,) * axis + (kl,) + out4[axis + 1:]
            tiles = []
            for (space, addr, strides), buf in zip(operands, bufs):
                to = buf.next()
                dma(e, space, addr + sum(i * s for i, s in zip(idx, strides)), strides, I.ABUF, to,
                    tuple(math.prod(shape[d + 1:]) for d in range(4)), shape, 1)
                tiles.append(to)
            yield tiles, bufs[-1].next(), kl * inner, sum(i * math.prod(out4[d + 1:]) for d, i in enumerate(idx))


def lower_select(ctx: Ctx, g: Graph, node: Node) -> dict:
    """cond ? x : y, operands broadcast."""
    e, out = ctx.emitter, node.outputs[0]
    for (c, a, b), oa, ln, flat in _broadcast_blocks(ctx, g, node):
        e.emit(lambda L, d: I.Select(L, d, c, a, b, oa, ln))
        contiguous(e, I.ABUF, oa, ctx.space(out), ctx.addr(out) + flat, ln)
    return {}


def lower_eltwise_broadcast(ctx: Ctx, g: Graph, node: Node) -> dict:
    """A binary element-wise op whose broadcast the row / column patterns do not cover (an
    outer axis, both operands broadcast): both operands expanded by the DMA, then one
    ELEMENTWISE over each block."""
    e, out = ctx.emitter, node.outputs[0]
    qparams = params_to_ints(node.params) if node.params is not None else ()
    kind = int(ELTWISE_KIND[node.op])
    for (a, b), oa, ln, flat in _broadcast_blocks(ctx, g, node):
        e.emit(lambda L, d: I.Elementwise(L, d, kind, I.ABUF, a, I.ABUF, b, (ln, 1), oa, 1, ln, qparams))
        contiguous(e, I.ABUF, oa, ctx.space(out), ctx.addr(out) + flat, ln)
    return {}


def lower_pool(ctx: Ctx, g: Graph, node: Node) -> dict:
    e, a = ctx.emitter, node.attrs
    n, h, w, c = g.tensors[node.inputs[0]].shape
    _, eh, ew, _ = g.tensors[node.outputs[0]].shape
    (kh, kw), (sh, sw), (pt, pl, _, _) = a.kernel, a.stride, a.pads
    eb = g.tensors[node.inputs[0]].dtype.itemsize       # 2: int16 (16x8)
    a_slots, _, _ = ctx.slots()
    budget = (a_slots.size // ctx.nbuf - 64) // eb
    th, cb = eh, c
    while (th > 1 or cb > 1) and min(h, (th - 1) * sh + kh) * w * cb + th * ew * cb > budget:
        if th > 1:
            th = math.ceil(th / 2)
        else:
            cb = math.ceil(cb / 2)
    rows_max = min(h, (th - 1) * sh + kh)
    if rows_max * w * cb + th * ew * cb > budget:
        raise ScheduleError(f"{node.name}: no pooling tile fits ABUF ({a_slots.size} B)")
    ins = SlotPair(a_slots.take(rows_max * w * cb * eb, ctx.nbuf))
    outs = SlotPair(a_slots.take(th * ew * cb * eb, ctx.nbuf))
    src, dst = ctx.addr(node.inputs[0]), ctx.addr(node.outputs[0])
    kind = 0 if node.op is Op.MAX_POOL else 1
    p = node.params
    for b in range(n):
        for c0 in range(0, c, cb):
            cl = min(cb, c - c0)
            for r0 in range(0, eh, th):
                rl = min(th, eh - r0)
                y0, y1 = r0 * sh - pt, (r0 + rl - 1) * sh - pt + kh - 1
                lo, hi = max(y0, 0), min(y1, h - 1)
                rows = hi - lo + 1
                xa = ins.next()
                dma(e, ctx.space(node.inputs[0]), src + (((b * h + lo) * w) * c + c0) * eb, (0, 0, 0, c * eb), I.ABUF,
                    xa, (0, 0, 0, cl * eb), (1, 1, 1, rows * w), cl * eb)
                oa = outs.next()
                tpb = max(0, (rl - 1) * sh + kh - (lo - y0) - rows)
                tpr = max(0, (ew - 1) * sw + kw - pl - w)
                e.emit(lambda L, d: I.Pool(L, d, kind, xa, rows, w, cl, oa, rl, ew, (kh, kw), (sh, sw),
                                           lo - y0, pl, tpb, tpr, p.act_min, p.act_max, eb))
                dma(e, I.ABUF, oa, (0, 0, 0, cl * eb), ctx.space(node.outputs[0]),
                    dst + (((b * eh + r0) * ew) * c + c0) * eb, (0, 0, 0, c * eb), (1, 1, 1, rl * ew), cl * eb)
    return {}


REDUCE_KIND = {Op.MEAN: 0, Op.REDUCE_MAX: 1, Op.REDUCE_MIN: 2, Op.REDUCE_SUM: 3}


def lower_mean(ctx: Ctx, g: Graph, node: Node) -> dict:
    """A reduction over adjacent axes: the input as [outer, n, inner]. A tile holds the n rows
    of `ob` outer blocks of `cb` inner elements, laid out [n, ob * cb]: one MEAN (ARGMAX) each."""
    e = ctx.emitter
    outer, n, inner = _adjacent_layout(g, node)
    elem = g.tensors[node.outputs[0]].dtype.itemsize        # 4 / 8 for ARG_MAX's indices, 2 for int16
    xb = g.tensors[node.inputs[0]].dtype.itemsize           # 2: an int16 input (16x8)
    a_slots, _, _ = ctx.slots()
    budget = a_slots.size // ctx.nbuf - 64
    cb = max(1, min(inner, budget // (n * xb + elem)))
    ob = max(1, min(outer, budget // ((n * xb + elem) * cb)))
    if (n * xb + elem) * ob * cb > budget:
        if node.op in (Op.REDUCE_MAX, Op.REDUCE_MIN):
            return _lower_extreme_in_parts(ctx, g, node, (outer, n, inner), budget)
        raise ScheduleError(f"{node.name}: a reduction over {n} elements does not fit ABUF ({a_slots.size} B)")
    ins, outs = SlotPair(a_slots.take(n * ob * cb * xb, ctx.nbuf)), SlotPair(a_slots.take(ob * cb * elem, ctx.nbuf))
    src, dst = ctx.addr(node.inputs[0]), ctx.addr(node.outputs[0])
    if node.op is Op.ARG_MAX:
        last, smallest = int(node.attrs.last), int(node.attrs.smallest)
        instr: Callable[[int, tuple, int, int, int], I.Instr] = lambda L, d, xa, c, oa: I.ArgMax(L, d, xa, n, c, oa, elem, last, smallest)    # noqa: E731
    else:
        kind = REDUCE_KIND[node.op]
        qp = params_to_ints(node.params) if kind in (0, 3) else ()
        instr = lambda L, d, xa, c, oa: I.Mean(L, d, xa, n, c, oa, qp, kind, xb)        # noqa: E731
    for b0 in range(0, outer, ob):
        bl = min(ob, outer - b0)
        for c0 in range(0, inner, cb):
            cl = min(cb, inner - c0)
            xa = ins.next()
            dma(e, ctx.space(node.inputs[0]), src + (b0 * n * inner + c0) * xb, (0, 0, inner * xb, n * inner * xb),
                I.ABUF, xa, (0, 0, bl * cl * xb, cl * xb), (1, 1, n, bl), cl * xb)
            oa = outs.next()
            e.emit(lambda L, d: instr(L, d, xa, bl * cl, oa))
            dma(e, I.ABUF, oa, (0, 0, 0, cl * elem), ctx.space(node.outputs[0]), dst + (b0 * inner + c0) * elem,
                (0, 0, 0, inner * elem), (1, 1, 1, bl), cl * elem)
    return {}


def _extreme_parts(n: int, xb: int, budget: int) -> tuple[int, int] | None:
    """(rows per part, parts) of a maximum / minimum over n rows of one column taken in parts:
    the parts' results, one row each, are reduced last. None if not even that fits."""
    rows = max(1, math.isqrt(n))
    parts = -(-n // rows)
    return (rows, parts) if (2 * rows + parts + 1) * xb + 4 * I.ALIGN <= budget else None


def _lower_extreme_in_parts(ctx: Ctx, g: Graph, node: Node, layout: tuple[int, int, int], budget: int) -> dict:
    """REDUCE_MAX / MIN over more rows than a tile holds: each column's rows in parts, each
    part's extreme (at the input's scale: exact) into a row of a partial block, then the
    extreme of the partial rows. Columns one at a time."""
    e, (outer, n, inner) = ctx.emitter, layout
    xb = g.tensors[node.inputs[0]].dtype.itemsize
    found = _extreme_parts(n, xb, budget)
    if found is None:
        raise ScheduleError(f"{node.name}: a reduction over {n} elements does not fit ABUF even in parts")
    rows, parts = found
    a_slots, _, _ = ctx.slots()
    ins, partial = SlotPair(a_slots.take(rows * xb, ctx.nbuf)), a_slots.take(parts * xb, 1)[0]
    out = a_slots.take(xb, 1)[0]
    src, dst = ctx.addr(node.inputs[0]), ctx.addr(node.outputs[0])
    kind = REDUCE_KIND[node.op]
    for b in range(outer):
        for c in range(inner):
            for k in range(parts):
                r0, rl = k * rows, min(rows, n - k * rows)
                xa = ins.next()
                dma(e, ctx.space(node.inputs[0]), src + ((b * n + r0) * inner + c) * xb, (0, 0, 0, inner * xb),
                    I.ABUF, xa, (0, 0, 0, xb), (1, 1, 1, rl), xb)
                e.emit(lambda L, d: I.Mean(L, d, xa, rl, 1, partial + k * xb, (), kind, xb))
            e.emit(lambda L, d: I.Mean(L, d, partial, parts, 1, out, (), kind, xb))
            contiguous(e, I.ABUF, out, ctx.space(node.outputs[0]), dst + (b * inner + c) * xb, xb)
    return {}


def reduction_fits(g: Graph, node: Node, abuf_bytes: int) -> bool:
    """A reduction's tile holds at least one column of its n reduced elements (double-buffered);
    a maximum or minimum may take the column in parts (_lower_extreme_in_parts)."""
    _, n, _ = _adjacent_layout(g, node)
    xb = g.tensors[node.inputs[0]].dtype.itemsize
    if 2 * (n * xb + g.tensors[node.outputs[0]].dtype.itemsize + 64) <= abuf_bytes:
        return True
    return node.op in (Op.REDUCE_MAX, Op.REDUCE_MIN) and _extreme_parts(n, xb, abuf_bytes // 2 - 64) is not None


def _adjacent_layout(g: Graph, node: Node) -> tuple[int, int, int]:
    """mean_layout of a reduction partition.py has accepted (its axes are adjacent)."""
    layout = mean_layout(g, node)
    assert layout is not None, f"{node.name}: reduced axes are not adjacent"
    return layout


def mean_layout(g: Graph, node: Node) -> tuple[int, int, int] | None:
    """(outer, n, inner) when the reduced axes are adjacent: the input is then [outer, n, inner]
    and the reduction reduces n for each (outer, inner); None otherwise."""
    shape = g.tensors[node.inputs[0]].shape
    axes = sorted({a % len(shape) for a in node.attrs.axes}) if shape else []
    if not axes or axes != list(range(axes[0], axes[-1] + 1)):
        return None
    return math.prod(shape[:axes[0]]), math.prod(shape[axes[0]:axes[-1] + 1]), math.prod(shape[axes[-1] + 1:])
